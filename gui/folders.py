"""The folders dialog: which folders are indexed, and adding, removing, pausing them.

It changes folders only through the indexer (``FolderActions``), which updates
the catalog and starts or stops the work; the list is read back from the
catalog, the truth, after every change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from clifs.engine.catalog import Catalog

PATH_ROLE = Qt.ItemDataRole.UserRole + 1
PAUSED_ROLE = Qt.ItemDataRole.UserRole + 2


class FolderActions(Protocol):
    def add_folder(self, path: str) -> None: ...
    def remove_folder(self, path: str) -> None: ...
    def set_folder_paused(self, path: str, paused: bool) -> None: ...


def choose_folder(parent: QWidget) -> str | None:
    """Ask for a folder with the platform's own dialog."""
    path = QFileDialog.getExistingDirectory(parent, "Add a folder to index")
    return path or None


class FoldersDialog(QDialog):
    def __init__(
        self,
        catalog: Catalog,
        actions: FolderActions,
        parent: QWidget | None = None,
        chooser: Callable[[QWidget], str | None] = choose_folder,
    ):
        super().__init__(parent)
        self.setWindowTitle("Folders")
        self.resize(560, 340)
        self._catalog = catalog
        self._actions = actions
        self._chooser = chooser

        self.model = QStandardItemModel(self)
        self.view = QListView()
        self.view.setModel(self.model)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setAccessibleName("Indexed folders")
        self.view.selectionModel().currentChanged.connect(lambda *_: self._update_buttons())

        self.add_button = QPushButton("Add folder…")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Stop indexing this folder and forget its files (the files stay on disk)")
        self.pause_button = QPushButton("Pause")
        self.add_button.clicked.connect(self.add_folder)
        self.remove_button.clicked.connect(self.remove_selected)
        self.pause_button.clicked.connect(self.toggle_pause_selected)

        side = QVBoxLayout()
        for button in (self.add_button, self.remove_button, self.pause_button):
            side.addWidget(button)
        side.addStretch(1)
        body = QHBoxLayout()
        body.addWidget(self.view, 1)
        body.addLayout(side)

        hint = QLabel("clifs indexes these folders and watches them for new, changed and deleted files.")
        hint.setWordWrap(True)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(hint)
        layout.addLayout(body, 1)
        layout.addWidget(close)
        self.refresh()

    def refresh(self) -> None:
        current = self.selected_path()
        self.model.clear()
        for folder in self._catalog.folders():
            item = QStandardItem(f"{folder.path}  (paused)" if folder.paused else folder.path)
            item.setData(folder.path, PATH_ROLE)
            item.setData(folder.paused, PAUSED_ROLE)
            item.setToolTip(folder.path)
            self.model.appendRow(item)
            if folder.path == current:
                self.view.setCurrentIndex(item.index())
        if not self.view.currentIndex().isValid() and self.model.rowCount():
            self.view.setCurrentIndex(self.model.index(0, 0))
        self._update_buttons()

    def paths(self) -> list[str]:
        return [self.model.item(row).data(PATH_ROLE) for row in range(self.model.rowCount())]

    def selected_path(self) -> str | None:
        index = self.view.currentIndex()
        return index.data(PATH_ROLE) if index.isValid() else None

    def add_folder(self) -> None:
        path = self._chooser(self)
        if path:
            self._actions.add_folder(path)
            self.refresh()

    def remove_selected(self) -> None:
        path = self.selected_path()
        if path is None:
            return
        answer = QMessageBox.question(
            self,
            "Remove folder",
            f"Stop indexing {path} and remove its files from the search?\nThe files themselves are not touched.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self._actions.remove_folder(path)
            self.refresh()

    def toggle_pause_selected(self) -> None:
        index = self.view.currentIndex()
        if index.isValid():
            self._actions.set_folder_paused(index.data(PATH_ROLE), not index.data(PAUSED_ROLE))
            self.refresh()

    def _update_buttons(self) -> None:
        index = self.view.currentIndex()
        self.remove_button.setEnabled(index.isValid())
        self.pause_button.setEnabled(index.isValid())
        self.pause_button.setText("Resume" if index.isValid() and index.data(PAUSED_ROLE) else "Pause")
