"""The window with real photo metadata (issue 13): a date-taken range and a camera choice beside the other
filters, the detail pane's date, camera and map link, and a "+N similar" badge with the group listed."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QDate, Qt

from clifs.engine.config import Settings
from clifs.engine.library import Library
from devkit.copies import copies
from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes
from gui.detail import place_link, taken_text
from gui.main_window import MainWindow
from gui.results import similar_badge
from indexer.pipeline import Pipeline
from tests.conftest import TEST_MODEL
from tests.test_photo_metadata import _exif

WAIT_MS = 60_000


@pytest.fixture(scope="module")
def photos(tmp_path_factory, test_encoder):
    root = tmp_path_factory.mktemp("gui_photos")
    folder = root / "photos"
    folder.mkdir()
    scenes = [s.image for s in iter_scenes(HELD_OUT_SEED_BASE + 950, 3, 256, n_objects=2)]
    paris = _exif("2019:07:14 23:30:00", offset="+02:00", make="Apple", model="iPhone 12", gps=(48.8584, 2.2945))
    scenes[0].save(folder / "paris.jpg", exif=paris, quality=95)
    copies(scenes[0])["resized"].save(folder / "paris_small.jpg", quality=90)
    scenes[1].save(folder / "lake.jpg", exif=_exif("2015:06:01 10:00:00", make="Canon", model="Canon EOS 80D"))
    scenes[2].save(folder / "undated.png")
    home = root / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLIFS_HOME", str(home))
        library = Library(Settings.load(home), encoder=test_encoder)
        library.catalog.add_folder(str(folder))
        Pipeline(library).index_folders([str(folder)])
        library.close()
    return home, folder


@pytest.fixture
def window(qtbot, test_encoder, monkeypatch, photos):
    home, _ = photos
    monkeypatch.setenv("CLIFS_HOME", str(home))
    settings = Settings.load(home)
    settings.model = TEST_MODEL
    library = Library(settings, encoder=test_encoder)
    win = MainWindow(library, open_url=lambda url: True, watch=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.indexer is not None, timeout=WAIT_MS)
    yield win
    library.close()


def _names(win: MainWindow) -> set[str]:
    return {Path(win.results.hit(r).path).name for r in range(win.results.rowCount())}


def _search(win: MainWindow, qtbot, text: str = "a shape") -> None:
    """Search now (Enter) and wait for this search's answer, not an earlier one."""
    win.filters.relevance.setValue(0)  # show every hit the filters let through
    win.search_field.setText(text)
    with qtbot.waitSignal(win.search.answered, timeout=WAIT_MS):
        qtbot.keyClick(win.search_field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: win.results.rowCount() > 0, timeout=WAIT_MS)


def test_the_camera_choice_lists_the_library_cameras(window):
    cameras = [window.filters.camera.itemText(i) for i in range(window.filters.camera.count())]
    assert cameras[0] == "Any camera" and set(cameras[1:]) == {"Apple iPhone 12", "Canon EOS 80D"}
    assert window.filters.camera.isVisible()


def test_a_group_of_copies_is_one_hit_with_a_badge_and_listed_in_the_detail_pane(window, qtbot):
    _search(window, qtbot)
    names = _names(window)
    assert len(names & {"paris.jpg", "paris_small.jpg"}) == 1
    row = next(r for r in range(window.results.rowCount()) if Path(window.results.hit(r).path).stem.startswith("paris"))
    hit = window.results.hit(row)
    assert similar_badge(hit) == "+1 similar"
    assert "+1 similar" in window.results.data(window.results.index(row), Qt.ItemDataRole.AccessibleTextRole)
    window.view.viewport().grab()  # the delegate paints the badge

    window.view.setCurrentIndex(window.results.index(row))
    detail = window.detail
    assert detail.taken.text() == "2019-07-14 23:30 (UTC+02:00)"
    assert detail.camera.text() == "Apple iPhone 12"
    assert "openstreetmap.org/?mlat=48.858" in detail.place.text() and "2.29450" in detail.place.text()
    assert detail.copies.isVisible() and detail.copies.count() == 1
    other = {"paris.jpg", "paris_small.jpg"} - {Path(hit.path).name}
    assert Path(detail.copies.item(0).data(Qt.ItemDataRole.UserRole)).name == other.pop()
    assert "+1 similar" in detail.copies_title.text()


def test_the_detail_pane_marks_a_files_date_and_hides_what_is_unknown(window, qtbot):
    _search(window, qtbot)
    row = next(r for r in range(window.results.rowCount()) if window.results.hit(r).path.endswith("undated.png"))
    window.view.setCurrentIndex(window.results.index(row))
    assert "the file's date" in window.detail.taken.text()
    assert not window.detail.camera.isVisible() and not window.detail.place.isVisible()
    assert not window.detail.copies.isVisible()


def test_a_taken_range_and_a_camera_narrow_the_search(window, qtbot):
    filters = window.filters
    filters.taken.setCurrentIndex(1)
    assert filters.taken_from.isVisible() and filters.taken_to.isVisible()
    filters.taken_from.setDate(QDate(2015, 1, 1))
    filters.taken_to.setDate(QDate(2015, 6, 1))  # the last day is included
    _search(window, qtbot)
    assert _names(window) == {"lake.jpg"}
    query = filters.query("x", None, 10)
    assert str(query.taken_after) == "2015-01-01" and str(query.taken_before) == "2015-06-02"

    filters.taken.setCurrentIndex(0)
    filters.camera.setCurrentIndex(filters.camera.findData("Apple iPhone 12"))
    _search(window, qtbot)
    assert _names(window) <= {"paris.jpg", "paris_small.jpg"} and len(_names(window)) == 1


def test_text_helpers():
    assert taken_text(None, None) == "unknown"
    assert taken_text("2019-07-14T23:30:00", "exif") == "2019-07-14 23:30"
    assert place_link(None, 2.0) == ""
    assert Image  # (PIL imported for the fixture's files)
