"""Sound in the window, driven like a person would: a dropped audio file becomes a query chip, sound hits
show their waveform with the moment marked, the detail pane lists the moments, and Enter plays the file
in the default application. Real widgets, a real catalog, the test model and its trained audio tower."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from clifs.engine.config import Settings
from clifs.engine.library import Library
from clifs.engine.thumbnails import WAVE_INK
from devkit.shapes_av import write_object_sound, write_shapes_video
from indexer.pipeline import Pipeline
from tests.conftest import write_single_objects
from tests.test_gui import WAIT_MS, _drop, open_window, opened  # noqa: F401 -- the window fixtures

SCREENSHOT = os.environ.get("CLIFS_SCREENSHOT")  # where to save the window with a sound hit, to look at it


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, test_encoder):
    """Pictures, a sound per colour with a circle, and a video with a soundtrack, indexed once."""
    root = tmp_path_factory.mktemp("gui-audio")
    folder = root / "media"
    pictures = write_single_objects(folder / "photos")
    sounds = {
        colour: write_object_sound(folder / "sounds" / f"{colour}_circle.ogg", colour, "circle", seconds=3.0, seed=i)
        for i, colour in enumerate(("red", "green", "blue"))
        if (folder / "sounds").mkdir(parents=True, exist_ok=True) or True
    }
    write_shapes_video(folder / "clip.mp4", [("green", "cross", 2.0), ("red", "circle", 2.0)])
    query = write_object_sound(root / "hum.wav", "red", "circle", seconds=2.0, seed=50)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLIFS_HOME", str(root / "home"))
        settings = Settings.load(root / "home")
        settings.model = "shapes-vit-tiny"
        library = Library(settings, encoder=test_encoder)
        library.catalog.add_folder(str(folder))
        report = Pipeline(library).index_folders([str(folder)])
        assert not report.failed and report.audio_unindexed == 0
        library.close()
    return root / "home", pictures, sounds, query


def _share_of(image: QImage, colour: tuple[int, int, int]) -> float:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    rgb = rows[:, : 3 * image.width()].reshape(image.height(), image.width(), 3).astype(int)
    return float((np.abs(rgb - np.array(colour)).max(axis=2) < 40).mean())


def test_dropping_a_sound_searches_by_it_and_sound_hits_show_their_waveform(
    open_window,  # noqa: F811
    indexed,
    opened,  # noqa: F811
    qtbot,
):
    home, pictures, sounds, query = indexed
    window = open_window(home)
    _drop(window, query)
    assert window.sound_chip.isVisible() and "hum.wav" in window.sound_chip.name.text()
    assert not window.chip.isVisible()  # the image chip is another query
    qtbot.waitUntil(
        lambda: window.sound_chip.icon.pixmap() is not None and not window.sound_chip.icon.pixmap().isNull(),
        timeout=WAIT_MS,
    )
    qtbot.waitUntil(lambda: window.results.rowCount() > 0, timeout=WAIT_MS)
    top = [window.results.hit(i).path for i in range(3)]
    assert str(sounds["red"]) in top[:2] and str(home.parent / "media" / "clip.mp4") in top[:2]

    window.filters.kind.setCurrentIndex(window.filters.kind.findData("audio"))  # "Sounds"
    qtbot.waitUntil(
        lambda: (
            window.results.rowCount() > 0
            and all(window.results.hit(i).matched == "sound" for i in range(window.results.rowCount()))
        ),
        timeout=WAIT_MS,
    )
    row = next(i for i in range(window.results.rowCount()) if window.results.hit(i).kind == "audio")
    hit = window.results.hit(row)
    assert hit.path == str(sounds["red"]) and hit.timestamp is not None
    window.view.viewport().repaint()
    qtbot.waitUntil(lambda: window.results.thumbnail(row) is not None, timeout=WAIT_MS)
    assert _share_of(window.results.thumbnail(row).toImage(), WAVE_INK) > 0.05  # a waveform, not a blank

    window.view.setCurrentIndex(window.results.index(row, 0))
    qtbot.waitUntil(lambda: window.detail.isVisible() and window.detail.moments.count() >= 2, timeout=WAIT_MS)
    assert window.detail.title.text() == "red_circle.ogg"
    listed = [window.detail.moments.item(i).text().split()[0] for i in range(window.detail.moments.count())]
    assert len(set(listed)) == len(listed) and all("." in t for t in listed), listed  # half seconds apart: tenths
    assert not any(b.isEnabled() for mode, b in window.detail.vision.buttons.items())  # no picture to paint on
    qtbot.waitUntil(lambda: window.detail.vision.labels.text() != "Labels: …", timeout=WAIT_MS)
    assert "red" in window.detail.vision.labels.text().lower()  # zero-shot labels of the sound itself
    if SCREENSHOT:
        qtbot.wait(2000)  # the large waveform preview
        window.grab().save(SCREENSHOT)

    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Return)  # plays it: the default application opens the file
    assert [Path(u.toLocalFile()) for u in opened] == [Path(sounds["red"])]

    window.sound_chip.close_button.click()
    assert not window.sound_chip.isVisible() and window.search.audio is None
    qtbot.waitUntil(lambda: window.results.rowCount() == 0, timeout=WAIT_MS)

    window.hit_actions.find_similar_sound.emit(str(sounds["green"]))  # the context menu's "Find similar"
    assert window.sound_chip.isVisible() and "green_circle" in window.sound_chip.name.text()
    qtbot.waitUntil(
        lambda: window.results.rowCount() > 0 and window.results.hit(0).path == str(sounds["green"]), timeout=WAIT_MS
    )
    window.sound_chip.close_button.click()

    qtbot.keyClicks(window.search_field, "a blue circle")  # text finds sounds in the window too
    qtbot.waitUntil(lambda: window.results.rowCount() > 0, timeout=WAIT_MS)
    assert window.results.hit(0).path == str(sounds["blue"])
