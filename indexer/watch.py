"""Live changes: a watchdog observer on the catalog's folders, feeding a debounced change queue.

The observer's thread only records what happened; the service thread decides
what it means for the catalog. A burst of events on one path is one entry; an
entry is due once nothing touched it for ``debounce`` seconds and its size and
mtime held still over that time (a file being copied waits until it settles).
Moves are handed over at once and in order, so the catalog row (and its
vectors) can follow the file before anything re-reads it. A watched folder
deleted as a whole is a folder event: the folder list is checked at once
(its watch died with it; ``FolderSync`` decides whether it is missing).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)

from clifs.engine.media import kind_of
from indexer.scan import is_excluded

log = logging.getLogger(__name__)

_EVENTS = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]


@dataclass(frozen=True)
class Move:
    src: str
    dest: str
    is_dir: bool


@dataclass
class Changes:
    moves: list[Move] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # re-check each against the disk
    trees: list[str] = field(default_factory=list)  # re-scan each folder (appeared, vanished or moved)


def _signature(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


@dataclass
class _Pending:
    due: float
    signature: tuple[int, int] | None


class ChangeQueue:
    """Paths to re-check, de-duplicated and debounced; thread-safe."""

    def __init__(self, debounce: float, on_change: Callable[[], None] = lambda: None):
        self.debounce = debounce
        self._on_change = on_change
        self._lock = threading.Lock()
        self._moves: list[Move] = []
        self._files: dict[str, _Pending] = {}
        self._trees: dict[str, _Pending] = {}
        self._folder_events: set[str] = set()  # watched folders that were themselves deleted

    def __len__(self) -> int:
        with self._lock:
            return len(self._moves) + len(self._files) + len(self._trees)

    def touch(self, path: str) -> None:
        """Something happened to a file: re-check it once it settles."""
        self._add(self._files, path)

    def touch_tree(self, path: str) -> None:
        """A folder appeared, vanished or moved: re-scan it once it settles."""
        self._add(self._trees, path)

    def moved(self, move: Move) -> None:
        with self._lock:
            self._moves.append(move)
        self._on_change()

    def folder_event(self, root: str) -> None:
        """A watched folder itself went (deleted): its watch is dead, check the folder list now."""
        with self._lock:
            self._folder_events.add(root)
        self._on_change()

    def has_folder_events(self) -> bool:
        with self._lock:
            return bool(self._folder_events)

    def take_folder_events(self) -> set[str]:
        with self._lock:
            events, self._folder_events = self._folder_events, set()
        return events

    def put_back(self, changes: Changes) -> None:
        """Changes taken but not applied (a write failed, e.g. on a full disk): due again at once,
        the moves before any that came meanwhile, in their order; a path touched again meanwhile
        keeps its newer wait."""
        now = time.monotonic()
        with self._lock:
            self._moves = list(changes.moves) + self._moves
            for path in changes.files:
                self._files.setdefault(path, _Pending(now, None))  # it had settled already
            for path in changes.trees:
                self._trees.setdefault(path, _Pending(now, None))
        self._on_change()

    def _add(self, table: dict[str, _Pending], path: str) -> None:
        """(Re)start the wait for ``path``: due ``debounce`` after its latest event, if it then still
        has the size and mtime it had at that event."""
        pending = _Pending(time.monotonic() + self.debounce, _signature(path))
        with self._lock:
            table[path] = pending
        self._on_change()

    def take(self) -> Changes:
        """Every move, and the entries that are due and settled."""
        current = time.monotonic()
        with self._lock:
            changes = Changes(moves=self._moves)
            self._moves = []
            due_files = [p for p, e in self._files.items() if e.due <= current]
            due_trees = [p for p, e in self._trees.items() if e.due <= current]
        for path in due_files:  # stat outside the lock: the observer keeps adding meanwhile
            sig = _signature(path)
            with self._lock:
                entry = self._files.get(path)
                if entry is None or entry.due > current:
                    continue
                if entry.signature is not None and sig != entry.signature:
                    entry.signature, entry.due = sig, current + self.debounce  # still being written
                    continue
                del self._files[path]
            changes.files.append(path)
        with self._lock:
            for path in due_trees:
                if path in self._trees and self._trees[path].due <= current:
                    del self._trees[path]
                    changes.trees.append(path)
        return changes

    def next_due(self) -> float | None:
        """Seconds until the next entry is due (0 when moves wait), or None when empty."""
        with self._lock:
            if self._moves:
                return 0.0
            dues = [e.due for e in self._files.values()] + [e.due for e in self._trees.values()]
        return max(0.0, min(dues) - time.monotonic()) if dues else None

    def discard_under(self, folder: str) -> None:
        """Forget pending work below ``folder`` (it was removed from the list or paused)."""
        prefix = folder.rstrip(os.sep) + os.sep
        with self._lock:
            for table in (self._files, self._trees):
                for path in [p for p in table if p == folder or p.startswith(prefix)]:
                    del table[path]
            self._moves = [m for m in self._moves if not (m.src.startswith(prefix) or m.dest.startswith(prefix))]


class _RootHandler(FileSystemEventHandler):
    """Events under one watched folder, filtered by the excludes, into the change queue."""

    def __init__(self, root: str, queue: ChangeQueue, excludes: Iterable[str]):
        self.root = root
        # Some platforms report resolved paths (macOS: /private/tmp for /tmp); map them back.
        self.real_root = os.path.realpath(root)
        self.queue = queue
        self.excludes = tuple(excludes)

    def _local(self, path: str | bytes) -> str | None:
        """The event's path spelled under ``root``, or None when it is excluded or outside."""
        path = os.fsdecode(path)
        if not path:
            return None
        for base in (self.root, self.real_root):
            if path == base:
                return self.root
            if path.startswith(base.rstrip(os.sep) + os.sep):
                rel = path[len(base.rstrip(os.sep)) + 1 :]
                if any(is_excluded(part, self.excludes) for part in rel.split(os.sep)):
                    return None
                return os.path.join(self.root, rel)
        return None

    def _media(self, path: str | bytes) -> str | None:
        local = self._local(path)
        return local if local and kind_of(local) else None

    def on_any_event(self, event: FileSystemEvent) -> None:
        if isinstance(event, DirMovedEvent):
            src, dest = self._local(event.src_path), self._local(event.dest_path)
            if src and dest:
                self.queue.moved(Move(src, dest, True))
            for path in (src, dest):
                if path:
                    self.queue.touch_tree(path)
        elif isinstance(event, FileMovedEvent):
            src, dest = self._media(event.src_path), self._media(event.dest_path)
            if src and dest:
                self.queue.moved(Move(src, dest, False))
            for path in (src, dest):
                if path:
                    self.queue.touch(path)
        elif isinstance(event, (DirCreatedEvent, DirDeletedEvent)):
            path = self._local(event.src_path)
            if path == self.root and isinstance(event, DirDeletedEvent):
                self.queue.folder_event(self.root)  # the watch ends with it (rm -rf of the folder)
            if path:
                self.queue.touch_tree(path)
        elif not event.is_directory:
            path = self._media(event.src_path)
            if path:
                self.queue.touch(path)


class FolderWatcher:
    """One watchdog observer; a recursive watch per folder."""

    def __init__(self, queue: ChangeQueue, excludes: Iterable[str]):
        from watchdog.observers import Observer

        self.queue = queue
        self.excludes = tuple(excludes)
        self._observer = Observer()
        self._watches: dict[str, object] = {}

    def start(self) -> None:
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join()

    def watch(self, folder: str) -> None:
        """Start watching ``folder`` (OSError when the OS refuses: missing, or out of inotify watches)."""
        if folder not in self._watches:
            handler = _RootHandler(folder, self.queue, self.excludes)
            self._watches[folder] = self._observer.schedule(handler, folder, recursive=True, event_filter=_EVENTS)

    def dead(self, folder: str) -> bool:
        """Whether ``folder`` has a watch that no longer runs (its folder was deleted under it)."""
        watch = self._watches.get(folder)
        if watch is None:
            return False
        return not any(e.watch == watch and e.is_alive() for e in list(self._observer.emitters))

    def unwatch(self, folder: str) -> None:
        watch = self._watches.pop(folder, None)
        if watch is not None:
            try:
                self._observer.unschedule(watch)
            except (KeyError, OSError):  # the folder itself is gone: its watch went with it
                pass

    def rewatch(self, folder: str) -> None:
        """Watch ``folder`` afresh: the directory under its path may be another one now
        (re-created, remounted), and the old watch follows the old one or nothing."""
        self.unwatch(folder)
        self.watch(folder)
