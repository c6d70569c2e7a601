"""The detail pane: a large preview of the selected hit and what is known about its file.

The pane asks for previews through ``preview_wanted`` and shows whatever comes
back for the key it is waiting on, so a slow decode of a previous selection
never replaces the current one.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPointF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPalette, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from clifs.engine.search import Hit
from gui import format as fmt
from gui.vision_panel import VisionPanel


class ImageView(QWidget):
    """Paints one image scaled to fit, centred; a line of text while there is none.

    Its height follows the image's aspect ratio for the width it gets, so the
    text under it sits right below the picture instead of below a gap.
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._image: QImage | None = None
        self._pixmap: QPixmap | None = None
        self._message = ""
        self._aspect = 0.75  # height / width
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.setMinimumSize(200, 120)

    def sizeHint(self) -> QSize:
        return QSize(360, self.heightForWidth(360))

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return int(width * self._aspect)

    def set_aspect(self, width: int | None, height: int | None) -> None:
        """The shape to reserve before the image arrives (from the catalog's dimensions)."""
        if width and height:
            self._aspect = height / width
            self.updateGeometry()

    def set_image(self, image: QImage | None, message: str = "") -> None:
        self._image = image
        self._pixmap = QPixmap.fromImage(image) if image is not None else None
        self._message = message
        if image is not None:
            self.set_aspect(image.width(), image.height())
        self.update()

    def has_image(self) -> bool:
        return self._pixmap is not None

    def image(self) -> QImage | None:
        return self._image

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if self._pixmap is None:
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._message)
            return
        size = self._pixmap.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        x = (self.width() - size.width()) // 2
        y = (self.height() - size.height()) // 2
        painter.drawPixmap(x, y, size.width(), size.height(), self._pixmap)


def _value_label() -> QLabel:
    label = QLabel()
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(True)
    return label


class DetailPane(QWidget):
    preview_wanted = Signal(str, str, object)  # key, path, timestamp
    labels_wanted = Signal(str, int)  # key, item id
    overlay_wanted = Signal(
        str, str, object, str, str
    )  # key, path, timestamp, query text, "mask" | "boxes" | "regions"
    open_requested = Signal(str)
    reveal_requested = Signal(str)
    copy_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.hit: Hit | None = None
        self._query_text = ""
        self._timestamp: float | None = None
        self._plain: QImage | None = None  # the preview without overlays
        self._waiting_for: str | None = None
        self._waiting_labels: str | None = None
        self._waiting_overlay: str | None = None

        self.preview = ImageView()
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = QFont(self.title.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.2)
        self.title.setFont(font)

        self.folder = _value_label()
        self.size_label = _value_label()
        self.modified = _value_label()
        self.dimensions = _value_label()
        self.score = _value_label()
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        form.addRow("Folder", self.folder)
        form.addRow("Size", self.size_label)
        form.addRow("Modified", self.modified)
        form.addRow("Dimensions", self.dimensions)
        form.addRow("Score", self.score)
        # what the photo says about itself: when it was taken, with what, where
        self.taken = _value_label()
        self.camera = _value_label()
        self.place = QLabel()
        self.place.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.place.setOpenExternalLinks(True)
        self.place.setWordWrap(True)
        form.addRow("Taken", self.taken)
        form.addRow("Camera", self.camera)
        form.addRow("Place", self.place)
        self._form = form

        # The words read in the picture (the OCR pass): selectable and copyable.
        self.text_title = QLabel("Text in the picture")
        self.recognised = QPlainTextEdit()
        self.recognised.setReadOnly(True)
        self.recognised.setAccessibleName("Text read in this picture")
        self.recognised.setMaximumHeight(90)
        self._item_id: int | None = None

        self.vision = VisionPanel()
        self.vision.overlay_changed.connect(self._overlay_changed)

        self.moments_title = QLabel("Best moments")
        self.moments = QListWidget()
        self.moments.setAccessibleName("Best moments in this video")
        self.moments.currentItemChanged.connect(self._moment_chosen)

        self.open_button = QPushButton("Open")
        self.open_button.setToolTip("Open with the default application (Enter)")
        self.reveal_button = QPushButton("Show in folder")
        self.copy_button = QPushButton("Copy path")
        self.open_button.clicked.connect(lambda: self.hit and self.open_requested.emit(self.hit.path))
        self.reveal_button.clicked.connect(lambda: self.hit and self.reveal_requested.emit(self.hit.path))
        self.copy_button.clicked.connect(lambda: self.hit and self.copy_requested.emit(self.hit.path))
        buttons = QHBoxLayout()
        for button in (self.open_button, self.reveal_button, self.copy_button):
            buttons.addWidget(button)
        buttons.addStretch(1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(self.preview)
        layout.addWidget(self.title)
        layout.addLayout(form)
        layout.addWidget(self.text_title)
        layout.addWidget(self.recognised)
        layout.addWidget(self.vision)
        layout.addWidget(self.moments_title)
        layout.addWidget(self.moments)
        # the other copies of this photo (near-duplicates) and the other files of its shot (RAW + JPEG)
        self.copies_title = QLabel()
        self.copies = QListWidget()
        self.copies.setAccessibleName("Other copies of this photo")
        self.copies.setToolTip("Double-click to open a copy")
        self.copies.itemActivated.connect(lambda item: self.open_requested.emit(item.data(Qt.ItemDataRole.UserRole)))
        layout.addWidget(self.copies_title)
        layout.addWidget(self.copies)
        layout.addLayout(buttons)
        layout.addStretch(1)

    def show_hit(self, hit: Hit, query_text: str = "") -> None:
        """Show ``hit``, found by ``query_text`` (offered to the mask and box overlays)."""
        # The same hit again (the results were refreshed): keep its preview, moment, labels and overlay.
        same = self.hit is not None and (self.hit.path, self.hit.item_id, self._query_text) == (
            hit.path,
            hit.item_id,
            query_text,
        )
        self.hit = hit
        self._query_text = query_text
        path = Path(hit.path)
        self.title.setText(path.name)
        self.folder.setText(str(path.parent))
        self.folder.setToolTip(hit.path)
        self.size_label.setText(fmt.size(hit.size))
        self.modified.setText(fmt.date(hit.mtime))
        self.dimensions.setText(
            f"{hit.width} × {hit.height}"
            if hit.width and hit.height
            else "a sound"
            if hit.kind == "audio"
            else "unknown"
        )
        where = f" at {fmt.moment(hit.timestamp)}" if hit.timestamp is not None else ""
        self.score.setText(f"{fmt.score(hit.score)}{where}")
        self._show_photo_facts(hit)
        self.recognised.setPlainText(hit.recognised or "")
        self.text_title.setVisible(bool(hit.recognised))
        self.recognised.setVisible(bool(hit.recognised))
        if same:
            return
        self.preview.set_aspect(hit.width, hit.height)
        self.moments.blockSignals(True)
        self.moments.clear()
        if hit.timestamp is not None:
            moments = [(hit.timestamp, hit.score, hit.item_id, hit.matched)] + [
                (m.timestamp, m.score, m.item_id, m.matched) for m in hit.moments
            ]
            for timestamp, score, item_id, matched in moments:
                heard = "  (heard)" if matched == "sound" and hit.kind == "video" else ""
                label = f"{fmt.moment(timestamp, tenths=matched == 'sound')}    score {fmt.score(score)}{heard}"
                item = QListWidgetItem(label)
                item.setData(Qt.ItemDataRole.UserRole, (timestamp, item_id))
                self.moments.addItem(item)
            self.moments.setCurrentRow(0)
        self.moments.blockSignals(False)
        rows = min(self.moments.count(), 6)  # as tall as its rows, up to six; then it scrolls
        self.moments.setFixedHeight(
            rows * self.moments.sizeHintForRow(0) + 2 * self.moments.frameWidth() if rows else 0
        )
        self.moments_title.setVisible(hit.timestamp is not None)
        self.moments.setVisible(hit.timestamp is not None)
        self._show_moment(hit.timestamp, hit.item_id)

    def _show_photo_facts(self, hit: Hit) -> None:
        """Date taken, camera and place (a map link), and the group of copies, where the file has them."""
        self.taken.setText(taken_text(hit.taken, hit.taken_from))
        self.camera.setText(hit.camera or "")
        self.place.setText(place_link(hit.latitude, hit.longitude))
        self._form.setRowVisible(self.camera, bool(hit.camera))
        self._form.setRowVisible(self.place, bool(self.place.text()))
        others = [(p, "same shot") for p in hit.same_shot] + [(p, "similar") for p in hit.duplicates]
        self.copies.clear()
        for path, why in others:
            item = QListWidgetItem(f"{Path(path).name}  ({why})")
            item.setToolTip(path)
            item.setData(Qt.ItemDataRole.UserRole, path)
            self.copies.addItem(item)
        parts = []
        if hit.same_shot:
            parts.append(f"{len(hit.same_shot) + 1} files of one shot")
        if hit.duplicates:
            parts.append(f"+{len(hit.duplicates)} similar")
        self.copies_title.setText("Copies: " + ", ".join(parts) if parts else "")
        rows = min(self.copies.count(), 5)
        self.copies.setFixedHeight(rows * self.copies.sizeHintForRow(0) + 2 * self.copies.frameWidth() if rows else 0)
        self.copies_title.setVisible(bool(others))
        self.copies.setVisible(bool(others))

    def _moment_chosen(self, item: QListWidgetItem | None) -> None:
        if item is not None and self.hit is not None:
            self._show_moment(*item.data(Qt.ItemDataRole.UserRole))

    def _show_moment(self, timestamp: float | None, item_id: int) -> None:
        """Preview and label one item: the image, or one moment of the video."""
        assert self.hit is not None
        self._timestamp = timestamp
        self._item_id = item_id
        self._plain = None
        key = f"{self.hit.path}\0{self.hit.mtime}\0{timestamp}"
        self._waiting_for = key
        self._waiting_overlay = None
        self.preview.set_image(None, "Loading preview…")
        self.preview_wanted.emit(key, self.hit.path, timestamp)
        self.vision.reset(self._query_text, picture=self.hit.kind != "audio")
        self._waiting_labels = f"labels\0{item_id}"
        self.labels_wanted.emit(self._waiting_labels, item_id)

    def set_preview(self, key: str, image: QImage) -> None:
        if key == self._waiting_for:
            image = self._with_text_boxes(image)
            self._plain = image
            if self._waiting_overlay is None:
                self.preview.set_image(image)

    def _with_text_boxes(self, image: QImage) -> QImage:
        """The preview with the boxes of the words the query matched (in the file's pixels) drawn on it."""
        hit = self.hit
        if hit is None or not hit.text_boxes or self._item_id != hit.item_id or not hit.width or not hit.height:
            return image
        sx, sy = image.width() / hit.width, image.height() / hit.height
        out = image.convertToFormat(QImage.Format.Format_ARGB32)
        painter = QPainter(out)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(255, 200, 0), max(2.0, image.width() / 300)))
        painter.setBrush(QColor(255, 200, 0, 60))
        for entry in hit.text_boxes:
            painter.drawPolygon(QPolygonF([QPointF(x * sx, y * sy) for x, y in entry["box"]]))
        painter.end()
        return out

    def set_labels(self, key: str, scores: list) -> None:
        if key == self._waiting_labels:
            self.vision.set_labels(scores)

    def set_labels_failed(self, key: str, reason: str) -> None:
        if key == self._waiting_labels:
            self.vision.set_labels_failed(reason)

    def _overlay_changed(self, mode: str) -> None:
        if self.hit is None:
            return
        if not mode:
            self._waiting_overlay = None
            self.vision.set_busy(False)
            if self._plain is not None:
                self.preview.set_image(self._plain)
            return
        key = f"{self.hit.path}\0{self._timestamp}\0{mode}\0{self._query_text}"
        self._waiting_overlay = key
        self.vision.set_busy(True)
        self.overlay_wanted.emit(key, self.hit.path, self._timestamp, self._query_text.strip(), mode)

    def set_overlay(self, key: str, image: QImage, note: str = "") -> None:
        """The mask or boxes painted over the preview; ``note`` says when nothing was found."""
        if key == self._waiting_overlay:
            self.vision.set_busy(False, note)
            self.preview.set_image(image)

    def set_regions(self, key: str, image: QImage, regions: list) -> None:
        """What "What's in it?" found: the regions painted over the preview and named under it."""
        if key == self._waiting_overlay:
            self.vision.set_busy(False)
            self.preview.set_image(image)
            self.vision.set_regions(regions)

    def set_overlay_failed(self, key: str, reason: str) -> None:
        if key == self._waiting_overlay:
            self._waiting_overlay = None
            self.vision.set_mode("")
            self.vision.set_busy(False, reason)
            if self._plain is not None:
                self.preview.set_image(self._plain)

    def set_preview_failed(self, key: str, reason: str) -> None:
        if key == self._waiting_for:
            self.preview.set_image(None, f"No preview: {reason}")


def taken_text(taken: str | None, taken_from: str | None) -> str:
    """ "2019-07-14 23:30 (UTC+02:00)"; a file date is said to be one."""
    if not taken:
        return "unknown"
    day, _, rest = taken.partition("T")
    clock, offset = rest[:5], rest[8:]
    text = f"{day} {clock}".strip()
    if offset and taken_from != "mtime":
        text += f" (UTC{offset})"
    if taken_from == "mtime":
        text += " (the file's date: the photo records none)"
    return text


def place_link(latitude: float | None, longitude: float | None) -> str:
    """The coordinates as a link to the place on OpenStreetMap ("" when unknown)."""
    if latitude is None or longitude is None:
        return ""
    url = (
        f"https://www.openstreetmap.org/?mlat={latitude:.6f}&mlon={longitude:.6f}#map=16/{latitude:.6f}/{longitude:.6f}"
    )
    return f'<a href="{url}">{latitude:.5f}, {longitude:.5f}</a> (map)'
