"""The main window: type (or drop an image) and see your photos and video moments.

It lays the widgets out and wires them to the pieces that do the work: the
search flow (``SearchController``), the folders and the indexer
(``FolderController``), what a hit offers (``HitActions``), image drops and
pastes (``ImageInput``), and the workers. Nothing here blocks: workers do the
slow parts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QItemSelectionModel, QModelIndex, QObject, Qt
from PySide6.QtGui import QAction, QDesktopServices, QImage, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from clifs.engine.library import Library
from clifs.engine.models.languages import unreadable_query
from clifs.engine.search import Hit
from clifs.engine.thumbnails import ThumbnailCache
from clifs.engine.vision.dense import supports_masks
from gui import desktop
from gui.detail import DetailPane
from gui.empty_state import EmptyState
from gui.failures import FailuresDialog
from gui.filters import FilterBar, hide_weak
from gui.folder_controller import FolderController
from gui.folders import FoldersDialog, choose_folder
from gui.hit_actions import HitActions
from gui.image_input import ImageInput
from gui.image_query import qimage_to_pil
from gui.indexing import IndexerBridge
from gui.query_chip import QueryChip
from gui.results import ResultsModel, ResultsView
from gui.search_controller import SearchController
from gui.sketch_pad import SketchPad
from gui.status import StatusPanel
from gui.workers import ModelLoader, VisionRunner, preview_loader, thumbnail_loader

CHIP_KEY_PREFIX = "query-chip\0"


class MainWindow(QMainWindow):
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
        self._model_error: str | None = None
        self._chip_key: str | None = None  # the thumbnail key of the query image's chip icon
        self._sketch_query = False  # the query image is the sketch pad's
        self.setWindowTitle("clifs")
        self.resize(1180, 760)
        self.setAcceptDrops(True)

        # -- workers --
        self.loader = ModelLoader(library, self)
        self.thumbnails = thumbnail_loader(ThumbnailCache(library.settings.cache_dir / "thumbs"), self)
        self.previews = preview_loader(parent=self)
        self.vision = VisionRunner(library, self)

        # -- search row --
        self.search_field = QLineEdit()
        self.search_field.setPlaceholderText("Describe what you are looking for, or drop a photo or a sound here")
        self.search_field.setClearButtonEnabled(True)
        self.search_field.setAccessibleName("Search")
        self.search_field.installEventFilter(self)
        self.chip = QueryChip()
        self.sound_chip = QueryChip(noun="sound")
        self._sound_chip_key: str | None = None
        self.sketch_button = QPushButton("Sketch")
        self.sketch_button.setCheckable(True)
        self.sketch_button.setToolTip("Draw what you are looking for: the sketch is searched like a dropped image")
        self.sketch = SketchPad()
        self.sketch.setMaximumWidth(260)
        self.sketch.hide()
        self.folders_button = QPushButton("Folders…")
        self.folders_button.setToolTip("Choose the folders clifs indexes")
        search_row = QHBoxLayout()
        search_row.addWidget(self.search_field, 1)
        search_row.addWidget(self.chip)
        search_row.addWidget(self.sound_chip)
        search_row.addWidget(self.sketch_button)
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
        self.splitter.addWidget(self.sketch)
        self.splitter.addWidget(self.stack)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setStretchFactor(2, 2)
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

        # -- controllers --
        self.search = SearchController(library, self.search_field, self.filters, self)
        self.folders = FolderController(library, watch=watch, parent=self)
        self.hit_actions = HitActions(self.view, self.results, open_url, self)
        self.image_input = ImageInput(self)
        self.image_input.watch(self)
        self.image_input.watch(self.search_field)

        self._connect()
        self._shortcuts()
        self.folders.refresh()
        self._refresh_counts()
        self._show_idle_page()
        self.search_field.setFocus()
        self.loader.start()

    # -- wiring -------------------------------------------------------------------------------------
    def _connect(self) -> None:
        self.search.idle.connect(self._show_idle)
        self.search.answered.connect(self._show_answer)
        self.search.failed.connect(lambda reason: self.statusBar().showMessage(f"Search failed: {reason}", 10_000))
        self.filters.relevance_changed.connect(lambda _: self._show_hits())
        self.chip.removed.connect(self.clear_query_image)
        self.sketch_button.toggled.connect(self.sketch.setVisible)
        self.sketch.sketched.connect(lambda image: self.set_query_image(image, "Sketch"))
        self.sketch.cleared.connect(self._sketch_cleared)
        self.image_input.given.connect(self.set_query_image)
        self.image_input.sound_given.connect(self.set_query_sound)
        self.sound_chip.removed.connect(self.clear_query_sound)
        self.folders_button.clicked.connect(self.show_folders)
        self.empty.button.clicked.connect(self._empty_state_action)

        self.loader.ready.connect(self._model_loaded)
        self.loader.failed.connect(self._model_failed)

        self.folders.folders_changed.connect(lambda: self.filters.set_folders(self.folders.paths()))
        self.folders.added.connect(self._folder_added)
        self.folders.removed.connect(self._folder_removed)
        self.folders.refused.connect(lambda reason: self.statusBar().showMessage(reason, 10_000))
        self.folders.indexer_status.connect(self.status.set_indexer)
        self.folders.catalog_written.connect(self._catalog_written)

        self.results.thumbnail_wanted.connect(
            lambda key, path, ts, row: self.thumbnails.request(key, path, ts, priority=max(0, 1000 - row))
        )
        self.thumbnails.loaded.connect(self.results.set_thumbnail)
        self.thumbnails.failed.connect(self.results.set_thumbnail_failed)
        self.thumbnails.loaded.connect(self._chip_icon)

        self.view.selectionModel().currentChanged.connect(self._current_changed)
        self.hit_actions.message.connect(self.statusBar().showMessage)
        self.hit_actions.find_similar.connect(self.set_query_image)
        self.hit_actions.find_similar_sound.connect(self.set_query_sound)

        self.detail.preview_wanted.connect(self.previews.request)
        self.previews.loaded.connect(self.detail.set_preview)
        self.previews.failed.connect(self.detail.set_preview_failed)
        self.detail.labels_wanted.connect(self.vision.labels)
        self.detail.overlay_wanted.connect(self.vision.overlay)
        self.vision.labels_ready.connect(self.detail.set_labels)
        self.vision.overlay_ready.connect(self.detail.set_overlay)
        self.vision.regions_ready.connect(self.detail.set_regions)
        self.vision.failed.connect(self.detail.set_labels_failed)
        self.vision.failed.connect(self.detail.set_overlay_failed)
        self.detail.open_requested.connect(lambda path: desktop.open_file(path, self._open_url))
        self.detail.reveal_requested.connect(self.hit_actions.reveal)
        self.detail.copy_requested.connect(self.hit_actions.copy_path)

        self.status.failures_clicked.connect(self.show_failures)
        self.status.pause_clicked.connect(self.folders.pause_indexing)

    def _shortcuts(self) -> None:
        find = QAction("Find", self)
        find.setShortcut(QKeySequence.StandardKey.Find)
        find.triggered.connect(self.focus_search)
        paste = QAction("Paste image", self)
        paste.setShortcut(QKeySequence.StandardKey.Paste)
        paste.triggered.connect(self.image_input.paste)
        for action in (find, paste):
            self.addAction(action)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """The search field's keys: Down moves to the results, Escape in an empty field drops the query image."""
        if watched is self.search_field and event.type() == QEvent.Type.KeyPress:
            if event.key() == Qt.Key.Key_Down and self.results.rowCount():
                self.view.setFocus(Qt.FocusReason.TabFocusReason)
                if not self.view.currentIndex().isValid():
                    self.view.setCurrentIndex(self.results.index(0))
                return True
            if event.key() == Qt.Key.Key_Escape and self.search.image is not None and not self.search_field.text():
                self.clear_query_image()
                return True
        return super().eventFilter(watched, event)

    # -- public: what the app, the tests and the screenshots drive -----------------------------------
    @property
    def indexer(self) -> IndexerBridge | None:
        """The indexer, once the model has loaded."""
        return self.folders.indexer

    @property
    def model_error(self) -> str | None:
        """Why the model could not be loaded, or None."""
        return self._model_error

    def focus_search(self) -> None:
        self.search_field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_field.selectAll()

    def search_now(self) -> None:
        """Search for what is in the field (and the query image) now, skipping the debounce."""
        self.search.search_now()

    def add_folder(self, path: str) -> None:
        self.folders.add_folder(path)

    def set_query_image(self, image: str | QImage, name: str = "Pasted image") -> None:
        """Search by this image (a file path, pasted pixels or a sketch), combined with any text typed."""
        self._sketch_query = name == "Sketch"
        if isinstance(image, QImage):
            self._chip_key = None
            self.chip.show_query(name)
            self.chip.set_icon(image)
            self.search.set_image(qimage_to_pil(image))
        else:
            self._chip_key = CHIP_KEY_PREFIX + image
            self.chip.show_query(Path(image).name)
            self.thumbnails.request(self._chip_key, image, None, priority=2000)
            self.search.set_image(image)

    def _sketch_cleared(self) -> None:
        """A cleared pad stops a sketch search (not a dropped or pasted image's)."""
        if self._sketch_query:
            self.clear_query_image()

    def clear_query_image(self) -> None:
        self._sketch_query = False
        self._chip_key = None
        self.chip.hide()
        self.search.set_image(None)

    def set_query_sound(self, path: str) -> None:
        """Search by this sound (an audio file), combined with any text or image; its chip shows its waveform."""
        self._sound_chip_key = CHIP_KEY_PREFIX + path
        self.sound_chip.show_query(Path(path).name)
        self.thumbnails.request(self._sound_chip_key, path, None, priority=2000)
        self.search.set_audio(path)

    def clear_query_sound(self) -> None:
        self._sound_chip_key = None
        self.sound_chip.hide()
        self.search.set_audio(None)

    def show_folders(self) -> FoldersDialog:
        dialog = FoldersDialog(self.library.catalog, self.folders, self, chooser=self._folder_chooser)
        self.folders.folders_changed.connect(dialog.refresh)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def show_failures(self) -> FailuresDialog:
        dialog = FailuresDialog(self.library.catalog, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    # -- what the results area shows -----------------------------------------------------------------
    def _show_answer(self, hits: list[Hit]) -> None:
        self._show_hits()
        unreadable = unreadable_query(self.library.model, self.search.shown_text)
        if unreadable:
            self.statusBar().showMessage(unreadable[0].upper() + unreadable[1:])
        elif hits:
            self.statusBar().clearMessage()
        elif self.library.catalog.counts()["files"] == 0:
            self._show_idle_page()
        else:
            self.empty.show_message("No matches", "Nothing matches these filters.")
            self.stack.setCurrentWidget(self.empty)

    def _show_hits(self) -> None:
        """Show the hits found that pass the relevance slider."""
        self._set_hits(hide_weak(self.search.found, self.filters.relevance.value()))
        if self.search.found:
            self.stack.setCurrentWidget(self.view)

    def _set_hits(self, hits: list[Hit]) -> None:
        """Put hits on screen, keeping the selected file selected (and the scroll position, when the
        same query was refreshed) so that new files arriving do not yank the view away."""
        if [(h.path, h.item_id, h.score) for h in hits] == [(h.path, h.item_id, h.score) for h in self.results.hits()]:
            return
        selected = self.detail.hit.path if self.detail.isVisible() and self.detail.hit else None
        scroll = self.view.verticalScrollBar().value() if self.search.refreshing else 0
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

    def _show_idle(self) -> None:
        self._set_hits([])
        self._show_idle_page()

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

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            self.detail.hide()
            return
        self.detail.show_hit(self.results.hit(current.row()), self.search.shown_text)
        self.detail.show()

    def _chip_icon(self, key: str, image: QImage) -> None:
        if key == self._chip_key:
            self.chip.set_icon(image)
        if key == self._sound_chip_key:
            self.sound_chip.set_icon(image)

    # -- the model, folders and the indexer's progress ----------------------------------------------
    def _model_loaded(self) -> None:
        encoder = self.library.encoder
        self.status.set_model(encoder, self.library.fallback_reason)
        self.detail.vision.set_unsupported(
            None
            if supports_masks(encoder)
            else f"Masks and boxes need a CLIP ViT model or one with dense features; {encoder.display_name} has neither."
        )
        self.folders.start_indexer()  # it indexes the folders already in the catalog
        if self.indexer.elsewhere:
            self.status.set_indexer_elsewhere(self.indexer.elsewhere)
        self.search.model_ready()

    def _model_failed(self, reason: str) -> None:
        self._model_error = reason
        self.status.set_model_failed(reason)
        self.statusBar().showMessage("The model could not be loaded; searching is off.")
        self._show_idle_page()

    def _empty_state_action(self) -> None:
        """The empty state's button; it only appears on first run, to add a folder."""
        path = self._folder_chooser(self)
        if path:
            self.add_folder(path)

    def _folder_added(self) -> None:
        if not self.results.rowCount():
            self._show_idle_page()

    def _folder_removed(self) -> None:
        self._refresh_counts()
        self.search.search_now()

    def _catalog_written(self) -> None:
        self._refresh_counts()
        self.search.catalog_changed()

    def _refresh_counts(self) -> None:
        counts = self.library.catalog.counts()
        self.status.set_counts(counts["files"], counts["items"], counts["failed"])
        self.filters.set_cameras([name for name, _ in self.library.catalog.cameras()])

    # -- closing -------------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the indexer and let running jobs finish, so no worker outlives the library."""
        self.folders.stop_indexer()
        self.search.close()
        self.thumbnails.cancel_pending()
        self.previews.cancel_pending()
        self.vision.cancel_pending()
        for worker in (self.loader, self.search.runner, self.thumbnails, self.previews, self.vision):
            worker.wait()
