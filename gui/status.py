"""The status bar: the active model, what is indexed, the indexer's progress, and failures."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar, QWidget

from clifs.engine.models.base import Encoder
from indexer.status import IndexerStatus, missing_folder_line

WORKING_STATES = ("scanning", "indexing")


class StatusPanel(QStatusBar):
    failures_clicked = Signal()
    pause_clicked = Signal(bool)  # True: pause, False: resume

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.model_label = QLabel("Loading model…")
        self.counts_label = QLabel()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(180)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.rate_label = QLabel()
        self.rate_label.hide()
        #: "Folder missing: …" for listed folders not on disk (an unplugged drive); their results stay.
        self.missing_label = QLabel()
        self.missing_label.hide()
        #: The OCR pass, its own progress: "Reading text 12 of 40 · 1.5 files/s".
        self.text_label = QLabel()
        self.text_label.setToolTip("Reading the words in pictures, so that quoted searches find them")
        self.text_label.hide()
        self.pause_button = QPushButton("Pause")
        self.pause_button.setFlat(True)
        self.pause_button.hide()
        self.pause_button.clicked.connect(lambda: self.pause_clicked.emit(self.pause_button.text() == "Pause"))
        self.failures_button = QPushButton()
        self.failures_button.setFlat(True)
        self.failures_button.setToolTip("List the files that could not be indexed, with reasons")
        self.failures_button.hide()
        self.failures_button.clicked.connect(self.failures_clicked)
        self._batch_start: int | None = None
        self._text_start: int | None = None
        for widget in (
            self.missing_label,
            self.text_label,
            self.rate_label,
            self.progress,
            self.pause_button,
            self.failures_button,
            self.counts_label,
            self.model_label,
        ):
            self.addPermanentWidget(widget)

    def set_model(self, encoder: Encoder, fallback_reason: str | None) -> None:
        if encoder.is_clip:
            self.model_label.setText(f"Model: {encoder.display_name}")
        else:
            self.model_label.setText("Model: offline starter model — not CLIP")
        tips = [encoder.display_name]
        if not encoder.is_clip:
            tips.append("It knows about 1000 everyday concepts; a CLIP model understands far more.")
        if fallback_reason:
            tips.append(fallback_reason)
        self.model_label.setToolTip("\n\n".join(tips))

    def set_model_failed(self, reason: str) -> None:
        self.model_label.setText("Model: not loaded")
        self.model_label.setToolTip(reason)

    def set_counts(self, files: int, items: int, failed: int) -> None:
        self.counts_label.setText(f"{files:,} files indexed" + (f" ({items:,} items)" if items != files else ""))
        self.failures_button.setText(f"{failed:,} failed…")
        self.failures_button.setVisible(failed > 0)

    def set_indexer(self, status: IndexerStatus) -> None:
        self._show_missing(status.missing_folders)
        self._show_text(status)
        working = status.state in WORKING_STATES
        if working and self._batch_start is None:
            self._batch_start = status.done  # the service counts for its lifetime; the bar counts this batch
        elif not working:
            self._batch_start = None
        self.progress.setVisible(working)
        self.rate_label.setVisible(working or status.state in ("paused", "stopped") or status.disk_full)
        self.pause_button.setVisible(working or status.state == "paused")
        self.pause_button.setText("Resume" if status.state == "paused" else "Pause")
        self.progress.setToolTip(status.current or "")
        self.rate_label.setToolTip("")
        if status.state == "paused":
            self.rate_label.setText("Indexing paused")
        elif status.disk_full:
            self.rate_label.setText(status.state[0].upper() + status.state[1:])  # "Disk full: waiting for space (…)"
            self.rate_label.setToolTip(
                "The disk holding the library is full. Indexing resumes by itself when space is freed; "
                "nothing indexed is lost."
            )
        elif status.state == "stopped":
            self.rate_label.setText("Indexer stopped")
            self.rate_label.setToolTip(status.recent_errors[-1][1] if status.recent_errors else "")
        elif working:
            done = status.done - (self._batch_start or 0)
            total = done + status.queued
            self.progress.setRange(0, max(total, 1))
            self.progress.setValue(done)
            if status.state == "scanning" and not total:
                self.progress.setRange(0, 0)  # busy: the amount of work is not known yet
                self.rate_label.setText("Looking for new and changed files…")
            else:
                self.rate_label.setText(f"Indexing {done:,} of {total:,} · {status.rate:.1f} files/s")

    def _show_text(self, status: IndexerStatus) -> None:
        reading = status.reading_text or (status.text_queued > 0 and status.state in ("watching", "idle"))
        if reading:
            if self._text_start is None:
                self._text_start = status.text_done + status.text_failed
            done = status.text_done + status.text_failed - self._text_start
            total = done + status.text_queued
            self.text_label.setText(f"Reading text {done:,} of {total:,} · {status.text_rate:.1f} files/s")
        else:
            self._text_start = None
        self.text_label.setVisible(reading)

    def _show_missing(self, folders: list[str]) -> None:
        lines = [missing_folder_line(p) for p in folders]
        if len(lines) == 1:
            self.missing_label.setText(lines[0][0].upper() + lines[0][1:])
        else:
            self.missing_label.setText(f"{len(lines)} folders missing (results kept from before)")
        self.missing_label.setToolTip("\n".join(lines))
        self.missing_label.setVisible(bool(lines))

    def set_indexer_elsewhere(self, reason: str) -> None:
        """Another process indexes this library; this window only searches."""
        self.pause_button.hide()
        self.rate_label.show()
        self.rate_label.setText("Indexed by another clifs process")
        self.rate_label.setToolTip(reason)
