"""What a hit in the results offers: Enter or a double-click opens it; its context menu opens it,
shows it in its folder, copies its path, or finds similar images (or, for a sound, similar sounds)."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QObject, QPoint, Signal
from PySide6.QtWidgets import QMenu

from gui import desktop
from gui.results import ResultsModel, ResultsView


class HitActions(QObject):
    message = Signal(str, int)  # for the status bar: text, milliseconds shown
    find_similar = Signal(str)  # an image's path, to search by
    find_similar_sound = Signal(str)  # an audio file's path, to search by

    def __init__(
        self, view: ResultsView, results: ResultsModel, open_url: desktop.OpenUrl, parent: QObject | None = None
    ):
        super().__init__(parent)
        self._view = view
        self._results = results
        self._open_url = open_url
        view.activated.connect(self._activated)
        view.customContextMenuRequested.connect(self._context_menu)

    def open(self, path: str) -> None:
        if not desktop.open_file(path, self._open_url):
            self.message.emit(f"No application could open {path}", 10_000)

    def reveal(self, path: str) -> None:
        desktop.reveal_in_folder(path, self._open_url)

    def copy_path(self, path: str) -> None:
        desktop.copy_path(path)
        self.message.emit(f"Copied {path}", 4000)

    def _activated(self, index: QModelIndex) -> None:
        self.open(self._results.hit(index.row()).path)

    def _context_menu(self, pos: QPoint) -> None:
        index = self._view.indexAt(pos)
        if not index.isValid():
            return
        hit = self._results.hit(index.row())
        menu = QMenu(self._view)
        menu.addAction("Open", lambda: self.open(hit.path))
        menu.addAction("Show in folder", lambda: self.reveal(hit.path))
        menu.addAction("Copy path", lambda: self.copy_path(hit.path))
        if hit.kind == "image":
            menu.addSeparator()
            menu.addAction("Find similar", lambda: self.find_similar.emit(hit.path))
        elif hit.kind == "audio":
            menu.addSeparator()
            menu.addAction("Find similar", lambda: self.find_similar_sound.emit(hit.path))
        menu.exec(self._view.viewport().mapToGlobal(pos))
