"""One indexer per catalog: an OS lock on ``<home>/indexer.lock`` that holds the owner's pid.

The kernel drops an ``flock`` when its process dies, however it dies, so a lock
left by a killed indexer is simply free again; the pid text is only there to
tell a second indexer who is running. Where the file system refuses ``flock``
(some network mounts), the pid text decides: a dead owner's lock is taken over.
Readers (search, list, status) never take the lock; ``holder`` tells them who has it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from clifs.engine.atomic_files import pid_alive

try:
    import fcntl
except ImportError:  # Windows: fall back to the pid text
    fcntl = None

LOCK_NAME = "indexer.lock"


class LockHeld(Exception):
    """Another live process is indexing this catalog."""

    def __init__(self, path: Path, pid: int | None):
        self.path = path
        self.pid = pid
        who = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"another clifs indexer ({who}) is already running on {path.parent} (lock file {path}); "
            "stop it first, or use another CLIFS_HOME"
        )


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def holder(home: Path | str) -> int | None:
    """The pid of the live indexer of ``home``, or None; never takes the lock."""
    pid = _read_pid(Path(home) / LOCK_NAME)
    return pid if pid and pid_alive(pid) else None


class IndexerLock:
    def __init__(self, home: Path | str):
        self.path = Path(home) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise ``LockHeld`` at once (never waits)."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not self._try_os_lock(fd):
                raise LockHeld(self.path, _read_pid(self.path))
            text = f"{os.getpid()}\n".encode("ascii")
            os.pwrite(fd, text, 0)  # over the blanks a release left: no new block needed on a full disk
            os.ftruncate(fd, len(text))
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _try_os_lock(self, fd: int) -> bool:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return False
                # flock unsupported here (ENOLCK, EOPNOTSUPP): decide by the pid text below.
        pid = _read_pid(self.path)
        return pid is None or pid == os.getpid() or not pid_alive(pid)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            # No owner any more; the file stays so nobody races on its inode. Blanked rather than
            # emptied, so it keeps its block and the next indexer can write its pid on a full disk.
            try:
                os.pwrite(fd, b" " * os.fstat(fd).st_size, 0)
            except OSError:
                os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> IndexerLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
