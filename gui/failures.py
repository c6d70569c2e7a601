"""The failures dialog: every file that could not be indexed, with the reason, from the catalog."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from clifs.engine.catalog import Catalog


class FailuresDialog(QDialog):
    def __init__(self, catalog: Catalog, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Files that could not be indexed")
        self.resize(760, 380)
        self.model = QStandardItemModel(0, 2, self)
        self.model.setHorizontalHeaderLabels(["File", "Reason"])
        for file, _items in catalog.list_files(failed_only=True):
            path, reason = QStandardItem(file.path), QStandardItem(file.error or "unknown reason")
            path.setToolTip(file.path)
            reason.setToolTip(file.error or "")
            self.model.appendRow([path, reason])

        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.verticalHeader().hide()
        self.view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.view.horizontalHeader().setStretchLastSection(True)
        self.view.setColumnWidth(0, 400)
        self.view.setWordWrap(False)

        count = self.model.rowCount()
        summary = QLabel(
            f"{count} file{'s' if count != 1 else ''} could not be indexed. clifs tries a file again when it changes."
            if count
            else "Every file was indexed."
        )
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = QPushButton("Copy list")
        copy.setEnabled(bool(count))
        copy.clicked.connect(self.copy_to_clipboard)
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(summary)
        layout.addWidget(self.view, 1)
        layout.addWidget(buttons)

    def rows(self) -> list[tuple[str, str]]:
        return [(self.model.item(r, 0).text(), self.model.item(r, 1).text()) for r in range(self.model.rowCount())]

    def copy_to_clipboard(self) -> None:
        QGuiApplication.clipboard().setText("\n".join(f"{path}\t{reason}" for path, reason in self.rows()))
