"""A full disk, recognised: SQLite's "database or disk is full" and ENOSPC/EDQUOT from a file write.

The service pauses writing on such an error instead of stopping (see ``IndexerService``); this
module only says whether an error is one, how much room there is, and cleans what a failed write
of this thread left behind.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
from pathlib import Path

_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
#: SQLite's result code for "database or disk is full" (the DB-API error carries it; the catalog alone imports sqlite3).
_SQLITE_FULL = 13


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the disk is full."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _FULL_ERRNOS:
            return True
        if getattr(e, "sqlite_errorcode", None) == _SQLITE_FULL or "database or disk is full" in str(e).lower():
            return True
        stack += [getattr(e, "orig", None), e.__cause__, e.__context__]  # SQLAlchemy wraps the DB-API error
    return False


def describe(exc: BaseException) -> str:
    """One line for the error, without SQLAlchemy's background link."""
    orig = getattr(exc, "orig", None)
    text = str(orig if isinstance(orig, BaseException) else exc)
    return text.splitlines()[0] if text else type(exc).__name__


def free_bytes(path: Path | str) -> int | None:
    """Free bytes on the disk holding ``path`` (for this user), or None when it cannot be told."""
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def remove_own_temps(folder: Path | str) -> int:
    """Remove the temp files this thread left in ``folder`` when a write of them failed
    (``clifs.engine.atomic_files.temp_path`` names them ``<final>.<pid>-<thread>.tmp``); a
    half-written one holds space the retry needs. Returns how many went."""
    suffix = f".{os.getpid()}-{threading.get_ident()}.tmp"
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if entry.name.endswith(suffix):
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError:
                pass
    return removed
