"""The indexing service that `clifs watch` and the GUI share.

One thread owns every catalog write (SQLite has one writer; readers in other
threads and processes search meanwhile). It reconciles each folder at start
(watch events are lost while clifs is closed), then follows the watcher's
changes, indexing in chunks so that pause, stop and folder edits take effect
within a batch. Calls from other threads post commands to it. Status goes to
listeners and to ``<home>/status.json`` for `clifs status` in another process.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import replace

from clifs.engine.library import Library
from clifs.engine.media import kind_of
from clifs.engine.paths import canonical_folder, is_under
from indexer.lock import IndexerLock
from indexer.pipeline import IndexReport, Pipeline
from indexer.scan import DiskFile, ScanResult, diff, stat_entry, walk
from indexer.status import IndexerStatus, write_status_file
from indexer.watch import ChangeQueue, FolderWatcher, Move

__all__ = ["IndexerService", "IndexerStatus"]

log = logging.getLogger(__name__)

RECENT_ERRORS = 50
FOLDER_POLL_SECONDS = 2.0  # notice folders added/removed/paused by `clifs folders` in another process
LISTENER_SECONDS = 0.1  # at most this often between state changes
STATUS_FILE_SECONDS = 0.5
RATE_WINDOW_SECONDS = 10.0
IDLE_SAVE_SECONDS = 30.0  # save a changed vector cache when idle, at most this often


class IndexerService:
    def __init__(
        self,
        library: Library,
        *,
        watch: bool = True,
        debounce_seconds: float = 1.0,
        lock: IndexerLock | None = None,
    ):
        """``lock``: an already held indexer lock (the CLI takes it before loading the model);
        without one, ``start`` takes it and raises ``LockHeld`` if another indexer runs."""
        self.library = library
        self._watch = watch
        self._lock = lock
        self._owns_lock = lock is None
        self._changes = ChangeQueue(debounce_seconds, on_change=self._notify)
        self._mutex = threading.Lock()  # orders "work arrived" against "the loop goes idle"
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._stopping = threading.Event()
        self._paused = False
        self._commands: deque[Callable[[], None]] = deque()
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[IndexerStatus], None]] = []
        # Service-thread state.
        self._folders: dict[str, bool] = {}  # path -> paused, as last applied
        self._missing: set[str] = set()  # listed, active, but not on disk (an unplugged drive)
        self._to_scan: list[str] = []
        self._backlog: OrderedDict[str, DiskFile] = OrderedDict()
        self._in_flight: dict[str, DiskFile] = {}
        self._vanished: list[DiskFile] = []
        self._watcher: FolderWatcher | None = None
        self._next_poll = 0.0
        self._last_idle_save = 0.0
        self._saved_generation = -1
        # Status.
        self._status = IndexerStatus("idle")
        self._status_lock = threading.Lock()
        self._errors: deque[tuple[str, str]] = deque(maxlen=RECENT_ERRORS)
        self._samples: deque[tuple[float, int]] = deque()
        self._last_listeners = 0.0
        self._last_file_write = 0.0

    # -- the public API (any thread) --------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the indexer service was already started")
        if self._lock is None:
            self._lock = IndexerLock(self.library.settings.home)
        self._lock.acquire()
        self._thread = threading.Thread(target=self._run, name="clifs-indexer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the batch in flight: a batch being encoded is committed, one being decoded is dropped."""
        self._stopping.set()
        self._notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def pause(self) -> None:
        self._paused = True
        self._notify()

    def resume(self) -> None:
        self._paused = False
        self._notify()

    def status(self) -> IndexerStatus:
        with self._status_lock:
            return replace(self._status, recent_errors=list(self._status.recent_errors))

    def add_folder(self, path: str) -> None:
        path = canonical_folder(path)
        if not os.path.isdir(path):
            raise NotADirectoryError(f"not a folder: {path}")
        self._submit(lambda: self._apply_folder_edit(lambda: self.library.catalog.add_folder(path)))

    def remove_folder(self, path: str) -> None:
        path = canonical_folder(path)
        self._submit(lambda: self._apply_folder_edit(lambda: self._forget(path)))

    def set_folder_paused(self, path: str, paused: bool) -> None:
        path = canonical_folder(path)
        self._submit(lambda: self._apply_folder_edit(lambda: self.library.catalog.set_folder_paused(path, paused)))

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is queued, pending (debounced) or in flight."""
        return self._idle.wait(timeout)

    def add_listener(self, fn: Callable[[IndexerStatus], None]) -> None:
        """``fn(status)`` is called from the service thread after commits and state changes."""
        self._listeners.append(fn)

    # -- plumbing between threads -----------------------------------------------------------------
    def _notify(self) -> None:
        with self._mutex:
            self._idle.clear()
            self._wake.set()

    def _submit(self, command: Callable[[], None]) -> None:
        if self._thread is None or not self._thread.is_alive():
            command()  # no service thread: the caller is the only writer
            return
        with self._mutex:
            self._commands.append(command)
        self._notify()

    def _run_commands(self) -> None:
        while True:
            with self._mutex:
                if not self._commands:
                    return
                command = self._commands.popleft()
            try:
                command()
            except Exception as exc:
                log.exception("indexer command failed")
                self._error("(folders)", str(exc))

    def _should_yield(self) -> bool:
        """Asked by the pipeline after each file: drop the undecoded rest of the chunk?"""
        return self._paused or self._stopping.is_set()

    # -- the service thread -----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._pipeline = Pipeline(self.library, on_file=self._on_file, should_stop=self._should_yield)
            self._saved_generation = self.library.vectors.generation  # load or repair the cache first
            if self._watch:
                self._watcher = FolderWatcher(self._changes, self.library.settings.excludes)
                self._watcher.start()
            self._folders, self._next_poll = {}, 0.0  # folders added before start() still need their watch
            while not self._stopping.is_set():
                self._wake.clear()
                self._run_commands()
                if time.monotonic() >= self._next_poll:
                    self._sync_folders()
                if self._paused:
                    self._publish("paused")
                    self._wake.wait(self._poll_in())
                elif self._to_scan:
                    self._reconcile(self._to_scan.pop(0))
                elif self._take_changes() or self._backlog:
                    if self._backlog:
                        self._index_chunk()
                else:
                    self._rest()
        except Exception as exc:
            log.exception("the indexer stopped on an unexpected error")
            self._error("(indexer)", f"stopped by an unexpected error: {type(exc).__name__}: {exc}")
        finally:
            self._shutdown()

    def _rest(self) -> None:
        """Nothing to do now: say so, then sleep until work arrives, a change is due, or a poll."""
        with self._mutex:
            if not self._commands and len(self._changes) == 0:
                self._idle.set()
        generation = self.library.vectors.generation
        if generation != self._saved_generation and time.monotonic() - self._last_idle_save >= IDLE_SAVE_SECONDS:
            self.library.flush()  # a restart then loads the cache instead of patching it
            self._saved_generation, self._last_idle_save = generation, time.monotonic()
        self._publish("watching" if self._watcher else "idle")
        due = self._changes.next_due()
        self._wake.wait(self._poll_in() if due is None else min(due, self._poll_in()))

    def _poll_in(self) -> float:
        return max(0.0, self._next_poll - time.monotonic())

    def _shutdown(self) -> None:
        try:
            if self._watcher is not None:
                self._watcher.stop()
                self._watcher = None
            self.library.flush()
        finally:
            self._publish("stopped", force=True)
            if self._owns_lock and self._lock is not None:
                self._lock.release()

    # -- folders ----------------------------------------------------------------------------------
    def _apply_folder_edit(self, edit: Callable[[], object]) -> None:
        edit()
        self._sync_folders()

    def _forget(self, path: str) -> None:
        self.library.catalog.forget_folder(path)
        self.library.vectors.catch_up(self.library.catalog)

    def _sync_folders(self) -> None:
        """Bring watches and scans in line with the catalog's folder list (edited here or elsewhere)."""
        self._next_poll = time.monotonic() + FOLDER_POLL_SECONDS
        wanted = {f.path: bool(f.paused) for f in self.library.catalog.folders()}
        for path in [p for p in self._folders if p not in wanted]:
            self._drop(path, wanted)
            # Files another process's `clifs folders remove` could not see (committed here meanwhile).
            leftovers = [p for p in self.library.catalog.paths_under(path) if not self._covered(p, wanted)]
            self.library.remove_files(leftovers)
        for path, paused in wanted.items():
            if self._folders.get(path) == paused and not (path in self._missing and os.path.isdir(path)):
                continue
            if paused:
                self._drop(path, wanted)
            else:
                self._begin(path)
        self._folders = wanted

    def _mark_missing(self, path: str) -> None:
        """An unplugged drive is not a folder whose files were all deleted: keep them, say so once."""
        if path not in self._missing:
            self._missing.add(path)
            self._error(path, "folder not found: its files stay in the catalog until it is back or removed")

    def _begin(self, path: str) -> None:
        if not os.path.isdir(path):
            self._mark_missing(path)
            return
        self._missing.discard(path)
        if self._watcher is not None:
            try:
                self._watcher.watch(path)
            except OSError as exc:  # e.g. out of inotify watches: changes are found at the next start
                self._error(path, f"cannot watch this folder for changes: {exc}")
        if path not in self._to_scan:
            self._to_scan.append(path)

    def _drop(self, path: str, wanted: dict[str, bool]) -> None:
        """Stop watching ``path`` and forget its pending work (other active folders keep theirs)."""
        if self._watcher is not None:
            self._watcher.unwatch(path)
        self._changes.discard_under(path)
        self._missing.discard(path)
        self._to_scan = [p for p in self._to_scan if p != path]
        for p in [p for p in self._backlog if is_under(p, path) and not self._covered(p, wanted, active=True)]:
            del self._backlog[p]

    @staticmethod
    def _covered(path: str, folders: dict[str, bool], active: bool = False) -> bool:
        return any(is_under(path, f) for f, paused in folders.items() if not (active and paused))

    def _active_root(self, path: str) -> str | None:
        """The active, present folder that holds ``path``; changes elsewhere are ignored."""
        for folder, paused in self._folders.items():
            if not paused and folder not in self._missing and is_under(path, folder):
                return folder
        return None

    # -- finding work -----------------------------------------------------------------------------
    def _reconcile(self, root: str) -> None:
        """Walk a folder and diff it with the catalog (unchanged files are not opened)."""
        if not os.path.isdir(root):
            self._mark_missing(root)
            return
        self._publish("scanning", force=True, current=root)
        self._apply_scan(self._pipeline.scan([root]))

    def _take_changes(self) -> bool:
        """Apply the watcher's moves and turn its settled paths into work; True if there was any."""
        changes = self._changes.take()
        for move in changes.moves:
            self._apply_move(move)
        scan = ScanResult()
        settled = time.time() - self._changes.debounce
        for tree in changes.trees:
            root = self._active_root(tree)
            if root is not None and os.path.isdir(root):
                disk = walk(tree, self.library.settings.excludes) if os.path.isdir(tree) else []
                part = diff(disk, self.library.catalog.file_states_under(tree))
                for f in part.to_index:
                    if f.mtime < settled:
                        scan.to_index.append(f)
                    else:  # a fresh mtime may be a copy still running: let it settle first
                        self._changes.touch(f.path)
                scan.deleted += part.deleted
        files = [p for p in changes.files if self._active_root(p)]
        known = self.library.catalog.file_states(files)
        for path in files:
            kind = kind_of(path)
            entry = stat_entry(path, kind) if kind and not os.path.isdir(path) else None
            row = known.get(path)
            if entry is None:
                if row is not None and os.path.isdir(self._active_root(path) or ""):
                    scan.deleted.append(path)
            elif row is None or row.size != entry.size or abs(row.mtime - entry.mtime) >= 1e-6:
                scan.to_index.append(entry)
        self._apply_scan(scan)
        return bool(changes.moves or changes.files or changes.trees)

    def _apply_move(self, move: Move) -> None:
        """The catalog row follows the file, so its vectors are reused; the checks that
        follow each move re-read anything that changed on the way."""
        if not (self._active_root(move.src) and self._active_root(move.dest)):
            return
        catalog = self.library.catalog
        if move.is_dir:
            rows = catalog.file_states_under(move.src).values()
            pairs = [(r, move.dest + r.path[len(move.src) :]) for r in rows]
        else:
            row = catalog.file_states([move.src]).get(move.src)
            pairs = [(row, move.dest)] if row else []
        for row, dest in pairs:
            self._backlog.pop(row.path, None)
            if row.status == "ok":
                self.library.move_file(row.path, dest, row.mtime)
                self._count_done(dest)

    def _apply_scan(self, scan: ScanResult) -> None:
        """Moves (by content hash), deletions, then new and changed files onto the backlog."""
        scan.to_index = list({f.path: f for f in scan.to_index}.values())
        scan.deleted = list(dict.fromkeys(scan.deleted))
        for f in self._pipeline.apply_moves(scan, IndexReport()):
            self._backlog.pop(f.path, None)
            self._backlog[f.path] = f
        if scan.deleted:
            self.library.remove_files(scan.deleted)
            for path in scan.deleted:
                self._backlog.pop(path, None)

    # -- indexing ---------------------------------------------------------------------------------
    def _index_chunk(self) -> None:
        """Index the next files from the backlog; whatever a pause or stop leaves undone goes back."""
        size = 16 * self._pipeline.batch_size  # the decode pool restarts per chunk: keep that rare
        chunk = [self._backlog.popitem(last=False)[1] for _ in range(min(size, len(self._backlog)))]
        self._in_flight = {f.path: f for f in chunk}
        self._vanished = []
        self._publish("indexing", force=True, current=chunk[0].path)
        try:
            self._pipeline.index_files(chunk)
        finally:
            for f in reversed(list(self._in_flight.values())):
                self._backlog[f.path] = f
                self._backlog.move_to_end(f.path, last=False)
            self._in_flight = {}
        for f in self._vanished:
            self._resettle(f)

    def _resettle(self, f: DiskFile) -> None:
        """A file that vanished while it was read is no failure: drop its row, and queue it
        again if it is back (moved away and back, or replaced)."""
        self.library.remove_files([f.path])
        entry = stat_entry(f.path, f.kind)
        if entry is not None:
            self._backlog[f.path] = entry

    def _on_file(self, f: DiskFile, error: str | None) -> None:
        """The pipeline finished a file (committed, moved or failed)."""
        self._in_flight.pop(f.path, None)
        if error is None:
            self._count_done(f.path)
            return
        if not os.path.lexists(f.path):
            self._vanished.append(f)
            return
        with self._status_lock:
            self._status.failed += 1
        self._error(f.path, error)

    def _count_done(self, path: str) -> None:
        with self._status_lock:
            self._status.done += 1
        self._publish(self._status.state, current=path)

    # -- status -----------------------------------------------------------------------------------
    def _error(self, path: str, reason: str) -> None:
        self._errors.append((path, reason))
        self._publish(self._status.state, force=True)

    def _rate(self, done: int) -> float:
        now = time.monotonic()
        self._samples.append((now, done))
        while now - self._samples[0][0] > RATE_WINDOW_SECONDS:
            self._samples.popleft()
        t0, done0 = self._samples[0]
        return (done - done0) / (now - t0) if now > t0 else 0.0

    def _publish(self, state: str, *, force: bool = False, current: str | None = None) -> None:
        with self._status_lock:
            old = self._status
            busy = state in ("scanning", "indexing")
            self._status = new = IndexerStatus(
                state=state,
                queued=len(self._backlog) + len(self._in_flight) + len(self._changes),
                done=old.done,
                failed=old.failed,
                rate=self._rate(old.done) if busy else 0.0,
                current=(current or old.current) if busy else None,
                paused=self._paused,
                recent_errors=list(self._errors),
            )
        now = time.monotonic()
        force = force or state != old.state
        if force or now - self._last_listeners >= LISTENER_SECONDS:
            self._last_listeners = now
            for fn in list(self._listeners):
                try:
                    fn(self.status())
                except Exception:
                    log.exception("indexer status listener failed")
        if force or now - self._last_file_write >= STATUS_FILE_SECONDS:
            self._last_file_write = now
            try:
                write_status_file(self.library.settings.home, new, model=self.library.encoder.display_name)
            except OSError as exc:
                log.warning("cannot write the indexer status file: %s", exc)
