"""The folders clifs indexes, and the indexer that indexes them.

Folder edits go through the indexer once it runs; before, straight to the
catalog, which the indexer reads when it starts. The folder list is always read
back from the catalog, the truth: the indexer applies edits on its own thread,
so the list is re-read whenever it reports.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from clifs.engine.library import Library
from clifs.engine.paths import canonical_folder
from gui.indexing import IndexerBridge
from indexer.status import IndexerStatus


class FolderController(QObject):
    """The folders dialog's ``FolderActions``, and the indexer's start, pause and stop."""

    #: The catalog's folder list changed (an edit here, by the indexer, or by another process).
    folders_changed = Signal()
    indexer_status = Signal(object)  # IndexerStatus
    catalog_written = Signal()  # the catalog's generation moved: files were indexed, moved or deleted
    added = Signal()  # a folder was added here
    removed = Signal()  # a folder was removed here
    refused = Signal(str)  # why a folder could not be added

    def __init__(self, library: Library, *, watch: bool = True, parent: QObject | None = None):
        super().__init__(parent)
        self.library = library
        self._watch = watch
        self.indexer: IndexerBridge | None = None  # once the model has loaded: it shares the encoder
        self._folders_seen: list[tuple[str, bool]] | None = None  # (path, paused); None: not read yet
        self._generation_seen = -1

    def paths(self) -> list[str]:
        """The folders in the catalog, as last read."""
        return [path for path, _ in self._folders_seen or []]

    def refresh(self) -> None:
        """Re-read the folder list; ``folders_changed`` when it changed."""
        folders = [(f.path, bool(f.paused)) for f in self.library.catalog.folders()]
        if folders != self._folders_seen:
            self._folders_seen = folders
            self.folders_changed.emit()

    # -- FolderActions -------------------------------------------------------------------------------
    def add_folder(self, path: str) -> None:
        path = canonical_folder(path)
        if not Path(path).is_dir():
            self.refused.emit(f"Not a folder: {path}")
            return
        if self.indexer is not None:
            self.indexer.service.add_folder(path)
        else:
            self.library.catalog.add_folder(path)
        self.refresh()
        self.added.emit()

    def remove_folder(self, path: str) -> None:
        if self.indexer is not None:
            self.indexer.service.remove_folder(path)
        else:
            self.library.catalog.forget_folder(path)
        self.refresh()
        self.removed.emit()

    def set_folder_paused(self, path: str, paused: bool) -> None:
        if self.indexer is not None:
            self.indexer.service.set_folder_paused(path, paused)
        else:
            self.library.catalog.set_folder_paused(path, paused)

    # -- the indexer ---------------------------------------------------------------------------------
    def start_indexer(self) -> None:
        """Index the folders in the catalog and watch them (the model must have loaded)."""
        self.indexer = IndexerBridge(self.library, watch=self._watch, parent=self)
        self.indexer.status_changed.connect(self._indexer_reported)
        self.indexer.start()

    def pause_indexing(self, pause: bool) -> None:
        if self.indexer is not None:
            if pause:
                self.indexer.service.pause()
            else:
                self.indexer.service.resume()

    def stop_indexer(self) -> None:
        if self.indexer is not None:
            self.indexer.stop()
            self.indexer = None

    def _indexer_reported(self, status: IndexerStatus) -> None:
        self.indexer_status.emit(status)
        self.refresh()
        generation = self.library.catalog.generation()  # bumps on every catalog write: adds, moves, deletions
        if generation != self._generation_seen:
            self._generation_seen = generation
            self.catalog_written.emit()
