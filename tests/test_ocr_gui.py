"""The window and the words in pictures: a quoted search, the recognised text in the detail pane
(selectable), the matched words' boxes drawn on the preview. Real widgets, real OCR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from tests.gui_helpers import WAIT_MS, indexed_window
from tests.ocr_helpers import draw_words, scene


def _yellow_pixels(image: QImage) -> int:
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(rgb.constBits(), np.uint8).reshape(rgb.height(), rgb.bytesPerLine())
    px = rows[:, : 3 * rgb.width()].reshape(rgb.height(), rgb.width(), 3).astype(int)
    return int(((px[..., 0] > 220) & (px[..., 1] > 160) & (px[..., 1] < 230) & (px[..., 2] < 80)).sum())


def test_a_quoted_search_shows_the_text_and_its_boxes(qtbot, tmp_path, test_encoder, monkeypatch):
    photos, home = tmp_path / "photos", tmp_path / "home"
    photos.mkdir()
    background = scene(384, 900)
    draw_words(background, "odwalla", "Lato-Bold", 44).save(photos / "sign.jpg", quality=92)
    background.save(photos / "plain.png")
    with indexed_window(qtbot, monkeypatch, home, photos, test_encoder, read_text=True) as window:
        qtbot.keyClicks(window.search_field, '"odwalla"')
        qtbot.keyClick(window.search_field, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: window.results.rowCount() == 1, timeout=WAIT_MS)
        qtbot.keyClick(window.search_field, Qt.Key.Key_Down)
        assert Path(window.results.hit(0).path).name == "sign.jpg"
        detail = window.detail
        assert detail.recognised.isVisible() and detail.recognised.toPlainText().lower() == "odwalla"
        assert detail.recognised.isReadOnly()  # selectable and copyable, not editable
        qtbot.waitUntil(detail.preview.has_image, timeout=WAIT_MS)
        assert _yellow_pixels(detail.preview.image()) > 100  # the word's box, drawn on the preview
        assert _yellow_pixels(QImage(str(photos / "sign.jpg"))) == 0
