"""The main window: type (or drop an image) and see your photos and video moments.

It wires the pieces together and owns the flow of a search: keystrokes are
debounced, each search gets an id and only the latest one's answer is shown;
the indexer's progress refreshes the status bar and, while a query is on
screen, the results. Nothing here blocks: workers do the slow parts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from PySide6.QtCore import (
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPoint,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QDesktopServices, QDragEnterEvent, QDropEvent, QGuiApplication, QImage, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLineEdit,
    QMainWindow,
    QMenu,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from clifs.engine.library import Library
from clifs.engine.paths import canonical_folder
from clifs.engine.search import Hit
from clifs.engine.thumbnails import ThumbnailCache
from clifs.engine.vision.dense import supports_masks
from gui import desktop
from gui.detail import DetailPane
from gui.empty_state import EmptyState
from gui.failures import FailuresDialog
from gui.filters import FilterBar, hide_weak
from gui.folders import FoldersDialog, choose_folder
from gui.image_query import image_from_mime, qimage_to_pil
from gui.indexing import IndexerBridge
from gui.query_chip import QueryChip
from gui.results import ResultsModel, ResultsView
from gui.status import StatusPanel
from gui.workers import ModelLoader, SearchRequest, SearchRunner, VisionRunner, preview_loader, thumbnail_loader
from indexer.status import IndexerStatus

log = logging.getLogger(__name__)

DEBOUNCE_MS = 250
#: While indexing, a query on screen is rerun at most this often, so new files show up.
REFRESH_MS = 1500
FIRST_REFRESH_MS = 300
TOP = 120
CHIP_KEY_PREFIX = "query-chip\0"


class MainWindow(QMainWindow):
    #: The catalog's folder list changed (an edit here, by the indexer, or by another process).
    folders_changed = Signal()

    def __init__(
        self,
        library: Library,
        *,
        open_url: desktop.OpenUrl = QDesktopServices.openUrl,
        folder_chooser: Callable[[QWidget], str | None] = choose_folder,
        watch: bool = True,
    ):
        super().__init__()
        self.library = library
        self._open_url = open_url
        self._folder_chooser = folder_chooser
        self._watch = watch
        self.indexer: IndexerBridge | None = None
        self._model_ready = False
        self._model_error: str | None = None
        self._query_image: str | Image.Image | None = None
        self._chip_key: str | None = None
        self._request_id = 0
        self._generation_seen = -1
        self._found: list[Hit] = []  # the latest search's hits, before the relevance slider
        self._refreshing = False  # the search running now reruns the one on screen (new files indexed)
        self._searched_text = ""  # the text of the search running now
        self._shown_text = ""  # the text of the search on screen
        self._folders_seen: list[tuple[str, bool]] | None = None
        self.setWindowTitle("clifs")
        self.resize(1180, 760)
        self.setAcceptDrops(True)

        # -- workers --
        self.loader = ModelLoader(library, self)
        self.searches = SearchRunner(library, self)
        self.thumbnails = thumbnail_loader(ThumbnailCache(library.settings.cache_dir / "thumbs"), self)
        self.previews = preview_loader(parent=self)
        self.vision = VisionRunner(library, self)

        # -- search row --
        self.search_field = QLineEdit()
        self.search_field.setPlaceholderText("Describe what you are looking for, or drop a photo here")
        self.search_field.setClearButtonEnabled(True)
        self.search_field.setAccessibleName("Search")
        self.search_field.installEventFilter(self)
        self.chip = QueryChip()
        self.folders_button = QPushButton("Folders…")
        self.folders_button.setToolTip("Choose the folders clifs indexes")
        search_row = QHBoxLayout()
        search_row.addWidget(self.search_field, 1)
        search_row.addWidget(self.chip)
        search_row.addWidget(self.folders_button)
        self.filters = FilterBar()

        # -- results and detail --
        self.results = ResultsModel(self)
        self.view = ResultsView()
        self.view.setModel(self.results)
        self.empty = EmptyState()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.view)
        self.detail = DetailPane()
        self.detail.hide()
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.stack)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(10, 10, 10, 4)
        layout.addLayout(search_row)
        layout.addWidget(self.filters)
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(central)
        self.status = StatusPanel()
        self.setStatusBar(self.status)

        # -- timers --
        self._debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._debounce.timeout.connect(self.search_now)
        self._refresh = QTimer(self, singleShot=True)
        self._refresh.timeout.connect(self._refresh_after_indexing)

        self._connect()
        self._shortcuts()
        self._update_folders()
        self._refresh_counts()
        self._show_idle_page()
        self.search_field.setFocus()
        self.loader.start()

    # -- wiring -------------------------------------------------------------------------------------
    def _connect(self) -> None:
        self.search_field.textChanged.connect(lambda _: self._debounce.start())
        self.search_field.returnPressed.connect(self.search_now)
        self.filters.changed.connect(self._debounce.start)
        self.filters.relevance_changed.connect(lambda _: self._show_hits())
        self.chip.removed.connect(self.clear_query_image)
        self.folders_button.clicked.connect(self.show_folders)
        self.empty.button.clicked.connect(self._empty_state_action)

        self.loader.ready.connect(self._model_loaded)
        self.loader.failed.connect(self._model_failed)
        self.searches.finished.connect(self._show_results)
        self.searches.failed.connect(self._search_failed)

        self.results.thumbnail_wanted.connect(
            lambda key, path, ts, row: self.thumbnails.request(key, path, ts, priority=max(0, 1000 - row))
        )
        self.thumbnails.loaded.connect(self.results.set_thumbnail)
        self.thumbnails.failed.connect(self.results.set_thumbnail_failed)
        self.thumbnails.loaded.connect(self._chip_icon)

        self.view.selectionModel().currentChanged.connect(self._current_changed)
        self.view.activated.connect(lambda index: self.open_hit(self.results.hit(index.row())))
        self.view.customContextMenuRequested.connect(self._context_menu)

        self.detail.preview_wanted.connect(self.previews.request)
        self.previews.loaded.connect(self.detail.set_preview)
        self.previews.failed.connect(self.detail.set_preview_failed)
        self.detail.labels_wanted.connect(self.vision.labels)
        self.detail.overlay_wanted.connect(self.vision.overlay)
        self.vision.labels_ready.connect(self.detail.set_labels)
        self.vision.overlay_ready.connect(self.detail.set_overlay)
        self.vision.failed.connect(self.detail.set_labels_failed)
        self.vision.failed.connect(self.detail.set_overlay_failed)
        self.detail.open_requested.connect(lambda path: desktop.open_file(path, self._open_url))
        self.detail.reveal_requested.connect(lambda path: desktop.reveal_in_folder(path, self._open_url))
        self.detail.copy_requested.connect(self._copy_path)

        self.status.failures_clicked.connect(self.show_failures)
        self.status.pause_clicked.connect(self._pause_indexing)

    def _shortcuts(self) -> None:
        find = QAction("Find", self)
        find.setShortcut(QKeySequence.StandardKey.Find)
        find.triggered.connect(self.focus_search)
        paste = QAction("Paste image", self)
        paste.setShortcut(QKeySequence.StandardKey.Paste)
        paste.triggered.connect(self.paste)
        for action in (find, paste):
            self.addAction(action)

    # -- searching -----------------------------------------------------------------------------------
    def focus_search(self) -> None:
        self.search_field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_field.selectAll()

    def search_now(self) -> None:
        """Search for what is in the field (and the query image) now, skipping the debounce."""
        self._debounce.stop()
        self._refreshing = False
        request = SearchRequest(self.search_field.text(), self._query_image, self.filters.filters(), TOP)
        if request.is_empty():
            self._request_id = 0
            self.searches.cancel()
            self._found = []
            self._set_hits([])
            self._show_idle_page()
            return
        if not self._model_ready:
            self._request_id = -1  # run when the model is ready
            return
        self._searched_text = request.text
        self._request_id = self.searches.submit(request)

    def _show_results(self, request_id: int, hits: list[Hit]) -> None:
        if request_id != self._request_id or not self.searches.is_current(request_id):
            return  # overtaken by a newer search
        self._found = hits
        self._shown_text = self._searched_text
        self._show_hits()
        if hits:
            self.statusBar().clearMessage()
        elif self.library.catalog.counts()["files"] == 0:
            self._show_idle_page()
        else:
            self.empty.show_message("No matches", "Nothing matches these filters.")
            self.stack.setCurrentWidget(self.empty)

    def _search_failed(self, request_id: int, reason: str) -> None:
        if request_id == self._request_id:
            self.statusBar().showMessage(f"Search failed: {reason}", 10_000)

    def _show_hits(self) -> None:
        """Show the hits found that pass the relevance slider."""
        self._set_hits(hide_weak(self._found, self.filters.relevance.value()))
        if self._found:
            self.stack.setCurrentWidget(self.view)

    def _set_hits(self, hits: list[Hit]) -> None:
        """Put hits on screen, keeping the selected file selected (and the scroll position, when the
        same query was refreshed) so that new files arriving do not yank the view away."""
        if [(h.path, h.item_id, h.score) for h in hits] == [(h.path, h.item_id, h.score) for h in self.results.hits()]:
            return
        selected = self.detail.hit.path if self.detail.isVisible() and self.detail.hit else None
        scroll = self.view.verticalScrollBar().value() if self._refreshing else 0
        self.thumbnails.cancel_pending()
        self.results.set_hits(hits)
        self.view.verticalScrollBar().setValue(scroll)
        row = next((i for i, h in enumerate(hits) if h.path == selected), None)
        if row is None:
            self.detail.hide()
            return
        self.view.selectionModel().setCurrentIndex(
            self.results.index(row), QItemSelectionModel.SelectionFlag.ClearAndSelect
        )

    def _show_idle_page(self) -> None:
        if self._model_error:
            self.empty.show_message("The model could not be loaded", self._model_error)
        elif not self.library.catalog.folders():
            self.empty.show_message(
                "Welcome to clifs",
                "Add a folder of photos or videos. clifs indexes it on this computer, "
                "then you can find anything in it by describing it in your own words.",
                "Add folder…",
            )
        elif self.library.catalog.counts()["files"] == 0:
            self.empty.show_message("Indexing your folders…", "Results appear here as files are indexed.")
        else:
            self.empty.show_message(
                "What are you looking for?",
                "Type a description such as “a dog on the beach at sunset”, "
                "or drop a photo anywhere on this window to find similar ones.",
            )
        self.stack.setCurrentWidget(self.empty)

    def _empty_state_action(self) -> None:
        """The empty state's button; it only appears on first run, to add a folder."""
        path = self._folder_chooser(self)
        if path:
            self.add_folder(path)

    # -- query image ---------------------------------------------------------------------------------
    def set_query_image(self, image: str | QImage) -> None:
        """Search by this image (a file path or pasted pixels), combined with any text typed."""
        if isinstance(image, QImage):
            self._query_image = qimage_to_pil(image)
            self._chip_key = None
            self.chip.show_query("Pasted image")
            self.chip.set_icon(image)
        else:
            self._query_image = image
            self._chip_key = CHIP_KEY_PREFIX + image
            self.chip.show_query(Path(image).name)
            self.thumbnails.request(self._chip_key, image, None, priority=2000)
        self.search_now()

    def clear_query_image(self) -> None:
        self._query_image = None
        self._chip_key = None
        self.chip.hide()
        self.search_now()

    def _chip_icon(self, key: str, image: QImage) -> None:
        if key == self._chip_key:
            self.chip.set_icon(image)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if image_from_mime(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        if image_from_mime(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        image = image_from_mime(event.mimeData())
        if image is not None:
            event.acceptProposedAction()
            self.set_query_image(image)

    def paste(self) -> bool:
        """Paste an image or an image's path as the query image; returns whether there was one."""
        image = image_from_mime(QGuiApplication.clipboard().mimeData())
        if image is None:
            return False
        self.set_query_image(image)
        return True

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """The search field: image drops and pastes become image queries; Down moves to the results."""
        if watched is self.search_field:
            kind = event.type()
            if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop):
                if image_from_mime(event.mimeData()) is not None:
                    if kind == QEvent.Type.Drop:
                        self.dropEvent(event)
                    else:
                        event.acceptProposedAction()
                    return True
            elif kind == QEvent.Type.KeyPress:
                if event.matches(QKeySequence.StandardKey.Paste) and self.paste():
                    return True
                if event.key() == Qt.Key.Key_Down and self.results.rowCount():
                    self.view.setFocus(Qt.FocusReason.TabFocusReason)
                    if not self.view.currentIndex().isValid():
                        self.view.setCurrentIndex(self.results.index(0))
                    return True
                if event.key() == Qt.Key.Key_Escape and self._query_image is not None and not self.search_field.text():
                    self.clear_query_image()
                    return True
        return super().eventFilter(watched, event)

    # -- a hit -----------------------------------------------------------------------------------------
    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            self.detail.hide()
            return
        self.detail.show_hit(self.results.hit(current.row()), self._shown_text)
        self.detail.show()

    def open_hit(self, hit: Hit) -> None:
        if not desktop.open_file(hit.path, self._open_url):
            self.statusBar().showMessage(f"No application could open {hit.path}", 10_000)

    def _copy_path(self, path: str) -> None:
        desktop.copy_path(path)
        self.statusBar().showMessage(f"Copied {path}", 4000)

    def _context_menu(self, pos: QPoint) -> None:
        index = self.view.indexAt(pos)
        if not index.isValid():
            return
        hit = self.results.hit(index.row())
        menu = QMenu(self)
        menu.addAction("Open", lambda: self.open_hit(hit))
        menu.addAction("Show in folder", lambda: desktop.reveal_in_folder(hit.path, self._open_url))
        menu.addAction("Copy path", lambda: self._copy_path(hit.path))
        if hit.kind == "image":
            menu.addSeparator()
            menu.addAction("Find similar", lambda: self.set_query_image(hit.path))
        menu.exec(self.view.viewport().mapToGlobal(pos))

    # -- model ---------------------------------------------------------------------------------------
    def _model_loaded(self) -> None:
        self._model_ready = True
        encoder = self.library.encoder
        self.status.set_model(encoder, self.library.fallback_reason)
        self.detail.vision.set_unsupported(
            None
            if supports_masks(encoder)
            else f"Masks and boxes need a CLIP ViT model or one with dense features; {encoder.display_name} has neither."
        )
        self.indexer = IndexerBridge(self.library, watch=self._watch, parent=self)
        self.indexer.status_changed.connect(self._indexer_status)
        self.indexer.start()  # it indexes the folders already in the catalog
        if self.indexer.elsewhere:
            self.status.set_indexer_elsewhere(self.indexer.elsewhere)
        if self._request_id == -1 or self._query_image is not None or self.search_field.text().strip():
            self.search_now()

    def _model_failed(self, reason: str) -> None:
        self._model_error = reason
        self.status.set_model_failed(reason)
        self.statusBar().showMessage("The model could not be loaded; searching is off.")
        self._show_idle_page()

    # -- folders and indexing ------------------------------------------------------------------------
    # Folder edits go through the indexer once it runs; before, straight to the catalog, which it reads at start.
    def add_folder(self, path: str) -> None:
        path = canonical_folder(path)
        if not Path(path).is_dir():
            self.statusBar().showMessage(f"Not a folder: {path}", 10_000)
            return
        if self.indexer is not None:
            self.indexer.service.add_folder(path)
        else:
            self.library.catalog.add_folder(path)
        self._update_folders()
        if not self.results.rowCount():
            self._show_idle_page()

    def remove_folder(self, path: str) -> None:
        if self.indexer is not None:
            self.indexer.service.remove_folder(path)
        else:
            self.library.catalog.forget_folder(path)
        self._update_folders()
        self._refresh_counts()
        self.search_now()

    def set_folder_paused(self, path: str, paused: bool) -> None:
        if self.indexer is not None:
            self.indexer.service.set_folder_paused(path, paused)
        else:
            self.library.catalog.set_folder_paused(path, paused)

    def show_folders(self) -> FoldersDialog:
        dialog = FoldersDialog(self.library.catalog, self, self, chooser=self._folder_chooser)
        self.folders_changed.connect(dialog.refresh)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def show_failures(self) -> FailuresDialog:
        dialog = FailuresDialog(self.library.catalog, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def _update_folders(self) -> None:
        """Re-read the folder list; the indexer applies edits on its own thread, so this follows its status."""
        folders = [(f.path, bool(f.paused)) for f in self.library.catalog.folders()]
        if folders != self._folders_seen:
            self._folders_seen = folders
            self.filters.set_folders([path for path, _ in folders])
            self.folders_changed.emit()

    def _refresh_counts(self) -> None:
        counts = self.library.catalog.counts()
        self.status.set_counts(counts["files"], counts["items"], counts["failed"])

    def _indexer_status(self, status: IndexerStatus) -> None:
        self.status.set_indexer(status)
        self._update_folders()
        generation = self.library.catalog.generation()  # bumps on every catalog write: adds, moves, deletions
        if generation != self._generation_seen:
            self._generation_seen = generation
            self._refresh_counts()
            if self._request_id > 0 and not self._refresh.isActive():
                # Show newly indexed files under the query on screen: soon when nothing is shown yet.
                self._refresh.start(REFRESH_MS if self.results.rowCount() else FIRST_REFRESH_MS)
            elif self._request_id == 0 and not self.results.rowCount():
                self._show_idle_page()

    def _refresh_after_indexing(self) -> None:
        if self._request_id > 0:
            self.search_now()
            self._refreshing = True

    def _pause_indexing(self, pause: bool) -> None:
        if self.indexer is not None:
            if pause:
                self.indexer.service.pause()
            else:
                self.indexer.service.resume()

    # -- closing -------------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the indexer and let running jobs finish, so no worker outlives the library."""
        if self.indexer is not None:
            self.indexer.stop()
            self.indexer = None
        self.searches.cancel()
        self.thumbnails.cancel_pending()
        self.previews.cancel_pending()
        self.vision.cancel_pending()
        for worker in (self.loader, self.searches, self.thumbnails, self.previews, self.vision):
            worker.wait()
