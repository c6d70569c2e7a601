"""The query image (or the query sound) as a removable chip next to the search field."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPalette, QPixmap
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

ICON_SIDE = 20


class QueryChip(QFrame):
    removed = Signal()

    def __init__(self, parent: QWidget | None = None, noun: str = "image"):
        super().__init__(parent)
        self.noun = noun
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.setBackgroundRole(QPalette.ColorRole.AlternateBase)
        self.icon = QLabel()
        self.icon.setFixedSize(ICON_SIDE, ICON_SIDE)
        self.icon.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.name = QLabel()
        self.name.setMaximumWidth(220)
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip(f"Stop searching by this {noun}")
        self.close_button.setAccessibleName(f"Remove query {noun}")
        self.close_button.clicked.connect(self.removed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(3, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(self.icon)
        layout.addWidget(self.name)
        layout.addWidget(self.close_button)
        self.hide()

    def show_query(self, label: str) -> None:
        metrics = self.name.fontMetrics()
        self.name.setText(metrics.elidedText(label, Qt.TextElideMode.ElideMiddle, self.name.maximumWidth()))
        self.setToolTip(f"Searching by this {self.noun}: {label}")
        self.icon.clear()
        self.show()

    def set_icon(self, image: QImage) -> None:
        scaled = image.scaled(
            ICON_SIDE, ICON_SIDE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        self.icon.setPixmap(QPixmap.fromImage(scaled))
