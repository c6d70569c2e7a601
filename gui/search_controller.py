"""The flow of a search: from the search field, the query image or sound and the filters to hits on screen.

Keystrokes are debounced (Enter searches at once); each search gets the
runner's request id and only the latest one's answer is shown. A query typed
before the model has loaded waits for it. While a query is on screen, the
indexer's writes rerun it (at most every ``REFRESH_MS``) so new files show up.
"""

from __future__ import annotations

from enum import Enum, auto

from PIL import Image
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QLineEdit

from clifs.engine.library import Library
from clifs.engine.search import Hit
from gui.filters import FilterBar
from gui.workers import SearchRunner

DEBOUNCE_MS = 250
#: While indexing, a query on screen is rerun at most this often, so new files show up.
REFRESH_MS = 1500
#: ... and this soon when it found nothing yet.
FIRST_REFRESH_MS = 300
TOP = 120


class SearchState(Enum):
    IDLE = auto()  # nothing to search for: the idle page shows
    WAITING_FOR_MODEL = auto()  # a query waits for the model to load
    RUNNING = auto()  # ``request_id`` is being searched (the previous hits stay on screen meanwhile)
    SHOWN = auto()  # ``request_id``'s hits are on screen
    FAILED = auto()  # ``request_id`` failed; the reason went to the status bar


#: A query went to the runner: new files indexed rerun it.
SEARCHED = frozenset({SearchState.RUNNING, SearchState.SHOWN, SearchState.FAILED})


class SearchController(QObject):
    """Runs the search for what the field, the query image and the filters say; the window shows the outcome."""

    idle = Signal()  # nothing to search for: show the idle page
    answered = Signal(object)  # list[Hit]: the latest search's hits, also in ``found``
    failed = Signal(str)  # why the latest search failed

    def __init__(self, library: Library, field: QLineEdit, filters: FilterBar, parent: QObject | None = None):
        super().__init__(parent)
        self._field = field
        self._filters = filters
        self.runner = SearchRunner(library, self)
        self.state = SearchState.IDLE
        self.request_id: int | None = None  # the runner's id for the search running or shown
        self.image: str | Image.Image | None = None  # the query image: a file path or pasted pixels
        self.audio: str | None = None  # the query sound: an audio file's path
        self.found: list[Hit] = []  # the latest search's hits, before the relevance slider
        self.shown_text = ""  # the text of the search on screen
        #: The latest search reran the one on screen (new files indexed), so the view keeps its scroll position.
        self.refreshing = False
        self._searched_text = ""  # the text of the search running now
        self._model_ready = False

        self._debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._debounce.timeout.connect(self.search_now)
        self._refresh = QTimer(self, singleShot=True)
        self._refresh.timeout.connect(self._refresh_after_indexing)
        field.textChanged.connect(lambda _: self._debounce.start())
        field.returnPressed.connect(self.search_now)
        filters.changed.connect(self._debounce.start)
        self.runner.finished.connect(self._finished)
        self.runner.failed.connect(self._failed)

    def search_now(self) -> None:
        """Search for what is in the field (and the query image) now, skipping the debounce."""
        self._debounce.stop()
        self.refreshing = False
        query = self._filters.query(self._field.text() or None, self.image, TOP, self.audio)
        if query.is_empty():
            self.state, self.request_id = SearchState.IDLE, None
            self.runner.cancel()
            self.found = []
            self.idle.emit()
            return
        if not self._model_ready:
            self.state, self.request_id = SearchState.WAITING_FOR_MODEL, None
            return
        self._searched_text = query.text or ""
        self.state, self.request_id = SearchState.RUNNING, self.runner.submit(query)

    def set_image(self, image: str | Image.Image | None) -> None:
        """Search by this image (None: by text alone), combined with any text typed."""
        self.image = image
        self.search_now()

    def set_audio(self, path: str | None) -> None:
        """Search by this sound (None: not by a sound), combined with any text or image."""
        self.audio = path
        self.search_now()

    def model_ready(self) -> None:
        """The model has loaded: run the query that waited for it, or the one typed meanwhile."""
        self._model_ready = True
        if (
            self.state is SearchState.WAITING_FOR_MODEL
            or self.image is not None
            or self.audio is not None
            or self._field.text().strip()
        ):
            self.search_now()

    def catalog_changed(self) -> None:
        """Files were indexed, moved or deleted: rerun the query on screen soon, or refresh the idle page."""
        if self.state in SEARCHED and not self._refresh.isActive():
            self._refresh.start(REFRESH_MS if self.found else FIRST_REFRESH_MS)
        elif self.state is SearchState.IDLE:
            self.idle.emit()  # its message depends on whether anything is indexed yet

    def cancel(self) -> None:
        """Drop every search submitted: queued ones are skipped, running ones' answers dropped."""
        self.runner.cancel()

    def close(self) -> None:
        """No more searches, not even the refresh a last commit asks for (the window is closing)."""
        self._debounce.stop()
        self._refresh.stop()
        self.runner.close()

    def _refresh_after_indexing(self) -> None:
        if self.state in SEARCHED:
            self.search_now()
            self.refreshing = True

    def _finished(self, request_id: int, hits: list[Hit]) -> None:
        if request_id != self.request_id or not self.runner.is_current(request_id):
            return  # overtaken by a newer search
        self.state = SearchState.SHOWN
        self.found = hits
        self.shown_text = self._searched_text
        self.answered.emit(hits)

    def _failed(self, request_id: int, reason: str) -> None:
        if request_id == self.request_id:
            self.state = SearchState.FAILED
            self.failed.emit(reason)
