"""The indexing service that `clifs watch` and the GUI share.

One thread owns every catalog write (SQLite has one writer; readers in other
threads and processes search meanwhile). It reconciles each folder at start
(watch events are lost while clifs is closed), then follows the watcher's
changes, indexing in chunks so that pause, stop and folder edits take effect
within a batch. Calls from other threads post commands to it.

This module holds that thread, its commands and its backlog; the folder list is
applied by ``folder_sync``, the watcher's changes become work in ``changes``, and
``status_publisher`` tells listeners and ``<home>/status.json`` (for `clifs status`
in another process) what it is doing.

A full disk does not stop it: a write that fails for want of space (a batch commit, a
deletion, a move, the vector file's save) leaves its work where it was (the backlog, the
change queue, the reconcile queue, the command queue), writing pauses with the state
"disk full: waiting for space (N MB free)", and resumes when space returns. SQLite commits
whole transactions or nothing, so nothing committed is lost and nothing is half written.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from clifs.engine.library import Library
from clifs.engine.paths import canonical_folder, is_under
from indexer.changes import ChangeTranslator
from indexer.disk_space import describe, free_bytes, is_disk_full, remove_own_temps
from indexer.folder_sync import FolderSync
from indexer.lock import IndexerLock
from indexer.ocr_pass import OcrPass
from indexer.pipeline import IndexReport, Pipeline, audio_not_indexed
from indexer.scan import DiskFile, ScanResult, stat_entry
from indexer.status import DISK_FULL_STATE, IndexerStatus
from indexer.status_publisher import StatusPublisher
from indexer.watch import ChangeQueue, Move

__all__ = ["IndexerService", "IndexerStatus"]

log = logging.getLogger(__name__)

IDLE_SAVE_SECONDS = 30.0  # save a changed vector cache when idle, at most this often
DISK_POLL_SECONDS = 2.0  # on a full disk, look at the free space this often
DISK_RETRY_SECONDS = 30.0  # and try writing again this often even if it did not grow (quotas, other filesystems)
DISK_RESUME_GROWTH = 1 << 20  # or as soon as this much more is free than when the write failed
OCR_STEP_SECONDS = 2.0  # the OCR pass reads for at most this long before the loop looks for other work


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
        self._publisher = StatusPublisher(
            library.settings.home,
            model_name=lambda: library.model.display_name,  # the saved text tower: no model load
            queued=self._queued,
            paused=lambda: self._paused,
            missing_folders=lambda: self._folders.missing_folders(),
        )
        # Service-thread state.
        self._folders = FolderSync(library, self._changes, report_error=self._publisher.error)
        self._translator = ChangeTranslator(
            library.catalog, library.settings.excludes, self._changes, self._folders.active_root
        )
        self._backlog: OrderedDict[str, DiskFile] = OrderedDict()
        self._in_flight: dict[str, DiskFile] = {}
        self._vanished: list[DiskFile] = []  # read while they vanished; settled after their chunk
        self._last_idle_save = 0.0
        self._saved_generation: int | None = None  # None until the vector cache is loaded
        self._disk_full: int | None = None  # the catalog generation when a write failed for want of space
        # The OCR pass: the lowest priority work, done when nothing else is (see _read_text).
        self._ocr = OcrPass(library, on_file=self._on_text_read)
        self._ocr_clean_at: int | None = None  # the catalog generation at which no text was left to read
        self._ocr_off: str | None = None  # why the OCR engine cannot run here

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
        return self._publisher.status()

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
        self._publisher.add_listener(fn)

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
                if is_disk_full(exc):
                    with self._mutex:
                        self._commands.appendleft(command)  # done again once there is space
                    raise
                log.exception("indexer command failed")
                self._publisher.error("(folders)", str(exc))

    def _should_yield(self) -> bool:
        """Asked by the pipeline after each file: drop the undecoded rest of the chunk?"""
        return self._paused or self._stopping.is_set()

    def _queued(self) -> int:
        """Files waiting: on the backlog, in the chunk being indexed, or pending (debounced)."""
        return len(self._backlog) + len(self._in_flight) + len(self._changes)

    # -- the service thread -----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._pipeline = Pipeline(self.library, on_file=self._on_file, should_stop=self._should_yield)
            if self._watch:
                self._folders.start_watching()
            self._folders.reapply_all()
            while not self._stopping.is_set():
                try:
                    self._step()
                    self._end_disk_full()
                    continue
                except Exception as exc:
                    if not is_disk_full(exc):
                        raise
                    reason = describe(exc)  # leave the except block: the traceback (and the chunk's
                    # decode pool, held by its frames) goes before the wait
                self._wait_for_space(reason)
        except Exception as exc:
            log.exception("the indexer stopped on an unexpected error")
            self._publisher.error("(indexer)", f"stopped by an unexpected error: {type(exc).__name__}: {exc}")
        finally:
            self._shutdown()

    def _step(self) -> None:
        """One turn of the loop: commands, the folder list, then one piece of work (or a rest)."""
        if self._saved_generation is None:
            self._saved_generation = self.library.vectors.generation  # load or repair the cache first
        self._wake.clear()
        self._run_commands()
        if self._folders.poll_due():
            self._sync_folders()
        if self._paused:
            self._publisher.publish("paused")
            self._wake.wait(self._folders.seconds_to_poll())
        elif (root := self._folders.next_to_reconcile()) is not None:
            self._reconcile(root)
        elif self._vanished:
            self._settle_vanished()
        elif self._take_changes() or self._backlog:
            if self._backlog:
                self._index_chunk()
        elif self._ocr_due():
            self._read_text()
        else:
            self._rest()

    def _wait_for_space(self, reason: str) -> None:
        """A write failed on a full disk; its work waits where it was. Say so, then wait until more
        space is free than when it failed (or DISK_RETRY_SECONDS passed), or until stopped."""
        home = self.library.settings.home
        remove_own_temps(self.library.settings.vectors_dir)  # a half-saved vector file holds space
        self._idle.clear()  # the work is not done
        free_then = free_bytes(home)
        if self._disk_full is None:  # said once, not at every retry that fails again
            self._disk_full = self._generation()
            log.warning("disk full (%s): indexing waits for space on %s", reason, home)
            self._publisher.error(
                "(disk)", f"the disk holding {home} is full ({reason}); writing waits for space, nothing is lost"
            )
        tried = time.monotonic()
        while not self._stopping.is_set():
            free = free_bytes(home)
            shown = "unknown" if free is None else f"{free / 1e6:.1f} MB"
            self._publisher.publish(f"{DISK_FULL_STATE}: waiting for space ({shown} free)")
            grew = free is not None and free_then is not None and free >= free_then + DISK_RESUME_GROWTH
            if grew or time.monotonic() - tried >= DISK_RETRY_SECONDS:
                log.info("retrying the writes that waited for space (%s free)", shown)
                return
            self._stopping.wait(DISK_POLL_SECONDS)

    def _end_disk_full(self) -> None:
        """A write went through since the disk was full (the catalog moved on): space is back."""
        if self._disk_full is not None and self._generation() != self._disk_full:
            self._disk_full = None
            log.info("space again on %s: writing resumed", self.library.settings.home)

    def _generation(self) -> int:
        try:
            return self.library.catalog.generation()
        except Exception:  # reading too may fail on a sick disk: then it counts as unchanged
            return -1

    def _rest(self) -> None:
        """Nothing to do now: say so, then sleep until work arrives, a change is due, or a poll."""
        with self._mutex:
            if not self._commands and len(self._changes) == 0:
                self._idle.set()
        generation = self.library.vectors.generation
        if generation != self._saved_generation and time.monotonic() - self._last_idle_save >= IDLE_SAVE_SECONDS:
            self._last_idle_save = time.monotonic()  # on a full disk, not again at once
            self.library.flush()  # a restart then loads the cache instead of patching it
            self._saved_generation, self._last_idle_save = generation, time.monotonic()
        self._publisher.publish("watching" if self._folders.watching else "idle")
        due = self._changes.next_due()
        poll_in = self._folders.seconds_to_poll()
        self._wake.wait(poll_in if due is None else min(due, poll_in))

    def _shutdown(self) -> None:
        try:
            self._folders.stop_watching()
            self._ocr.close()
            try:
                self.library.flush()
            except OSError as exc:  # a full disk: the catalog holds everything; the next start patches the cache
                log.warning("cannot save the vector cache on stopping: %s", exc)
        finally:
            self._publisher.publish("stopped", force=True)
            if self._owns_lock and self._lock is not None:
                self._lock.release()

    # -- the words in pictures (the OCR pass) -----------------------------------------------------
    def _ocr_due(self) -> bool:
        """Text left to read in the active folders? Asked only when nothing else is to do, and
        answered from the catalog only when it changed since the last "no"."""
        if not self.library.settings.ocr or self._ocr_off:
            return False
        generation = self._generation()
        if generation == self._ocr_clean_at:
            return False
        roots = self._folders.active_folders()
        todo = self._ocr.todo_count(roots) if roots else 0
        self._publisher.set_text_queued(todo)
        if not todo:
            self._ocr_clean_at = generation
        return todo > 0

    def _read_text(self) -> None:
        """Read text for a while; any other work (a command, a change, a folder poll) goes first. The
        state stays what it is at rest ("watching"): the OCR pass shows in the status's ``text_*``."""
        self._publisher.set_reading_text(True)
        self._publisher.publish("watching" if self._folders.watching else "idle", force=True)
        try:
            report = self._ocr.run(
                self._folders.active_folders(), should_stop=self._other_work_waits, budget_seconds=OCR_STEP_SECONDS
            )
        finally:
            self._publisher.set_reading_text(False)
        if report.vanished and not report.read and not report.failed:
            self._ocr_clean_at = self._generation()  # only vanished files left: wait for their removal
        if report.unavailable:
            self._ocr_off = report.unavailable
            self._publisher.set_text_queued(0)
            self._publisher.error("(text)", f"the words in pictures cannot be read: {report.unavailable}")

    def _other_work_waits(self) -> bool:
        due = self._changes.next_due()
        return (
            self._should_yield()
            or self._wake.is_set()
            or bool(self._commands)
            or bool(self._backlog)
            or (due is not None and due <= 0)
            or self._folders.poll_due()
        )

    def _on_text_read(self, path: str, error: str | None, lines: int) -> None:
        self._publisher.count_text_read(path, error)

    # -- folders ----------------------------------------------------------------------------------
    def _apply_folder_edit(self, edit: Callable[[], object]) -> None:
        edit()
        self._sync_folders()

    def _forget(self, path: str) -> None:
        self.library.catalog.forget_folder(path)
        self.library.vectors.catch_up(self.library.catalog)

    def _sync_folders(self) -> None:
        for folder in self._folders.sync():
            self._forget_work_under(folder)

    def _forget_work_under(self, folder: str) -> None:
        """A dropped folder's pending changes and backlog go (what another active folder holds stays)."""
        self._changes.discard_under(folder)
        for p in [p for p in self._backlog if is_under(p, folder) and not self._folders.in_active_folder(p)]:
            del self._backlog[p]

    # -- finding work -----------------------------------------------------------------------------
    def _reconcile(self, root: str) -> None:
        """Walk a folder and diff it with the catalog (unchanged files are not opened)."""
        if not self._folders.on_disk(root):
            return  # missing now: walked when it is back
        self._publisher.publish("scanning", force=True, current=root)
        try:
            self._apply_scan(self._pipeline.scan([root]))
        except Exception:
            self._folders.reconcile_again(root)  # a write failed (a full disk): walk it again later
            raise

    def _take_changes(self) -> bool:
        """Apply the watcher's moves and turn its settled paths into work; True if there was any.
        If a write fails on the way, what was not applied goes back to the queue."""
        changes = self._changes.take()
        applied = 0
        try:
            for move in changes.moves:
                self._apply_move(move)  # done again, a move finds only the rows still to follow it
                applied += 1
            self._apply_scan(self._translator.scan(changes))  # diffs with the catalog: safe to redo
        except Exception:
            changes.moves = changes.moves[applied:]
            self._changes.put_back(changes)
            raise
        return bool(changes.moves or changes.files or changes.trees)

    def _apply_move(self, move: Move) -> None:
        """The catalog rows follow the files, so their vectors are reused."""
        for row, dest in self._translator.moved_rows(move):
            self._backlog.pop(row.path, None)
            if row.status == "ok":
                self.library.move_file(row.path, dest, row.mtime)
                self._publisher.count_done(dest)

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
        # A file whose folder went missing waits for it: the walk when it is back finds it again.
        chunk = [f for f in chunk if self._folders.active_root(f.path)]
        if not chunk:
            return
        self._in_flight = {f.path: f for f in chunk}
        self._publisher.publish("indexing", force=True, current=chunk[0].path)
        try:
            report = self._pipeline.index_files(chunk)
            if report.audio_unindexed:  # said once a chunk, where the window and `clifs status` show errors
                self._publisher.error(
                    "(sound)", audio_not_indexed(report.audio_unindexed, self.library.audio_unavailable)
                )
        finally:
            for f in reversed(list(self._in_flight.values())):
                self._backlog[f.path] = f
                self._backlog.move_to_end(f.path, last=False)
            self._in_flight = {}
        self._settle_vanished()

    def _settle_vanished(self) -> None:
        """Settle the files that vanished while they were read, each once (a write failing on the
        way leaves the rest for the next turn)."""
        while self._vanished:
            self._resettle(self._vanished[0])
            self._vanished.pop(0)

    def _resettle(self, f: DiskFile) -> None:
        """A file that vanished while it was read is no failure: drop its row, and queue it
        again if it is back (moved away and back, or replaced). When its whole folder went
        (an unplugged drive), its row stays: the folder is missing, not emptied."""
        root = self._folders.active_root(f.path)
        if root is None or not self._folders.on_disk(root):
            return
        self.library.remove_files([f.path])
        entry = stat_entry(f.path, f.kind)
        if entry is not None:
            self._backlog[f.path] = entry

    def _on_file(self, f: DiskFile, error: str | None) -> None:
        """The pipeline finished a file (committed, moved or failed)."""
        self._in_flight.pop(f.path, None)
        if error is None:
            self._publisher.count_done(f.path)
        elif not os.path.lexists(f.path):
            self._vanished.append(f)
        else:
            self._publisher.count_failed(f.path, error)
