"""Sketches as queries: the pad in the real window, drawn on with real mouse events, searched with the test model."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from devkit.shapes import HELD_OUT_SEED_BASE
from devkit.sketches import drawing
from gui.sketch_pad import PAPER, SIDE, SketchPad, picture_array
from tests.conftest import write_single_objects
from tests.gui_helpers import WAIT_MS, indexed_window


def widget_point(pad: SketchPad, x: float, y: float) -> QPoint:
    """Where on the canvas widget a point of the picture is."""
    t = pad.canvas.target()
    return QPoint(round(t.x() + x * t.width() / SIDE), round(t.y() + y * t.height() / SIDE))


def drag(qtbot, pad: SketchPad, points) -> None:
    """One stroke with the mouse: press, move through the points, release."""
    canvas = pad.canvas
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=widget_point(pad, *points[0]))
    for x, y in points[1:]:
        qtbot.mouseMove(canvas, widget_point(pad, x, y))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=widget_point(pad, *points[-1]))


def click(qtbot, pad: SketchPad, x: float, y: float) -> None:
    qtbot.mouseClick(pad.canvas, Qt.MouseButton.LeftButton, pos=widget_point(pad, x, y))


@pytest.fixture
def window(qtbot, tmp_path, test_encoder, monkeypatch):
    """A window over 48 single-object pictures (two of each colour and shape), the model loaded."""
    photos = tmp_path / "photos"
    write_single_objects(photos / "a")
    write_single_objects(photos / "b", seed=HELD_OUT_SEED_BASE + 11)
    with indexed_window(qtbot, monkeypatch, tmp_path / "home", photos, test_encoder, size=(1100, 700)) as win:
        yield win


def top_names(win, k: int) -> list[str]:
    from pathlib import Path

    return [Path(win.results.hit(i).path).stem.replace("_", " ") for i in range(min(k, win.results.rowCount()))]


def test_a_red_blob_drawn_roughly_in_a_circle_finds_red_circles(window, qtbot):
    assert not window.sketch.isVisible()
    window.sketch_button.click()
    pad = window.sketch
    assert pad.isVisible() and pad.is_blank()
    pad.colour_buttons["red"].click()
    d = drawing("circle", np.random.default_rng(3), style="filled")
    drag(qtbot, pad, d.strokes[0][1])  # the outline: already a query
    assert window.chip.isVisible() and window.chip.name.text() == "Sketch"
    pad.tool_buttons["fill"].click()
    click(qtbot, pad, *d.fills[0])  # the bucket fills it in: a red blob
    inside = picture_array(pad.image())[round(d.fills[0][1]), round(d.fills[0][0])]
    assert tuple(inside) == (230, 20, 20)
    qtbot.waitUntil(lambda: window.search.state.name == "SHOWN" and window.results.rowCount() > 0, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: top_names(window, 2) == ["red circle", "red circle"], timeout=WAIT_MS)

    # Text and sketch together, at the window's image weight (0.5, where the sketch still leads): the red
    # squares join the red circles at the top.
    qtbot.keyClicks(window.search_field, "a square")
    qtbot.keyClick(window.search_field, Qt.Key.Key_Return)
    expected = ["red circle", "red circle", "red square", "red square"]
    qtbot.waitUntil(lambda: sorted(top_names(window, 4)) == expected, timeout=WAIT_MS)

    window.search_field.clear()
    pad.clear_button.click()  # a clear pad ends the sketch search
    assert pad.is_blank() and not window.chip.isVisible()
    qtbot.waitUntil(lambda: window.results.rowCount() == 0, timeout=WAIT_MS)


@pytest.mark.parametrize(
    "colour, shape, style",
    [("blue", "triangle", "scribble"), ("green", "cross", "filled"), ("yellow", "square", "scribble")],
)
def test_crude_blobs_find_their_shape_and_colour(window, qtbot, colour, shape, style):
    """Scribbled in with the thick pen, or outlined and filled with the bucket (bench/sketch_recall.py has the rates)."""
    window.sketch_button.click()
    pad = window.sketch
    pad.colour_buttons[colour].click()
    d = drawing(shape, np.random.default_rng(5), style=style)
    for size, points in d.strokes:
        pad.size_buttons[size].click()
        drag(qtbot, pad, points)
    for point in d.fills:
        pad.tool_buttons["fill"].click()
        click(qtbot, pad, *point)
    qtbot.waitUntil(lambda: f"{colour} {shape}" in top_names(window, 5), timeout=WAIT_MS)


def test_the_eraser_rubs_out_and_tools_switch_back(qtbot):
    pad = SketchPad()
    qtbot.addWidget(pad)
    pad.resize(300, 330)
    pad.show()
    sketched = []
    pad.sketched.connect(sketched.append)
    pad.colour_buttons["blue"].click()
    pad.size_buttons["thick"].click()
    drag(qtbot, pad, [(40, 128), (216, 128)])
    assert len(sketched) == 1 and not pad.is_blank()
    assert tuple(picture_array(sketched[0])[128, 128]) == (20, 60, 240)
    pad.tool_buttons["eraser"].click()
    assert pad.canvas.tool == "eraser"
    drag(qtbot, pad, [(20, 128), (236, 128)])
    assert tuple(picture_array(pad.image())[128, 128]) == PAPER.getRgb()[:3]
    pad.colour_buttons["green"].click()  # picking a pen ends the eraser
    assert pad.canvas.tool == "pen" and pad.tool_buttons["eraser"].isChecked() is False
    pad.tool_buttons["fill"].click()
    pad.tool_buttons["fill"].click()  # the tool that is on, clicked again: back to the pen
    assert pad.canvas.tool == "pen"
    cleared = []
    pad.cleared.connect(lambda: cleared.append(True))
    pad.clear_button.click()
    assert cleared == [True] and pad.is_blank()
    assert (picture_array(pad.image()) == 255).all()
    pad.canvas.stroke([QPointF(10, 10)])  # a dot
    assert not pad.is_blank()
