"""Image and sound drops and pastes on the watched widgets become image or sound queries.

A text field would take a dropped file, or a pasted image path, as text, so the
filter catches those before it does; anything that is neither passes through.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtGui import QGuiApplication, QKeySequence
from PySide6.QtWidgets import QLineEdit, QWidget

from gui.image_query import image_from_mime, sound_from_mime

DRAG_EVENTS = (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop)


class ImageInput(QObject):
    given = Signal(object)  # str (an image file's path) | QImage (pasted pixels)
    sound_given = Signal(str)  # an audio file's path

    def watch(self, widget: QWidget) -> None:
        widget.installEventFilter(self)

    def paste(self) -> bool:
        """Take the clipboard's image or image path as the query image; returns whether there was one."""
        mime = QGuiApplication.clipboard().mimeData()
        image = image_from_mime(mime)
        if image is not None:
            self.given.emit(image)
            return True
        sound = sound_from_mime(mime)
        if sound is not None:
            self.sound_given.emit(sound)
        return sound is not None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in DRAG_EVENTS:
            image = image_from_mime(event.mimeData())
            sound = sound_from_mime(event.mimeData()) if image is None else None
            if image is None and sound is None:
                return False
            event.acceptProposedAction()
            if kind == QEvent.Type.Drop:
                if image is not None:
                    self.given.emit(image)
                else:
                    self.sound_given.emit(sound)
            return True
        if kind == QEvent.Type.KeyPress and isinstance(watched, QLineEdit):
            return event.matches(QKeySequence.StandardKey.Paste) and self.paste()
        return False
