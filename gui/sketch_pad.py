"""A small drawing pad whose picture is a query image: draw a red blob, find red circles.

Pens in a few colours, an eraser, a bucket that fills a closed outline, three pen sizes and
"Clear". Every finished stroke (and every fill or clear) emits ``sketched`` with the picture,
which the window searches by as it does a dropped image, combined with any text typed by the
image weight. The picture is kept at ``SIDE`` × ``SIDE`` pixels on white paper.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QMouseEvent, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QButtonGroup, QFrame, QHBoxLayout, QSizePolicy, QToolButton, QVBoxLayout, QWidget

SIDE = 256
PAPER = QColor(255, 255, 255)
#: The pens; devkit/sketches.py draws its test sketches with the same colours.
PEN_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (20, 20, 20),
    "red": (230, 20, 20),
    "orange": (255, 140, 0),
    "yellow": (250, 215, 0),
    "green": (20, 160, 40),
    "blue": (20, 60, 240),
    "purple": (140, 30, 190),
}
#: Pen widths in picture pixels: thin, medium (the default), thick.
PEN_SIZES = {"thin": 4, "medium": 10, "thick": 24}


class SketchCanvas(QWidget):
    """The paper: strokes with the mouse (or a pen tablet's mouse events), shown scaled to fit."""

    stroke_finished = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.picture = QImage(SIDE, SIDE, QImage.Format.Format_RGB32)
        self.picture.fill(PAPER)
        self.colour = QColor(*PEN_COLOURS["red"])
        self.width_px = PEN_SIZES["medium"]
        self.tool = "pen"  # "pen" | "eraser" | "fill"
        self._last: QPointF | None = None
        self._drawn = False
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setAccessibleName("Sketch pad: draw what you are looking for")

    def sizeHint(self) -> QSize:
        return QSize(200, 200)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return width

    def target(self) -> QRect:
        """Where the picture is painted: the largest centred square that fits."""
        side = min(self.width(), self.height())
        return QRect((self.width() - side) // 2, (self.height() - side) // 2, side, side)

    def to_picture(self, pos: QPointF | QPoint) -> QPointF:
        t = self.target()
        scale = SIDE / max(1, t.width())
        return QPointF((pos.x() - t.x()) * scale, (pos.y() - t.y()) * scale)

    def is_blank(self) -> bool:
        return not self._drawn

    def clear(self) -> None:
        self.picture.fill(PAPER)
        self._drawn = False
        self.update()

    def stroke(self, points: list[QPointF]) -> None:
        """Draw a polyline in picture pixels with the current tool, as a mouse drag would."""
        for a, b in zip(points, points[1:] or points, strict=False):
            self._segment(a, b)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        point = self.to_picture(event.position())
        if self.tool == "fill":
            self._fill(point)
            self.stroke_finished.emit()
            return
        self._last = point
        self._segment(point, point)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._last is not None:  # a stroke is on (tracked here, not from the event's buttons)
            point = self.to_picture(event.position())
            self._segment(self._last, point)
            self._last = point

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._last is not None and event.button() == Qt.MouseButton.LeftButton:
            self._segment(self._last, self.to_picture(event.position()))
            self._last = None
            self.stroke_finished.emit()

    def _segment(self, a: QPointF, b: QPointF) -> None:
        painter = QPainter(self.picture)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        ink = PAPER if self.tool == "eraser" else self.colour
        width = self.width_px * (2 if self.tool == "eraser" else 1)
        painter.setPen(QPen(ink, width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
        painter.drawLine(a, b)
        painter.end()
        self._drawn = self._drawn or self.tool != "eraser"
        self.update()

    def _fill(self, point: QPointF) -> None:
        """Fill the area around ``point`` that has the colour under it (an outline's inside) with the pen."""
        import cv2

        x, y = int(point.x()), int(point.y())
        if not (0 <= x < SIDE and 0 <= y < SIDE):
            return
        rgb = picture_array(self.picture)
        # The area of (nearly) the colour under the click; then two pixels more, over the stroke's antialiased edge.
        tolerance = (60, 60, 60)
        mask = np.zeros((SIDE + 2, SIDE + 2), np.uint8)
        flags = 4 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (255 << 8)
        cv2.floodFill(rgb, mask, (x, y), (0, 0, 0), tolerance, tolerance, flags=flags)
        area = cv2.dilate(mask[1:-1, 1:-1], np.ones((3, 3), np.uint8), iterations=2) > 0
        rgb[area] = self.colour.getRgb()[:3]
        self.picture = QImage(rgb.data, SIDE, SIDE, 3 * SIDE, QImage.Format.Format_RGB888).convertToFormat(
            QImage.Format.Format_RGB32
        )
        self._drawn = True
        self.update()

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        t = self.target()
        painter.drawImage(t, self.picture)
        painter.setPen(QPen(self.palette().color(self.foregroundRole()), 1))
        painter.drawRect(t.adjusted(0, 0, -1, -1))


def picture_array(image: QImage) -> np.ndarray:
    """(h, w, 3) uint8 RGB copy of a QImage."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(rgb.constBits(), np.uint8).reshape(rgb.height(), rgb.bytesPerLine())
    return rows[:, : 3 * rgb.width()].reshape(rgb.height(), rgb.width(), 3).copy()


def _swatch(rgb: tuple[int, int, int]) -> QIcon:
    pixmap = QPixmap(16, 16)
    pixmap.fill(QColor(*rgb))
    return QIcon(pixmap)


class SketchPad(QFrame):
    """The canvas with its tools. ``sketched(QImage)`` after every change; a blank pad sends ``cleared``."""

    sketched = Signal(QImage)
    cleared = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.canvas = SketchCanvas()
        self.canvas.stroke_finished.connect(self._changed)
        self.colour_buttons: dict[str, QToolButton] = {}
        self.tool_buttons: dict[str, QToolButton] = {}
        self.size_buttons: dict[str, QToolButton] = {}
        colours = QButtonGroup(self)  # one pen colour at a time
        colours_row = QHBoxLayout()
        colours_row.setSpacing(2)
        for name, rgb in PEN_COLOURS.items():
            button = QToolButton()
            button.setIcon(_swatch(rgb))
            button.setCheckable(True)
            button.setToolTip(f"{name.capitalize()} pen")
            button.setAccessibleName(f"{name} pen")
            button.clicked.connect(lambda _=False, name=name: self.choose_pen(name))
            colours.addButton(button)
            self.colour_buttons[name] = button
            colours_row.addWidget(button)
        colours_row.addStretch(1)
        tools_row = QHBoxLayout()
        tools_row.setSpacing(2)
        for tool, text, tip in (
            ("eraser", "Eraser", "Rub out"),
            ("fill", "Fill", "Fill a closed outline with the pen's colour"),
        ):
            button = QToolButton()
            button.setText(text)
            button.setCheckable(True)
            button.setToolTip(tip)
            button.clicked.connect(lambda _=False, tool=tool: self.choose_tool(tool))
            self.tool_buttons[tool] = button
            tools_row.addWidget(button)
        sizes = QButtonGroup(self)
        for name in PEN_SIZES:
            button = QToolButton()
            button.setText({"thin": "·", "medium": "•", "thick": "●"}[name])
            button.setCheckable(True)
            button.setToolTip(f"{name.capitalize()} pen")
            button.clicked.connect(lambda _=False, name=name: self.choose_size(name))
            sizes.addButton(button)
            self.size_buttons[name] = button
            tools_row.addWidget(button)
        tools_row.addStretch(1)
        self.clear_button = QToolButton()
        self.clear_button.setText("Clear")
        self.clear_button.setToolTip("Clear the pad (and stop searching by the sketch)")
        self.clear_button.clicked.connect(self.clear)
        tools_row.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addLayout(colours_row)
        layout.addWidget(self.canvas)
        layout.addLayout(tools_row)
        layout.addStretch(1)
        self.choose_pen("red")
        self.choose_size("medium")

    def choose_pen(self, name: str) -> None:
        """Draw (or, with Fill on, fill) in this colour; the eraser goes back to the pen."""
        self.canvas.colour = QColor(*PEN_COLOURS[name])
        self.colour_buttons[name].setChecked(True)
        if self.canvas.tool == "eraser":
            self.choose_tool("pen")

    def choose_tool(self, tool: str) -> None:
        """ "eraser", "fill" or "pen"; choosing the tool that is on turns it off (back to the pen)."""
        self.canvas.tool = "pen" if tool == self.canvas.tool else tool
        for name, button in self.tool_buttons.items():
            button.setChecked(name == self.canvas.tool)

    def choose_size(self, name: str) -> None:
        self.canvas.width_px = PEN_SIZES[name]
        self.size_buttons[name].setChecked(True)

    def image(self) -> QImage:
        return self.canvas.picture.copy()

    def is_blank(self) -> bool:
        return self.canvas.is_blank()

    def clear(self) -> None:
        self.canvas.clear()
        self.cleared.emit()

    def _changed(self) -> None:
        if self.canvas.is_blank():
            self.cleared.emit()
        else:
            self.sketched.emit(self.image())
