"""The desktop window, driven like a person would: real widgets, a real catalog, the shapes-world test model."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication

from clifs.engine.catalog import Catalog
from clifs.engine.config import Settings
from clifs.engine.library import Library
from gui.failures import FailuresDialog
from gui.folders import FoldersDialog, choose_folder
from gui.main_window import MainWindow
from indexer.pipeline import Pipeline
from tests.conftest import TEST_MODEL, write_single_objects

WAIT_MS = 60_000


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, test_encoder):
    """One image per (colour, shape), indexed once for the search tests: (home, {"red circle": path})."""
    root = tmp_path_factory.mktemp("gui")
    singles = write_single_objects(root / "photos")
    return index_folder(root, test_encoder), singles


def index_folder(root: Path, encoder) -> Path:
    """Index ``root/photos`` into the home ``root/home``, in this process; returns the home."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLIFS_HOME", str(root / "home"))
        library = Library(Settings.load(root / "home"), encoder=encoder)
        library.catalog.add_folder(str(root / "photos"))
        Pipeline(library).index_folders([str(root / "photos")])
        library.close()
    return root / "home"


@pytest.fixture
def opened() -> list[QUrl]:
    """What the windows would have handed to the desktop (QDesktopServices.openUrl leaves the program)."""
    return []


@pytest.fixture
def open_window(qtbot, test_encoder, monkeypatch, opened):
    """Opens a MainWindow on a home, with the model loaded and the indexer started."""
    libraries = []

    def open_(home: Path, chooser=choose_folder) -> MainWindow:
        monkeypatch.setenv("CLIFS_HOME", str(home))
        settings = Settings.load(home)
        settings.model = TEST_MODEL
        library = Library(settings, encoder=test_encoder)
        libraries.append(library)
        window = MainWindow(
            library, open_url=lambda url: opened.append(url) or True, folder_chooser=chooser, watch=False
        )
        qtbot.addWidget(window)
        window.show()
        qtbot.waitUntil(lambda: window.indexer is not None, timeout=WAIT_MS)
        return window

    yield open_
    for library in libraries:
        library.close()


def _red_fraction(window: MainWindow, row: int) -> float:
    """Share of clearly red pixels in the thumbnail shown at ``row``."""
    image = window.results.thumbnail(row).toImage().convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    rgb = rows[:, : 3 * image.width()].reshape(image.height(), image.width(), 3).astype(int)
    return float(((rgb[..., 0] > 170) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)).mean())


def test_typing_shows_the_right_thumbnails_first(open_window, indexed, qtbot):
    home, singles = indexed
    window = open_window(home)
    assert window.search_field.hasFocus()
    qtbot.keyClicks(window.search_field, "a red circle")
    qtbot.waitUntil(lambda: window.results.rowCount() > 0, timeout=WAIT_MS)
    assert window.results.hit(0).path == str(singles["red circle"])
    window.view.viewport().repaint()  # painting asks for the visible thumbnails
    qtbot.waitUntil(lambda: window.results.thumbnail(0) is not None, timeout=WAIT_MS)
    assert _red_fraction(window, 0) > 0.02
    assert window.stack.currentWidget() is window.view


def test_a_closed_window_runs_no_search_that_a_last_commit_asks_for(open_window, indexed, qtbot):
    """Stopping the indexer can deliver one more "catalog changed" after the window waited for its
    searches: the refresh it asks for must not start a search that outlives the window's objects."""
    home, _ = indexed
    window = open_window(home)
    qtbot.keyClicks(window.search_field, "a red circle")
    qtbot.waitUntil(lambda: window.results.rowCount() > 0, timeout=WAIT_MS)
    runner = window.search.runner
    window.close()
    ran: list[int] = []
    runner.finished.connect(lambda request_id, _: ran.append(request_id))
    runner.failed.connect(lambda request_id, _: ran.append(request_id))
    window.search.catalog_changed()  # what the indexer's last commit does
    window.search.search_now()
    qtbot.wait(500)  # past the refresh delay
    assert runner.wait(5_000) and ran == []


def _drop(window: MainWindow, path: Path) -> None:
    """A real drag-and-drop of a file from a file manager: enter, then drop, with a file-URL payload."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    centre = QPointF(window.width() / 2, window.height() / 2)
    enter = QDragEnterEvent(
        centre, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(centre, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    assert drop.isAccepted()


def test_dropping_an_image_searches_by_it(open_window, indexed, qtbot):
    home, singles = indexed
    window = open_window(home)
    _drop(window, singles["blue square"])
    assert window.chip.isVisible() and "blue_square" in window.chip.name.text()
    qtbot.waitUntil(lambda: window.results.rowCount() > 0, timeout=WAIT_MS)
    top = window.results.hit(0)
    assert top.path == str(singles["blue square"]) and top.score == pytest.approx(1.0, abs=1e-2)

    window.chip.close_button.click()  # removing the chip ends the image query
    assert not window.chip.isVisible()
    qtbot.waitUntil(lambda: window.results.rowCount() == 0, timeout=WAIT_MS)

    QGuiApplication.clipboard().setText(str(singles["yellow circle"]))  # a copied path pastes as an image query
    qtbot.keyClick(window.search_field, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert window.search_field.text() == "" and "yellow_circle" in window.chip.name.text()
    qtbot.waitUntil(lambda: window.results.rowCount() > 0, timeout=WAIT_MS)
    assert window.results.hit(0).path == str(singles["yellow circle"])


def test_selecting_fills_the_detail_pane_and_enter_opens_the_file(open_window, indexed, opened, qtbot):
    home, singles = indexed
    window = open_window(home)
    qtbot.keyClicks(window.search_field, "a green triangle")
    qtbot.keyClick(window.search_field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.results.rowCount() > 0, timeout=WAIT_MS)
    assert not window.detail.isVisible()

    qtbot.keyClick(window.search_field, Qt.Key.Key_Down)  # into the results, first one selected
    assert window.view.hasFocus()
    hit = window.results.hit(0)
    assert window.detail.isVisible()
    assert window.detail.title.text() == Path(hit.path).name
    assert window.detail.dimensions.text() == "96 × 96"
    assert window.detail.folder.text() == str(Path(hit.path).parent)
    qtbot.waitUntil(window.detail.preview.has_image, timeout=WAIT_MS)

    qtbot.keyClick(window.view, Qt.Key.Key_Return)
    assert opened == [QUrl.fromLocalFile(hit.path)]
    qtbot.keyClick(window.view, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.search_field.hasFocus()


def _heartbeat(window: MainWindow) -> list[int]:
    """A timer on the GUI thread: its beats stop whenever something blocks that thread."""
    beats = [0]
    timer = QTimer(window, interval=5)
    timer.timeout.connect(lambda: beats.__setitem__(0, beats[0] + 1))
    timer.start()
    return beats


def _beats_when_indexed(catalog_path: Path, files: int, beats: list[int]) -> list[int]:
    """Watch the catalog from another thread; note the beat count when ``files`` files are in it."""
    seen: list[int] = []

    def watch() -> None:
        catalog = Catalog(catalog_path)
        deadline = time.monotonic() + WAIT_MS / 1000
        while catalog.counts()["files"] < files and time.monotonic() < deadline:
            time.sleep(0.005)
        seen.append(beats[0])
        catalog.close()

    threading.Thread(target=watch, daemon=True).start()
    return seen


def test_indexing_a_folder_added_in_the_dialog_keeps_the_window_responsive(open_window, tmp_path, qtbot):
    photos = write_single_objects(tmp_path / "photos")
    window = open_window(tmp_path / "home", chooser=lambda parent: str(tmp_path / "photos"))
    assert window.stack.currentWidget() is window.empty and window.empty.button.isVisible()  # first run
    qtbot.keyClicks(window.search_field, "a red circle")
    qtbot.keyClick(window.search_field, Qt.Key.Key_Return)

    window.folders_button.click()
    dialog = window.findChild(FoldersDialog)
    beats = _heartbeat(window)
    at_done = _beats_when_indexed(window.library.settings.catalog_path, len(photos), beats)
    at_add = beats[0]
    dialog.add_button.click()
    qtbot.waitUntil(lambda: dialog.paths() == [str(tmp_path / "photos")], timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.results.rowCount() > 0, timeout=WAIT_MS)  # results refresh by themselves
    qtbot.waitUntil(lambda: window.status.counts_label.text() == f"{len(photos)} files indexed", timeout=WAIT_MS)
    assert at_done and at_done[0] - at_add >= 10  # the GUI thread kept beating while the indexer worked
    assert window.results.hit(0).path == str(photos["red circle"])
    assert window.filters.folder.findData(str(tmp_path / "photos")) > 0
    dialog.close()


def test_a_corrupt_file_is_listed_with_its_reason(open_window, tmp_path, qtbot):
    photos = tmp_path / "photos"
    write_single_objects(photos)
    (photos / "holiday.jpg").write_bytes(b"this is not a JPEG")
    window = open_window(tmp_path / "home")
    window.add_folder(str(photos))
    qtbot.waitUntil(window.status.failures_button.isVisible, timeout=WAIT_MS)
    assert window.status.failures_button.text() == "1 failed…"

    window.status.failures_button.click()
    dialog = window.findChild(FailuresDialog)
    assert dialog.isVisible()
    [(path, reason)] = dialog.rows()
    assert path == str(photos / "holiday.jpg")
    assert "not an image" in reason
    dialog.close()


def test_gui_command_refuses_a_missing_folder(tmp_path, capsys):
    from clifs.cli.main import main

    assert main(["gui", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_the_detail_pane_labels_the_hit(open_window, indexed, qtbot):
    home, singles = indexed
    window = open_window(home)
    qtbot.keyClicks(window.search_field, "a purple cross")
    qtbot.keyClick(window.search_field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.results.rowCount() > 0, timeout=WAIT_MS)
    assert window.results.hit(0).path == str(singles["purple cross"])
    window.view.setCurrentIndex(window.results.index(0))
    qtbot.waitUntil(lambda: "%" in window.detail.vision.labels.text(), timeout=WAIT_MS)
    assert window.detail.vision.labels.text().startswith("Labels: purple cross ")


@pytest.fixture(scope="module")
def scene_home(tmp_path_factory, test_encoder) -> tuple[Path, str]:
    """A folder with one 128-px two-object scene, indexed: (home, the name of one of its objects)."""
    from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes

    root = tmp_path_factory.mktemp("scene")
    scene = next(s for s in iter_scenes(HELD_OUT_SEED_BASE + 7000, 20, size=128) if len(s.objects) == 2)
    (root / "photos").mkdir()
    scene.image.save(root / "photos" / "scene.png")
    return index_folder(root, test_encoder), scene.objects[0].name


def _overlay_for(window: MainWindow, qtbot, query: str, mode: str) -> tuple[QImage, QImage]:
    """Search ``query``, open the first hit, click ``mode``: (the plain preview, what is shown then)."""
    window.search_field.clear()
    qtbot.keyClicks(window.search_field, query)
    qtbot.keyClick(window.search_field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.search.shown_text == query and window.results.rowCount() > 0, timeout=WAIT_MS)
    window.view.setCurrentIndex(window.results.index(0))
    qtbot.waitUntil(window.detail.preview.has_image, timeout=WAIT_MS)
    assert window.detail.vision.where.text() == f"Where is “{query}”?"
    plain = window.detail.preview.image()
    window.detail.vision.buttons[mode].click()
    qtbot.waitUntil(lambda: window.detail.vision.state.text() != "Looking closely…", timeout=WAIT_MS)
    return plain, window.detail.preview.image()


@pytest.mark.parametrize("mode", ["mask", "boxes"])
def test_the_detail_pane_paints_where_the_query_is_or_says_it_found_none(open_window, scene_home, qtbot, mode):
    home, name = scene_home
    window = open_window(home)
    plain, painted = _overlay_for(window, qtbot, name, mode)
    assert window.detail.vision.state.text() == "" and not window.detail.vision.state.isVisible()
    assert painted != plain  # the mask or the boxes are painted over the preview
    window.detail.vision.buttons[mode].click()
    assert window.detail.preview.image() == plain

    _overlay_for(window, qtbot, "a bicycle", mode)
    assert window.detail.vision.state.isVisible()
    assert window.detail.vision.state.text() == "No “a bicycle” found."
