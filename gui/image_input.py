"""Image drops and pastes on the watched widgets become image queries.

A text field would take a dropped file, or a pasted image path, as text, so the
filter catches those before it does; anything that is not an image passes through.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtGui import QGuiApplication, QKeySequence
from PySide6.QtWidgets import QLineEdit, QWidget

from gui.image_query import image_from_mime

DRAG_EVENTS = (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop)


class ImageInput(QObject):
    given = Signal(object)  # str (an image file's path) | QImage (pasted pixels)

    def watch(self, widget: QWidget) -> None:
        widget.installEventFilter(self)

    def paste(self) -> bool:
        """Take the clipboard's image or image path as the query image; returns whether there was one."""
        image = image_from_mime(QGuiApplication.clipboard().mimeData())
        if image is None:
            return False
        self.given.emit(image)
        return True

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in DRAG_EVENTS:
            image = image_from_mime(event.mimeData())
            if image is None:
                return False
            event.acceptProposedAction()
            if kind == QEvent.Type.Drop:
                self.given.emit(image)
            return True
        if kind == QEvent.Type.KeyPress and isinstance(watched, QLineEdit):
            return event.matches(QKeySequence.StandardKey.Paste) and self.paste()
        return False
