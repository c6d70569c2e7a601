"""The filter bar: folder, kind, date range, when taken and with which camera (``clifs.engine.search.Query``
fields), and a relevance slider.

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
TAKEN_ANY, TAKEN_BETWEEN = 0, 1
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
        for label, value in (
            ("Photos and videos", None),
            ("Photos", "image"),
            ("Videos", "video"),
            ("Sounds", "audio"),
        ):
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

        # When a photo was taken (EXIF, RAW, video header; else the file's date) and with what.
        self.taken = QComboBox()
        self.taken.setAccessibleName("Taken filter")
        self.taken.addItem("Taken any time")
        self.taken.addItem("Taken between…")
        self.taken.setToolTip("When the photo was taken (its EXIF date; the file's date when it records none)")
        self.taken_from = QDateEdit(today.addYears(-1))
        self.taken_to = QDateEdit(today)
        for edit in (self.taken_from, self.taken_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.hide()
            edit.dateChanged.connect(self.changed)
        self.taken_from.setAccessibleName("Taken from")
        self.taken_to.setAccessibleName("Taken until")
        self.camera = QComboBox()
        self.camera.setAccessibleName("Camera filter")
        self.camera.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.camera.setMaximumWidth(240)
        self.set_cameras([])

        self.relevance = QSlider(Qt.Orientation.Horizontal)
        self.relevance.setRange(0, 100)
        self.relevance.setValue(DEFAULT_STRICTNESS)
        self.relevance.setFixedWidth(140)
        self.relevance.setAccessibleName("Relevance")
        self.relevance.setToolTip("Hide results that score far below the best match (far left: show everything)")

        self.folder.currentIndexChanged.connect(self.changed)
        self.kind.currentIndexChanged.connect(self.changed)
        self.date.currentIndexChanged.connect(self._date_preset_changed)
        self.taken.currentIndexChanged.connect(self._taken_changed)
        self.camera.currentIndexChanged.connect(self.changed)
        self.relevance.valueChanged.connect(self.relevance_changed)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.folder)
        layout.addWidget(self.kind)
        layout.addWidget(self.date)
        layout.addWidget(self.date_from)
        layout.addWidget(self.date_to)
        layout.addWidget(self.taken)
        layout.addWidget(self.taken_from)
        layout.addWidget(self.taken_to)
        layout.addWidget(self.camera)
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

    def set_cameras(self, cameras: list[str]) -> None:
        """Offer these cameras (from the catalog, most used first); keep the chosen one if it is still there."""
        current = self.camera.currentData()
        if self.camera.count() and [self.camera.itemData(i) for i in range(1, self.camera.count())] == list(cameras):
            return  # refreshed after every indexing batch: leave an open popup alone
        self.camera.blockSignals(True)
        self.camera.clear()
        self.camera.addItem("Any camera", None)
        for name in cameras:
            self.camera.addItem(name, name)
        index = self.camera.findData(current) if current else 0
        self.camera.setCurrentIndex(max(index, 0))
        self.camera.setVisible(bool(cameras))
        self.camera.blockSignals(False)
        if current and index < 0:
            self.changed.emit()

    def query(self, text: str | None, image: str | Image.Image | None, top: int, audio: str | None = None) -> Query:
        """The search for ``text``, ``image`` and the sound ``audio`` within the chosen folder, kind and dates."""
        after = before = None
        preset = self.date.currentIndex()
        if preset == BETWEEN:
            start, end = sorted((self.date_from.date(), self.date_to.date()))
            after, before = _epoch(start), _epoch(end.addDays(1))
        elif DATE_PRESETS[preset][1] is not None:
            after = time.time() - DATE_PRESETS[preset][1]
        taken_after = taken_before = None
        if self.taken.currentIndex() == TAKEN_BETWEEN:
            start, end = sorted((self.taken_from.date(), self.taken_to.date()))
            # both days included: before the start of the day after the last one
            taken_after, taken_before = _day(start), _day(end.addDays(1))
        return Query(
            text=text,
            image=image,
            audio=audio,
            top=top,
            folder=self.folder.currentData(),
            kind=self.kind.currentData(),
            modified_after=after,
            modified_before=before,
            taken_after=taken_after,
            taken_before=taken_before,
            camera=self.camera.currentData(),
        )

    def _date_preset_changed(self, index: int) -> None:
        self.date_from.setVisible(index == BETWEEN)
        self.date_to.setVisible(index == BETWEEN)
        self.changed.emit()

    def _taken_changed(self, index: int) -> None:
        self.taken_from.setVisible(index == TAKEN_BETWEEN)
        self.taken_to.setVisible(index == TAKEN_BETWEEN)
        self.changed.emit()


def _day(day: QDate) -> dt.date:
    return dt.date(day.year(), day.month(), day.day())


def _epoch(day: QDate) -> float:
    """Local midnight at the start of ``day``."""
    return dt.datetime(day.year(), day.month(), day.day()).timestamp()
