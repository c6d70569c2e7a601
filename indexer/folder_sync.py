"""The catalog's folder list, applied: which folders are watched, which wait for a full walk.

The list is edited by the service's commands and by `clifs folders` in another process, so it is
read again every FOLDER_POLL_SECONDS (and at once when the watcher saw a watched folder itself
deleted). A listed, active folder that is not on disk is missing (an unplugged drive, not a folder
whose files were all deleted): its files stay in the catalog, it is said once, and it is begun
again when it is back.

Each poll also checks that every watched folder is still the directory its watch began on: a
watch follows a directory, not a path. Gone from its path (deleted, renamed away, its drive
unplugged), or only the empty mount point left of the drive that was mounted right there: it is
missing. Another directory under the same path (deleted and made again, a drive remounted), or
a watch that died: it is watched afresh and walked, so what changed meanwhile is found.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass

from clifs.engine.library import Library
from clifs.engine.paths import is_under
from indexer.watch import ChangeQueue, FolderWatcher

FOLDER_POLL_SECONDS = 2.0  # notice folders added/removed/paused by `clifs folders` in another process

GONE = "folder not found: its files stay in the catalog until it is back or removed"
UNMOUNTED = (
    "folder not found: only the empty mount point of the drive that was mounted there is left; "
    "its files stay in the catalog until it is back or removed"
)


@dataclass(frozen=True)
class _Identity:
    """The directory a path names: which one (device, inode), and whether a drive is mounted right there."""

    dev: int
    ino: int
    mount: bool


def _identity(path: str) -> _Identity | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return None
    return _Identity(st.st_dev, st.st_ino, os.path.ismount(path))


class FolderSync:
    """Used by the service thread only (or by the caller before the service starts)."""

    def __init__(self, library: Library, changes: ChangeQueue, report_error: Callable[[str, str], None]):
        """``changes``: where the watcher's events go; ``report_error(path, reason)``: a folder's problem."""
        self.library = library
        self._changes = changes
        self._report_error = report_error
        self._applied: dict[str, bool] = {}  # path -> paused, as last applied
        self._missing: set[str] = set()  # listed, active, but not on disk
        self._began: dict[str, _Identity] = {}  # active folders -> the directory their watch began on
        self._to_reconcile: list[str] = []  # folders to walk and diff with the catalog, oldest first
        self._watcher: FolderWatcher | None = None
        self._next_poll = 0.0

    # -- the watcher ------------------------------------------------------------------------------
    def start_watching(self) -> None:
        self._watcher = FolderWatcher(self._changes, self.library.settings.excludes)
        self._watcher.start()

    def stop_watching(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None

    @property
    def watching(self) -> bool:
        return self._watcher is not None

    # -- the folder list --------------------------------------------------------------------------
    def reapply_all(self) -> None:
        """Forget what was applied and make the next sync due now: folders added before the
        service started still need their watch."""
        self._applied, self._next_poll = {}, 0.0

    def poll_due(self) -> bool:
        return time.monotonic() >= self._next_poll or self._changes.has_folder_events()

    def poll_soon(self) -> None:
        """Check the folders at the next turn (one seems to have gone)."""
        self._next_poll = 0.0

    def seconds_to_poll(self) -> float:
        if self._changes.has_folder_events():
            return 0.0
        return max(0.0, self._next_poll - time.monotonic())

    def sync(self) -> list[str]:
        """Bring watches and the reconcile queue in line with the catalog's folder list (edited here
        or elsewhere) and with what is on disk. Returns the folders dropped (removed or paused): the
        caller forgets their pending work, except what ``in_active_folder`` still holds."""
        self._next_poll = time.monotonic() + FOLDER_POLL_SECONDS
        self._changes.take_folder_events()  # every folder is checked below
        wanted = {f.path: bool(f.paused) for f in self.library.catalog.folders()}
        dropped: list[str] = []
        for path in [p for p in self._applied if p not in wanted]:
            self._drop(path)
            dropped.append(path)
            # Files another process's `clifs folders remove` could not see (committed here meanwhile).
            leftovers = [p for p in self.library.catalog.paths_under(path) if not _held(p, wanted)]
            self.library.remove_files(leftovers)
        for path, paused in wanted.items():
            applied = self._applied.get(path)
            if paused:
                if applied is not True:
                    self._drop(path)
                    dropped.append(path)
            elif applied is False:
                self._check(path)
            else:
                self._begin(path)
        self._applied = wanted
        return dropped

    def missing_folders(self) -> list[str]:
        """The listed, active folders that are not on disk now, sorted."""
        return sorted(self._missing)

    def mark_missing(self, path: str, reason: str = GONE) -> None:
        """Keep an unplugged drive's files and say so once; its watch (if any) is dead or follows
        a directory elsewhere, so it goes, and so does a walk that waited."""
        if path in self._missing:
            return
        self._missing.add(path)
        if self._watcher is not None:
            self._watcher.unwatch(path)
        self._to_reconcile = [p for p in self._to_reconcile if p != path]
        self._report_error(path, reason)

    def on_disk(self, path: str) -> bool:
        """Whether the active folder ``path`` is on disk now (checked, not as last polled); when it
        is not, it is marked missing at once."""
        if path in self._missing:
            return False
        reason = self._absence(path, _identity(path))
        if reason is not None:
            self.mark_missing(path, reason)
        return reason is None

    def next_to_reconcile(self) -> str | None:
        """The next folder to walk and diff with the catalog, taken off the queue; None when none waits."""
        return self._to_reconcile.pop(0) if self._to_reconcile else None

    def reconcile_again(self, path: str) -> None:
        """A walk that could not be applied (a write failed): it is the next one."""
        if path not in self._to_reconcile:
            self._to_reconcile.insert(0, path)

    def active_root(self, path: str) -> str | None:
        """The active, present folder that holds ``path``; changes elsewhere are ignored."""
        for folder, paused in self._applied.items():
            if not paused and folder not in self._missing and is_under(path, folder):
                return folder
        return None

    def active_folders(self) -> list[str]:
        """The listed folders that are active (not paused) and on disk."""
        return [folder for folder, paused in self._applied.items() if not paused and folder not in self._missing]

    def in_active_folder(self, path: str) -> bool:
        """Whether an active folder, present or missing, holds ``path`` (its pending work stays)."""
        return _held(path, self._applied, active_only=True)

    def _absence(self, path: str, now: _Identity | None) -> str | None:
        """Why the folder counts as not on disk (GONE, UNMOUNTED), or None when it is there."""
        if now is None:
            return GONE
        began = self._began.get(path)
        if began is not None and began.mount and not now.mount:
            return UNMOUNTED  # its drive was mounted right there: the path now names the empty mount point
        return None

    def _check(self, path: str) -> None:
        """An active folder as it is on disk now: missing, back, replaced, or as it was."""
        now = _identity(path)
        reason = self._absence(path, now)
        if path in self._missing:
            if reason is None:
                self._begin(path)  # back (plugged in, made again, renamed back): walked for what changed
            return
        if reason is not None:
            self.mark_missing(path, reason)
            return
        began = self._began.get(path)
        replaced = began is not None and (now.dev, now.ino) != (began.dev, began.ino)
        if replaced or (self._watcher is not None and self._watcher.dead(path)):
            self._begin(path)  # another directory under this path, or its watch died: watch it afresh

    def _begin(self, path: str) -> None:
        now = _identity(path)
        reason = self._absence(path, now)
        if reason is not None:
            self.mark_missing(path, reason)
            return
        self._missing.discard(path)
        self._began[path] = now
        if self._watcher is not None:
            try:
                self._watcher.rewatch(path)
            except OSError as exc:  # e.g. out of inotify watches: changes are found at the next start
                self._report_error(path, f"cannot watch this folder for changes: {exc}")
        if path not in self._to_reconcile:
            self._to_reconcile.append(path)

    def _drop(self, path: str) -> None:
        if self._watcher is not None:
            self._watcher.unwatch(path)
        self._missing.discard(path)
        self._began.pop(path, None)
        self._to_reconcile = [p for p in self._to_reconcile if p != path]


def _held(path: str, folders: dict[str, bool], active_only: bool = False) -> bool:
    """Whether one of ``folders`` (path -> paused) holds ``path``; with ``active_only``, an unpaused one."""
    return any(is_under(path, f) for f, paused in folders.items() if not (active_only and paused))
