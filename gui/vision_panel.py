"""The vision tools under the preview: what the hit shows (zero-shot labels), where the query
is in it (a mask or boxes painted over the preview), and what is in it without a query (regions
found and named, "What's in it?")."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from clifs.engine.vision.labels import LabelScore


class VisionPanel(QWidget):
    #: "mask", "boxes", "regions", or "" for the plain preview.
    overlay_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.labels = QLabel()
        self.labels.setWordWrap(True)
        self.labels.setToolTip(
            "Zero-shot labels: the likeliest names for what this shows, among everyday things. "
            "A name with “?” does not fit by the model's own measure: it is only a guess."
        )
        self.where = QLabel()
        self.state = QLabel()
        self.state.setWordWrap(True)
        self.state.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.buttons: dict[str, QToolButton] = {}
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.where)
        for mode, text in (("mask", "Mask"), ("boxes", "Boxes")):
            button = QToolButton()
            button.setText(text)
            button.setCheckable(True)
            button.toggled.connect(lambda on, mode=mode: self._toggled(mode, on))
            self.buttons[mode] = button
            row.addWidget(button)
        row.addStretch(1)
        regions = QToolButton()
        regions.setText("What's in it?")
        regions.setCheckable(True)
        regions.setToolTip("Find the regions of this picture and name each one, without a query")
        regions.toggled.connect(lambda on: self._toggled("regions", on))
        self.buttons["regions"] = regions
        self.found = QLabel()
        self.found.setWordWrap(True)
        self.found.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.found.hide()
        regions_row = QHBoxLayout()
        regions_row.setContentsMargins(0, 0, 0, 0)
        regions_row.addWidget(regions)
        regions_row.addWidget(self.found, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.labels)
        layout.addLayout(row)
        layout.addLayout(regions_row)
        layout.addWidget(self.state)
        self._unsupported: str | None = None

    def set_unsupported(self, reason: str | None) -> None:
        """Masks and boxes need a model with a dense path; say why they are off when it has none."""
        self._unsupported = reason

    def reset(self, query_text: str, picture: bool = True) -> None:
        """A new hit (or moment): labels pending, overlays off, offered for the query text if there is one
        and the hit is a picture (a sound has none to paint on)."""
        self.labels.setText("Labels: …")
        self.set_mode("")
        self.set_busy(False)
        text = query_text.strip()
        self.where.setText(f"Where is “{text}”?" if text else "Type a query to see where it is.")
        off = self._unsupported or (None if picture else "A sound has no picture to paint masks or boxes on")
        for mode, button in self.buttons.items():
            button.setEnabled((bool(text) or mode == "regions") and off is None)
            if mode != "regions" or off:
                button.setToolTip(off or "")
        self.found.hide()

    def set_regions(self, regions: list) -> None:
        """What "What's in it?" found: the named regions, then the unnamed ones' best guesses marked "?"."""
        named = list(dict.fromkeys(r.label for r in regions if r.label is not None))
        guesses = list(dict.fromkeys(f"{r.guess}?" for r in regions if r.label is None and not r.background))
        if named:
            text = "In it: " + " · ".join(named)
            if guesses:
                text += f" — unnamed: {' · '.join(guesses)}"
        elif guesses:
            text = f"Nothing in it fits a name — best guesses: {' · '.join(guesses)}"
        else:
            text = "Nothing in it fits a name: only background"
        self.found.setText(text)
        self.found.show()

    def set_labels(self, scores: list[LabelScore]) -> None:
        """The labels that fit, then the best guesses marked "?"; "none of these fits" when no label does."""
        shown = " · ".join(f"{s.label}{'' if s.fits else '?'} {s.probability:.0%}" for s in scores)
        if scores and not any(s.fits for s in scores):
            self.labels.setText(f"Labels: none of these fits — best guesses: {shown}")
        else:
            self.labels.setText(f"Labels: {shown}")

    def set_labels_failed(self, reason: str) -> None:
        self.labels.setText(f"Labels: unavailable ({reason})")

    def set_busy(self, busy: bool, problem: str = "") -> None:
        """Say that an overlay is being painted (a dense pass takes seconds on a CPU), why it failed, or that it found nothing."""
        self.state.setText("Looking closely…" if busy else problem)
        self.state.setVisible(busy or bool(problem))

    def mode(self) -> str:
        return next((m for m, b in self.buttons.items() if b.isChecked()), "")

    def set_mode(self, mode: str) -> None:
        """Check one overlay button (or none) without asking for an overlay."""
        for m, button in self.buttons.items():
            button.blockSignals(True)
            button.setChecked(m == mode)
            button.blockSignals(False)

    def _toggled(self, mode: str, on: bool) -> None:
        if on:
            self.set_mode(mode)  # one overlay at a time
        self.found.hide()
        self.overlay_changed.emit(mode if on else "")
