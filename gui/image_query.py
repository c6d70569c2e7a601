"""What counts as an image query in a drop or a paste: a local image file, its path as text, or pixels;
and what counts as a sound query: a local audio file, or its path as text."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QBuffer, QMimeData
from PySide6.QtGui import QImage

from clifs.engine.media import kind_of
from clifs.engine.paths import canonical_file


def image_from_mime(mime: QMimeData) -> str | QImage | None:
    """An image query carried by a drop or the clipboard: a local image file, or raw image data."""
    for url in mime.urls():
        if url.isLocalFile() and kind_of(url.toLocalFile()) == "image" and Path(url.toLocalFile()).is_file():
            return url.toLocalFile()
    if mime.hasImage():
        image = QImage(mime.imageData())
        if not image.isNull():
            return image
    if mime.hasText():
        text = mime.text().strip()
        if "\n" not in text and kind_of(text) == "image" and Path(text).expanduser().is_file():
            return canonical_file(text)
    return None


def sound_from_mime(mime: QMimeData) -> str | None:
    """A sound query carried by a drop or the clipboard: a local audio file (or its path as text)."""
    for url in mime.urls():
        if url.isLocalFile() and kind_of(url.toLocalFile()) == "audio" and Path(url.toLocalFile()).is_file():
            return url.toLocalFile()
    if mime.hasText():
        text = mime.text().strip()
        if "\n" not in text and kind_of(text) == "audio" and Path(text).expanduser().is_file():
            return canonical_file(text)
    return None


def qimage_to_pil(image: QImage) -> Image.Image:
    buffer = QBuffer()
    buffer.open(QBuffer.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return Image.open(io.BytesIO(bytes(buffer.data()))).convert("RGB")
