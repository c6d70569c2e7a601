"""The watcher's settled changes, turned into catalog work.

A move lets the catalog rows follow the files (their vectors are reused). Changed folders and
single files are diffed with the catalog by ``indexer.scan.diff``, as a full scan is, so a watched
change and a reconcile agree on what "changed" means. Only paths in an active, present folder count.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

from clifs.engine.catalog import Catalog, FileState
from clifs.engine.media import kind_of
from indexer.scan import DiskFile, ScanResult, diff, stat_entry, walk
from indexer.watch import ChangeQueue, Changes, Move


class ChangeTranslator:
    """Reads the catalog and the disk; writes nothing (the service applies what it returns)."""

    def __init__(
        self,
        catalog: Catalog,
        excludes: Iterable[str],
        queue: ChangeQueue,
        active_root: Callable[[str], str | None],
    ):
        """``queue``: where a file whose mtime is still fresh goes back to settle;
        ``active_root(path)``: the active, present folder holding ``path``, or None."""
        self._catalog = catalog
        self._excludes = tuple(excludes)
        self._queue = queue
        self._active_root = active_root

    def moved_rows(self, move: Move) -> list[tuple[FileState, str]]:
        """The catalog rows that follow ``move``, each with its new path; none unless both ends are
        in active folders. The checks that follow each move re-read anything that changed on the way."""
        if not (self._active_root(move.src) and self._active_root(move.dest)):
            return []
        if move.is_dir:
            rows = self._catalog.file_states_under(move.src).values()
            return [(r, move.dest + r.path[len(move.src) :]) for r in rows]
        row = self._catalog.file_states([move.src]).get(move.src)
        return [(row, move.dest)] if row else []

    def scan(self, changes: Changes) -> ScanResult:
        """New, changed and deleted files among the changed folders and files (apply the moves first)."""
        settled_before = time.time() - self._queue.debounce
        parts = [self._scan_tree(tree, settled_before) for tree in changes.trees]
        parts.append(self._scan_files(changes.files))
        total = ScanResult()
        for part in parts:
            total.to_index += part.to_index
            total.unchanged += part.unchanged
            total.deleted += part.deleted
        return total

    def _scan_tree(self, tree: str, settled_before: float) -> ScanResult:
        """A folder that appeared, vanished or moved, walked again; a file with a fresh mtime may be a
        copy still running, so it goes back to the queue to settle first."""
        root = self._active_root(tree)
        if root is None or not os.path.isdir(root):
            return ScanResult()
        disk = walk(tree, self._excludes) if os.path.isdir(tree) else []
        part = diff(disk, self._catalog.file_states_under(tree))
        for f in part.to_index:
            if f.mtime >= settled_before:
                self._queue.touch(f.path)
        part.to_index = [f for f in part.to_index if f.mtime < settled_before]
        return part

    def _scan_files(self, paths: list[str]) -> ScanResult:
        """Single files, each stat'ed again (not opened); one gone from disk is deleted unless its
        whole folder went (an unplugged drive keeps its files)."""
        paths = [p for p in paths if self._active_root(p)]
        disk = [f for f in map(_disk_file, paths) if f is not None]
        part = diff(disk, self._catalog.file_states(paths))
        part.deleted = [p for p in part.deleted if os.path.isdir(self._active_root(p) or "")]
        return part


def _disk_file(path: str) -> DiskFile | None:
    """``path`` as the scanner sees it; None when it is gone, a folder, or no media file."""
    kind = kind_of(path)
    return stat_entry(path, kind) if kind and not os.path.isdir(path) else None
