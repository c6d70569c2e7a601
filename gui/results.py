"""The results grid: a list model of hits and a delegate that paints each cell.

One model row per hit, painted by the delegate (thumbnail, file name, score,
video moment): a thousand results cost a thousand small Python objects, not a
thousand widgets. Thumbnails are asked for only when the view paints a row, so
only what is on screen gets decoded.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPainterPath, QPalette, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from clifs.engine.search import Hit
from gui import format as fmt

HIT_ROLE = Qt.ItemDataRole.UserRole + 1
THUMB_ERROR_ROLE = Qt.ItemDataRole.UserRole + 2

THUMB_SIDE = 160  # logical pixels; thumbnails are made at 256 so they stay sharp on HiDPI screens
PADDING = 8


def thumbnail_key(hit: Hit) -> str:
    """A hit's thumbnail identity: the file as it was indexed, at the moment shown."""
    return f"{hit.path}\0{hit.mtime}\0{hit.timestamp}"


def cell_size(metrics: QFontMetrics) -> QSize:
    """One result: the thumbnail square, then two lines of text (name, score)."""
    return QSize(THUMB_SIDE + 2 * PADDING, THUMB_SIDE + 2 * PADDING + 2 * metrics.height() + 6)


class ResultsModel(QAbstractListModel):
    #: A row on screen needs its thumbnail: (key, path, timestamp, row). Connect it to a loader.
    thumbnail_wanted = Signal(str, str, object, int)

    def __init__(self, parent: QObject | None = None, max_thumbnails: int = 400):
        super().__init__(parent)
        self._hits: list[Hit] = []
        self._rows_by_key: dict[str, list[int]] = {}
        # Kept across searches, so retyping a query shows its thumbnails at once.
        self._thumbs: OrderedDict[str, QPixmap] = OrderedDict()
        self._errors: dict[str, str] = {}
        self._asked: set[str] = set()
        self._max_thumbnails = max_thumbnails

    # -- contents ---------------------------------------------------------------------------
    def set_hits(self, hits: list[Hit]) -> None:
        self.beginResetModel()
        self._hits = list(hits)
        self._rows_by_key = {}
        for row, hit in enumerate(self._hits):
            self._rows_by_key.setdefault(thumbnail_key(hit), []).append(row)
        self._asked.clear()  # a loader may have dropped queued requests of the last search
        self.endResetModel()

    def hits(self) -> list[Hit]:
        return list(self._hits)

    def hit(self, row: int) -> Hit:
        return self._hits[row]

    def set_thumbnail(self, key: str, image: QImage) -> None:
        if key not in self._rows_by_key:
            return  # a late answer for a search that has been replaced
        self._thumbs[key] = QPixmap.fromImage(image)
        self._thumbs.move_to_end(key)
        while len(self._thumbs) > self._max_thumbnails:
            self._thumbs.popitem(last=False)
        self._errors.pop(key, None)
        self._changed(key)

    def set_thumbnail_failed(self, key: str, reason: str) -> None:
        if key not in self._rows_by_key:
            return
        self._errors[key] = reason
        self._changed(key)

    def thumbnail(self, row: int) -> QPixmap | None:
        return self._thumbs.get(thumbnail_key(self._hits[row]))

    def _changed(self, key: str) -> None:
        for row in self._rows_by_key.get(key, []):
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole, THUMB_ERROR_ROLE])

    # -- QAbstractListModel -----------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._hits)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._hits):
            return None
        hit = self._hits[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return Path(hit.path).name
        if role == Qt.ItemDataRole.DecorationRole:
            return self._decoration(hit, index.row())
        if role == Qt.ItemDataRole.ToolTipRole:
            where = f" at {fmt.moment(hit.timestamp)}" if hit.timestamp is not None else ""
            error = self._errors.get(thumbnail_key(hit))
            copies = (
                f"\n{similar_badge(hit)}: {', '.join(Path(p).name for p in hit.duplicates[:5])}"
                if hit.duplicates
                else ""
            )
            shot = f"\nsame shot: {', '.join(Path(p).name for p in hit.same_shot)}" if hit.same_shot else ""
            tip = f"{hit.path}{where}\nscore {fmt.score(hit.score)}{shot}{copies}"
            return tip + (f"\nno preview: {error}" if error else "")
        if role == Qt.ItemDataRole.AccessibleTextRole:
            badge = f", {similar_badge(hit)}" if hit.duplicates else ""
            return f"{Path(hit.path).name}, score {fmt.score(hit.score)}{badge}"
        if role == HIT_ROLE:
            return hit
        if role == THUMB_ERROR_ROLE:
            return self._errors.get(thumbnail_key(hit))
        return None

    def _decoration(self, hit: Hit, row: int) -> QPixmap | None:
        key = thumbnail_key(hit)
        pixmap = self._thumbs.get(key)
        if pixmap is not None:
            self._thumbs.move_to_end(key)
            return pixmap
        if key not in self._asked and key not in self._errors:
            self._asked.add(key)
            self.thumbnail_wanted.emit(key, hit.path, hit.timestamp, row)
        return None


class ResultDelegate(QStyledItemDelegate):
    """A thumbnail with the file name, the score and (for a video) the moment under it."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return cell_size(option.fontMetrics)

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        hit: Hit | None = index.data(HIT_ROLE)
        if hit is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        palette = option.palette
        cell = option.rect.adjusted(2, 2, -2, -2)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            fill = QColor(palette.color(QPalette.ColorRole.Highlight))
            fill.setAlpha(70 if option.state & QStyle.StateFlag.State_Active else 45)
            painter.setPen(palette.color(QPalette.ColorRole.Highlight))
            painter.setBrush(fill)
            painter.drawRoundedRect(cell, 6, 6)
        elif option.state & QStyle.StateFlag.State_MouseOver:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(palette.color(QPalette.ColorRole.Midlight))
            painter.drawRoundedRect(cell, 6, 6)

        thumb_area = QRect(0, cell.y() + PADDING - 2, THUMB_SIDE, THUMB_SIDE)
        thumb_area.moveLeft(cell.center().x() - THUMB_SIDE // 2)
        image_rect = self._paint_thumbnail(painter, palette, thumb_area, index)
        if hit.timestamp is not None:
            self._paint_moment(painter, image_rect, hit.timestamp, heard=hit.matched == "sound")
        if similar_badge(hit):
            self._paint_similar(painter, image_rect, similar_badge(hit))

        line = option.fontMetrics.height()
        text_rect = QRect(thumb_area.x(), thumb_area.bottom() + 6, thumb_area.width(), line)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        name = option.fontMetrics.elidedText(Path(hit.path).name, Qt.TextElideMode.ElideMiddle, text_rect.width())
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter, name)
        painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
        painter.drawText(
            text_rect.translated(0, line),
            Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter,
            f"score {fmt.score(hit.score)}",
        )
        painter.restore()

    @staticmethod
    def _paint_thumbnail(painter: QPainter, palette: QPalette, area: QRect, index: QModelIndex) -> QRect:
        """The thumbnail fitted into ``area`` (a placeholder while it loads); returns where it went."""
        pixmap: QPixmap | None = index.data(Qt.ItemDataRole.DecorationRole)
        if pixmap is None or pixmap.isNull():
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(palette.color(QPalette.ColorRole.AlternateBase))
            painter.drawRoundedRect(area, 4, 4)
            if index.data(THUMB_ERROR_ROLE):
                painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
                painter.drawText(area, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, "no preview")
            return area
        size = pixmap.deviceIndependentSize().toSize().scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
        target = QRect(0, 0, size.width(), size.height())
        target.moveCenter(area.center())
        clip = QPainterPath()
        clip.addRoundedRect(target, 4, 4)
        painter.setClipPath(clip)
        painter.drawPixmap(target, pixmap)
        painter.setClipping(False)
        return target

    @staticmethod
    def _paint_similar(painter: QPainter, area: QRect, label: str) -> None:
        """A badge in the thumbnail's top-right corner: this photo has near-duplicate copies."""
        painter.save()
        font = QFont(painter.font())
        font.setBold(True)
        painter.setFont(font)
        width = painter.fontMetrics().horizontalAdvance(label) + 12
        height = painter.fontMetrics().height() + 4
        badge = QRect(area.right() - width - 5, area.top() + 5, width, height)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(20, 90, 160, 200))
        painter.drawRoundedRect(badge, 4, 4)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, label)
        painter.restore()

    @staticmethod
    def _paint_moment(painter: QPainter, area: QRect, timestamp: float, heard: bool = False) -> None:
        """A dark badge on the thumbnail: this moment of the video was seen (▶) or heard (♪) here."""
        painter.save()
        font = QFont(painter.font())
        font.setBold(True)
        painter.setFont(font)
        label = f"{'♪' if heard else '▶'} {fmt.moment(timestamp)}"
        width = painter.fontMetrics().horizontalAdvance(label) + 12
        height = painter.fontMetrics().height() + 4
        badge = QRect(area.left() + 6, area.bottom() - height - 5, width, height)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 170))
        painter.drawRoundedRect(badge, 4, 4)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, label)
        painter.restore()


def similar_badge(hit: Hit) -> str:
    """ "+3 similar" on a hit that stands for a group of near-duplicate copies ("" for none)."""
    return f"+{len(hit.duplicates)} similar" if hit.duplicates else ""


class ResultsView(QListView):
    """The grid: static icon layout that reflows with the width; arrows move, Enter activates."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setWrapping(True)
        self.setSpacing(4)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setMouseTracking(True)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setItemDelegate(ResultDelegate(self))
        self.setAccessibleName("Search results")

    def resizeEvent(self, event) -> None:
        """Spread the columns over the whole width instead of leaving a ragged gap on the right."""
        cell = cell_size(self.fontMetrics())
        available = self.viewport().width() - 2 * self.spacing()  # the layout's own margins
        if not self.verticalScrollBar().isVisible():  # the layout keeps room for it anyway
            available -= self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, self)
        columns = max(1, available // (cell.width() + 2 * self.spacing()))
        self.setGridSize(QSize(available // columns, cell.height() + 2 * self.spacing()))
        super().resizeEvent(event)
