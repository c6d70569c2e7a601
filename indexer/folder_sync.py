"""The catalog's folder list, applied: which folders are watched, which wait for a full walk.

The list is edited by the service's commands and by `clifs folders` in another process, so it is
read again every FOLDER_POLL_SECONDS. A listed, active folder that is not on disk is missing
(an unplugged drive, not a folder whose files were all deleted): its files stay in the catalog,
it is said once, and it is begun again when it is back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from clifs.engine.library import Library
from clifs.engine.paths import is_under
from indexer.watch import ChangeQueue, FolderWatcher

FOLDER_POLL_SECONDS = 2.0  # notice folders added/removed/paused by `clifs folders` in another process


class FolderSync:
    """Used by the service thread only (or by the caller before the service starts)."""

    def __init__(self, library: Library, changes: ChangeQueue, report_error: Callable[[str, str], None]):
        """``changes``: where the watcher's events go; ``report_error(path, reason)``: a folder's problem."""
        self.library = library
        self._changes = changes
        self._report_error = report_error
        self._applied: dict[str, bool] = {}  # path -> paused, as last applied
        self._missing: set[str] = set()  # listed, active, but not on disk
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
        return time.monotonic() >= self._next_poll

    def seconds_to_poll(self) -> float:
        return max(0.0, self._next_poll - time.monotonic())

    def sync(self) -> list[str]:
        """Bring watches and the reconcile queue in line with the catalog's folder list (edited here
        or elsewhere). Returns the folders dropped (removed or paused): the caller forgets their
        pending work, except what ``in_active_folder`` still holds."""
        self._next_poll = time.monotonic() + FOLDER_POLL_SECONDS
        wanted = {f.path: bool(f.paused) for f in self.library.catalog.folders()}
        dropped: list[str] = []
        for path in [p for p in self._applied if p not in wanted]:
            self._drop(path)
            dropped.append(path)
            # Files another process's `clifs folders remove` could not see (committed here meanwhile).
            leftovers = [p for p in self.library.catalog.paths_under(path) if not _held(p, wanted)]
            self.library.remove_files(leftovers)
        for path, paused in wanted.items():
            if self._applied.get(path) == paused and not (path in self._missing and os.path.isdir(path)):
                continue
            if paused:
                self._drop(path)
                dropped.append(path)
            else:
                self._begin(path)
        self._applied = wanted
        return dropped

    def mark_missing(self, path: str) -> None:
        """Keep an unplugged drive's files and say so once."""
        if path not in self._missing:
            self._missing.add(path)
            self._report_error(path, "folder not found: its files stay in the catalog until it is back or removed")

    def next_to_reconcile(self) -> str | None:
        """The next folder to walk and diff with the catalog, taken off the queue; None when none waits."""
        return self._to_reconcile.pop(0) if self._to_reconcile else None

    def active_root(self, path: str) -> str | None:
        """The active, present folder that holds ``path``; changes elsewhere are ignored."""
        for folder, paused in self._applied.items():
            if not paused and folder not in self._missing and is_under(path, folder):
                return folder
        return None

    def in_active_folder(self, path: str) -> bool:
        """Whether an active folder, present or missing, holds ``path`` (its pending work stays)."""
        return _held(path, self._applied, active_only=True)

    def _begin(self, path: str) -> None:
        if not os.path.isdir(path):
            self.mark_missing(path)
            return
        self._missing.discard(path)
        if self._watcher is not None:
            try:
                self._watcher.watch(path)
            except OSError as exc:  # e.g. out of inotify watches: changes are found at the next start
                self._report_error(path, f"cannot watch this folder for changes: {exc}")
        if path not in self._to_reconcile:
            self._to_reconcile.append(path)

    def _drop(self, path: str) -> None:
        if self._watcher is not None:
            self._watcher.unwatch(path)
        self._missing.discard(path)
        self._to_reconcile = [p for p in self._to_reconcile if p != path]


def _held(path: str, folders: dict[str, bool], active_only: bool = False) -> bool:
    """Whether one of ``folders`` (path -> paused) holds ``path``; with ``active_only``, an unpaused one."""
    return any(is_under(path, f) for f, paused in folders.items() if not (active_only and paused))
