"""The indexer service, bridged to Qt: its status arrives on the GUI thread as a signal.

The service writes through its own ``Library`` (sharing the loaded encoder), so
its vector index and the one the searches read are never touched by two threads
at once; the searches catch up from the catalog's generation. When another
process (`clifs watch`) already indexes this library, the window searches only
and follows that indexer's status file.
"""

from __future__ import annotations

import threading
from dataclasses import fields

from PySide6.QtCore import QObject, QTimer, Signal

from clifs.engine.library import Library
from indexer.lock import LockHeld
from indexer.service import IndexerService, IndexerStatus
from indexer.status import read_status_file

#: How often the status file of an indexer in another process is read.
FOREIGN_POLL_MS = 1000


class IndexerBridge(QObject):
    status_changed = Signal(object)  # IndexerStatus
    _poke = Signal()

    def __init__(self, library: Library, *, watch: bool = True, parent: QObject | None = None):
        super().__init__(parent)
        self.library = Library(library.settings, encoder=library.encoder)
        self.service = IndexerService(self.library, watch=watch)
        self.service.add_listener(self._notify)
        #: Why this window does not index (another process does), or None.
        self.elsewhere: str | None = None
        self._pending = False
        self._lock = threading.Lock()
        self._poke.connect(self._deliver)
        self._poll = QTimer(self, interval=FOREIGN_POLL_MS)
        self._poll.timeout.connect(self._read_foreign_status)

    def start(self) -> None:
        try:
            self.service.start()
        except LockHeld as exc:
            self.elsewhere = str(exc)
            self._poll.start()

    def stop(self) -> None:
        self._poll.stop()
        self.service.stop()
        self.library.close()

    def _notify(self, _status: IndexerStatus) -> None:
        """Service thread: ask the GUI thread to read the status, unless it has been asked already.

        The service may report after every file; the GUI reads only the latest status.
        """
        with self._lock:
            if self._pending:
                return
            self._pending = True
        self._poke.emit()

    def _deliver(self) -> None:
        with self._lock:
            self._pending = False
        self.status_changed.emit(self.service.status())

    def _read_foreign_status(self) -> None:
        data = read_status_file(self.library.settings.home)
        if data is not None:
            known = {f.name for f in fields(IndexerStatus)}
            self.status_changed.emit(IndexerStatus(**{k: v for k, v in data.items() if k in known}))
