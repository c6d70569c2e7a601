"""The filter bar: folder, kind and date range (``clifs.engine.search.Query`` fields), and a relevance slider.

The slider only hides hits already found, so dragging it answers at once.
"""

from __future__ import annotations

import datetime as dt
import time

from PIL import Image
from PySide6.QtCore import QDate, Qt, Signal
from PySide6.QtWidgets import QComboBox, QDateEdit, QHBoxLayout, QLabel, QSlider, QWidget

from clifs.engine.search import Hit, Query

DAY = 86_400.0
DATE_PRESETS: list[tuple[str, float | None]] = [
    ("Any date", None),
    ("Past week", 7 * DAY),
    ("Past month", 31 * DAY),
    ("Past year", 366 * DAY),
    ("Between…", None),
]
BETWEEN = len(DATE_PRESETS) - 1
DEFAULT_STRICTNESS = 65


def hide_weak(hits: list[Hit], strictness: int) -> list[Hit]:
    """Keep the hits that score at least ``strictness`` % of the best one (0: keep all).

    Relative to the best score rather than a fixed margin below it, because
    models score on different scales: CLIP's matches sit near 0.3 among
    non-matches near 0.15-0.2, the starter model's near 0.5-0.8 among 0.2-0.4.
    """
    if strictness <= 0 or not hits:
        return list(hits)
    best = hits[0].score
    floor = best - (1.0 - strictness / 100.0) * abs(best)
    return [h for h in hits if h.score >= floor]


class FilterBar(QWidget):
    changed = Signal()  # the search must run again
    relevance_changed = Signal(int)  # only which hits to show changes

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.folder = QComboBox()
        self.folder.setAccessibleName("Folder filter")
        self.folder.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.folder.setMaximumWidth(320)
        self.set_folders([])

        self.kind = QComboBox()
        self.kind.setAccessibleName("Kind filter")
        for label, value in (("Photos and videos", None), ("Photos", "image"), ("Videos", "video")):
            self.kind.addItem(label, value)

        self.date = QComboBox()
        self.date.setAccessibleName("Date filter")
        for label, _ in DATE_PRESETS:
            self.date.addItem(label)
        today = QDate.currentDate()
        self.date_from = QDateEdit(today.addMonths(-1))
        self.date_to = QDateEdit(today)
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.hide()
            edit.dateChanged.connect(self.changed)
        self.date_from.setAccessibleName("Modified from")
        self.date_to.setAccessibleName("Modified until")

        self.relevance = QSlider(Qt.Orientation.Horizontal)
        self.relevance.setRange(0, 100)
        self.relevance.setValue(DEFAULT_STRICTNESS)
        self.relevance.setFixedWidth(140)
        self.relevance.setAccessibleName("Relevance")
        self.relevance.setToolTip("Hide results that score far below the best match (far left: show everything)")

        self.folder.currentIndexChanged.connect(self.changed)
        self.kind.currentIndexChanged.connect(self.changed)
        self.date.currentIndexChanged.connect(self._date_preset_changed)
        self.relevance.valueChanged.connect(self.relevance_changed)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.folder)
        layout.addWidget(self.kind)
        layout.addWidget(self.date)
        layout.addWidget(self.date_from)
        layout.addWidget(self.date_to)
        layout.addStretch(1)
        layout.addWidget(QLabel("Relevance"))
        layout.addWidget(self.relevance)

    def set_folders(self, folders: list[str]) -> None:
        """Offer these folders; keep the chosen one if it is still there."""
        current = self.folder.currentData()
        self.folder.blockSignals(True)
        self.folder.clear()
        self.folder.addItem("All folders", None)
        for path in folders:
            self.folder.addItem(path, path)
        index = self.folder.findData(current) if current else 0
        self.folder.setCurrentIndex(max(index, 0))
        self.folder.blockSignals(False)
        if current and index < 0:
            self.changed.emit()

    def query(self, text: str | None, image: str | Image.Image | None, top: int) -> Query:
        """The search for ``text`` and ``image`` within the chosen folder, kind and dates."""
        after = before = None
        preset = self.date.currentIndex()
        if preset == BETWEEN:
            start, end = sorted((self.date_from.date(), self.date_to.date()))
            after, before = _epoch(start), _epoch(end.addDays(1))
        elif DATE_PRESETS[preset][1] is not None:
            after = time.time() - DATE_PRESETS[preset][1]
        return Query(
            text=text,
            image=image,
            top=top,
            folder=self.folder.currentData(),
            kind=self.kind.currentData(),
            modified_after=after,
            modified_before=before,
        )

    def _date_preset_changed(self, index: int) -> None:
        self.date_from.setVisible(index == BETWEEN)
        self.date_to.setVisible(index == BETWEEN)
        self.changed.emit()


def _epoch(day: QDate) -> float:
    """Local midnight at the start of ``day``."""
    return dt.datetime(day.year(), day.month(), day.day()).timestamp()
