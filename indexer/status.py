"""What the indexer is doing, in memory (for listeners) and in ``<home>/status.json`` (for other processes).

Kept free of torch and the pipeline, so `clifs status` answers in a blink while an indexer runs.
"""

from __future__ import annotations

import errno
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATUS_NAME = "status.json"
DISK_FULL_STATE = "disk full"  # the state starts so while writing waits for space: "disk full: waiting for space (…)"


@dataclass
class IndexerStatus:
    state: str  # "idle" | "scanning" | "indexing" | "watching" | "paused" | "stopped" | "disk full: …"
    queued: int = 0
    done: int = 0
    failed: int = 0
    rate: float = 0.0  # files per second over the recent window
    current: str | None = None  # file being processed
    paused: bool = False
    recent_errors: list[tuple[str, str]] = field(default_factory=list)  # (path, reason), newest last
    #: Listed, active folders that are not on disk (an unplugged drive): their files stay in the catalog.
    missing_folders: list[str] = field(default_factory=list)
    # The OCR pass, its own progress (the state meanwhile is the one at rest: "watching" or "idle").
    reading_text: bool = False  # the OCR pass is reading now
    text_queued: int = 0  # indexed files whose words are still to be read
    text_done: int = 0  # files read (with or without text) since the indexer started
    text_failed: int = 0
    text_rate: float = 0.0  # files read per second over the recent window

    @property
    def disk_full(self) -> bool:
        return self.state.startswith(DISK_FULL_STATE)


def missing_folder_line(path: str) -> str:
    """How `clifs status` and the window say that a folder is missing."""
    return f"folder missing: {path} (results kept from before)"


def write_status_file(home: Path, status: IndexerStatus, **extra: Any) -> None:
    """Replace status.json atomically (a reader sees the old or the new file, never half of one).

    On a full disk the new file cannot be written beside the old one; then the old one is
    overwritten in place, padded with blanks to its length so its blocks suffice (a reader
    that catches the rewrite half done retries, see ``read_status_file``).
    """
    path = Path(home) / STATUS_NAME
    data = json.dumps(asdict(status) | {"pid": os.getpid(), "updated": time.time()} | extra, ensure_ascii=False)
    tmp = path.with_name(f"{STATUS_NAME}.{os.getpid()}.tmp")
    try:
        tmp.write_text(data, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        _overwrite_in_place(path, data.encode("utf-8"))


def _overwrite_in_place(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        old = os.fstat(fd).st_size
        os.pwrite(fd, data.ljust(old), 0)  # JSON allows the trailing blanks
    finally:
        os.close(fd)


def read_status_file(home: Path) -> dict[str, Any] | None:
    for _ in range(3):  # an in-place rewrite (disk full) may be caught half done: read again
        try:
            return json.loads((Path(home) / STATUS_NAME).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            time.sleep(0.01)
    return None
