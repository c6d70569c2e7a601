"""A real window on a folder indexed in this process, for the GUI tests that need only that."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from clifs.engine.config import Settings
from clifs.engine.library import Library
from tests.conftest import TEST_MODEL

WAIT_MS = 60_000


@contextlib.contextmanager
def indexed_window(
    qtbot,
    monkeypatch: pytest.MonkeyPatch,
    home: Path,
    folder: Path,
    encoder,
    size: tuple[int, int] | None = None,
    read_text: bool = False,
) -> Iterator:
    """Index ``folder`` into ``home`` with ``encoder`` (the test model), with its OCR pass when
    ``read_text``, open a MainWindow on it (of ``size`` when given) and wait for its indexer; shut both
    down afterwards."""
    from gui.main_window import MainWindow
    from indexer.ocr_pass import OcrPass
    from indexer.pipeline import Pipeline

    monkeypatch.setenv("CLIFS_HOME", str(home))
    settings = Settings.load(home)
    settings.model = TEST_MODEL
    library = Library(settings, encoder=encoder)
    library.catalog.add_folder(str(folder))
    Pipeline(library).index_folders([str(folder)])
    if read_text:
        OcrPass(library).run([str(folder)])
    window = MainWindow(library, open_url=lambda url: True, watch=False)
    qtbot.addWidget(window)
    if size:
        window.resize(*size)
    window.show()
    try:
        qtbot.waitUntil(lambda: window.indexer is not None, timeout=WAIT_MS)
        yield window
    finally:
        window.shutdown()
        library.close()
