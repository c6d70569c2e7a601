"""Temp files and folders named after the process writing them, so one a killed process left is found.

An atomic write goes to ``<final>.<pid>-<thread>.tmp`` and is renamed over ``<final>``; a kill
in between leaves the temp behind (a FAISS index or a saved text tower: hundreds of MB). The
next write of the same ``final`` removes every temp whose writer is no longer running.
"""

from __future__ import annotations

import glob
import os
import shutil
import threading
from pathlib import Path


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    except OSError:
        return False
    return True


def temp_path(final: Path) -> Path:
    """Where this thread writes ``final`` before renaming it into place."""
    return final.with_name(f"{final.name}.{os.getpid()}-{threading.get_ident()}.tmp")


def remove_leftovers(final: Path) -> list[Path]:
    """Remove the temps of ``final`` whose writing process is gone; returns what was removed."""
    removed = []
    for path in final.parent.glob(f"{glob.escape(final.name)}.*.tmp"):
        writer = path.name[len(final.name) + 1 : -len(".tmp")].split("-")[0]
        if writer.isdigit() and not pid_alive(int(writer)):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed
