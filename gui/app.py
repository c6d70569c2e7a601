"""Starting the GUI: the QApplication, the library, the main window.

Colours come from the platform's palette (light or dark, and live switches), so
every widget and the results delegate paint with palette roles, never fixed colours.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from PySide6.QtWidgets import QApplication

from clifs.engine.config import Settings
from clifs.engine.library import Library
from gui.main_window import MainWindow

log = logging.getLogger(__name__)


def application(argv: Sequence[str] = ()) -> QApplication:
    """The process's QApplication (made once)."""
    app = QApplication.instance()
    if app is None:
        app = QApplication([sys.argv[0] if sys.argv else "clifs", *argv])
    app.setApplicationName("clifs")
    app.setApplicationDisplayName("clifs")
    app.setDesktopFileName("clifs")
    return app


def run(settings: Settings, folders: Sequence[str] = ()) -> int:
    """Open the main window on ``settings``' library, indexing ``folders`` too; returns the exit code."""
    app = application()
    library = Library(settings, load_model=False)  # the model loads in a worker, the window opens at once
    window = MainWindow(library)
    for folder in folders:
        window.add_folder(folder)
    window.show()
    previous_hook = sys.excepthook
    sys.excepthook = _show_in(window)
    try:
        return app.exec()
    finally:
        sys.excepthook = previous_hook
        library.close()


def _show_in(window: MainWindow):
    """An exception that escapes a slot goes to the log and the status bar; the window carries on."""

    def hook(kind, exc, tb) -> None:
        log.error("unexpected error", exc_info=(kind, exc, tb))
        window.statusBar().showMessage(f"Unexpected error: {exc} (details in the log)", 20_000)

    return hook
