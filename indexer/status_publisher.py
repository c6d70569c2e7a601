"""The indexer's status as it changes: counters, the rate window, recent errors, and who hears of it.

Listeners (the GUI, the progress line) and ``<home>/status.json`` (for `clifs status` in another
process) are told at most every LISTENER_SECONDS / STATUS_FILE_SECONDS, except on a change of
state, of the missing folders, or an error, which always goes out at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from indexer.status import IndexerStatus, write_status_file

log = logging.getLogger(__name__)

RECENT_ERRORS = 50
LISTENER_SECONDS = 0.1  # at most this often between state changes
STATUS_FILE_SECONDS = 0.5
RATE_WINDOW_SECONDS = 10.0

BUSY_STATES = ("scanning", "indexing")  # the states that have a rate and a current file


class StatusPublisher:
    """Kept by the service thread; ``status()`` and ``add_listener`` may be called from any thread."""

    def __init__(
        self,
        home: Path,
        *,
        model_name: Callable[[], str],
        queued: Callable[[], int],
        paused: Callable[[], bool],
        missing_folders: Callable[[], list[str]] = list,
    ):
        """``model_name``, ``queued``, ``paused`` and ``missing_folders`` are asked at each publish
        (the model loads lazily)."""
        self._home = home
        self._model_name = model_name
        self._queued = queued
        self._paused = paused
        self._missing_folders = missing_folders
        self._status = IndexerStatus("idle")
        self._lock = threading.Lock()
        self._listeners: list[Callable[[IndexerStatus], None]] = []
        self._errors: deque[tuple[str, str]] = deque(maxlen=RECENT_ERRORS)
        self._samples: deque[tuple[float, int]] = deque()  # (monotonic time, files done) over the rate window
        self._last_listeners = 0.0
        self._last_file_write = 0.0
        self._text_queued = 0
        self._reading_text = False
        self._text_samples: deque[tuple[float, int]] = deque()  # (monotonic time, files read) for text_rate

    def status(self) -> IndexerStatus:
        """A copy of the latest status."""
        with self._lock:
            status = self._status
            return replace(
                status, recent_errors=list(status.recent_errors), missing_folders=list(status.missing_folders)
            )

    def add_listener(self, fn: Callable[[IndexerStatus], None]) -> None:
        self._listeners.append(fn)

    def count_done(self, path: str) -> None:
        """A file was indexed, moved or followed a move."""
        with self._lock:
            self._status.done += 1
        self.publish(self._status.state, current=path)

    def set_text_queued(self, n: int) -> None:
        """How many indexed files the OCR pass has still to read."""
        self._text_queued = n

    def set_reading_text(self, reading: bool) -> None:
        """The OCR pass starts or stops reading (listeners hear of it at once)."""
        self._reading_text = reading
        self.publish(self._status.state, force=True)

    def count_text_read(self, path: str, error: str | None) -> None:
        """The OCR pass read a file (its failure, with the reason, is an error like any other)."""
        with self._lock:
            if error is None:
                self._status.text_done += 1
            else:
                self._status.text_failed += 1
            self._text_queued = max(0, self._text_queued - 1)
        if error is None:
            self.publish(self._status.state)
        else:
            self.error(path, f"text could not be read: {error}")

    def count_failed(self, path: str, reason: str) -> None:
        with self._lock:
            self._status.failed += 1
        self.error(path, reason)

    def error(self, path: str, reason: str) -> None:
        """Keep ``reason`` among the recent errors and say so at once."""
        self._errors.append((path, reason))
        self.publish(self._status.state, force=True)

    def publish(self, state: str, *, force: bool = False, current: str | None = None) -> None:
        """Enter ``state``; listeners and the status file hear of it when due (always on ``force`` or a new state)."""
        with self._lock:
            old = self._status
            busy = state in BUSY_STATES
            self._status = new = IndexerStatus(
                state=state,
                queued=self._queued(),
                done=old.done,
                failed=old.failed,
                rate=self._rate(old.done) if busy else 0.0,
                current=(current or old.current) if busy else None,
                paused=self._paused(),
                recent_errors=list(self._errors),
                missing_folders=list(self._missing_folders()),
                reading_text=self._reading_text,
                text_queued=self._text_queued,
                text_done=old.text_done,
                text_failed=old.text_failed,
                text_rate=self._text_rate(old.text_done) if self._reading_text else 0.0,
            )
        now = time.monotonic()
        force = force or state != old.state or new.missing_folders != old.missing_folders
        if force or now - self._last_listeners >= LISTENER_SECONDS:
            self._last_listeners = now
            self._tell_listeners()
        if force or now - self._last_file_write >= STATUS_FILE_SECONDS:
            self._last_file_write = now
            self._write_file(new)

    def _rate(self, done: int) -> float:
        """Files per second over the last RATE_WINDOW_SECONDS."""
        now = time.monotonic()
        self._samples.append((now, done))
        while now - self._samples[0][0] > RATE_WINDOW_SECONDS:
            self._samples.popleft()
        t0, done0 = self._samples[0]
        return (done - done0) / (now - t0) if now > t0 else 0.0

    def _text_rate(self, done: int) -> float:
        """Files read per second over the last RATE_WINDOW_SECONDS."""
        now = time.monotonic()
        self._text_samples.append((now, done))
        while now - self._text_samples[0][0] > RATE_WINDOW_SECONDS:
            self._text_samples.popleft()
        t0, done0 = self._text_samples[0]
        return (done - done0) / (now - t0) if now > t0 else 0.0

    def _tell_listeners(self) -> None:
        for fn in list(self._listeners):
            try:
                fn(self.status())
            except Exception:
                log.exception("indexer status listener failed")

    def _write_file(self, status: IndexerStatus) -> None:
        try:
            write_status_file(self._home, status, model=self._model_name())
        except OSError as exc:
            log.warning("cannot write the indexer status file: %s", exc)
