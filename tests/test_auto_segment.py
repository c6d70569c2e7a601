"""What's in it, without a query: regions grouped from the dense features and named, in the engine,
`clifs segment --auto` and the detail pane; the shapes-world test model with exact ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from clifs.engine.vision.boxes import box_iou
from clifs.engine.vision.regions import auto_segment
from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes
from tests.conftest import run_clifs

WAIT_MS = 60_000
SEED = HELD_OUT_SEED_BASE + 62_000  # not the bench's seeds


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def multi_object_scenes(n: int, seed: int = SEED, size: int = 128):
    return [s for s in iter_scenes(seed, 4 * n, size=size) if len(s.objects) >= 2][:n]


def test_objects_get_a_region_with_their_name(test_encoder):
    found = objects = 0
    for scene in multi_object_scenes(20):
        seg = auto_segment(test_encoder, scene.image)
        assert seg.region_map.shape == (128, 128)
        assert sum(r.fraction for r in seg.regions) == pytest.approx(1.0, abs=1e-6)  # the regions tile the picture
        assert [r.fraction for r in seg.regions] == sorted((r.fraction for r in seg.regions), reverse=True)
        assert seg.regions[0].background and seg.regions[0].label is None  # the largest: the backdrop
        for i, region in enumerate(seg.regions):
            assert np.array_equal(region.mask, seg.region_map == i)
        for obj in scene.objects:
            objects += 1
            best = max(seg.regions, key=lambda r: iou(r.mask, obj.mask))
            found += iou(best.mask, obj.mask) >= 0.5 and best.label == obj.name
        for region in seg.named():  # nothing is named that is not there
            assert any(o.name == region.label and iou(region.mask, o.mask) >= 0.5 for o in scene.objects)
    assert found / objects >= 0.9, f"{found}/{objects} objects found with their name"


def test_a_region_no_name_fits_is_left_unnamed(test_encoder):
    scene = multi_object_scenes(1, SEED + 1)[0]
    present = {o.name for o in scene.objects}
    others = [n for n in ("green triangle", "yellow cross", "orange circle", "purple square") if n not in present]
    seg = auto_segment(test_encoder, scene.image, vocabulary=others)
    assert seg.named() == [] and all(r.label is None for r in seg.regions)
    for obj in scene.objects:  # still found as regions of their own, only not named
        assert max(iou(r.mask, obj.mask) for r in seg.regions) >= 0.5
    assert all(r.guess in others for r in seg.regions if not r.background)

    empty = next(iter_scenes(SEED + 2, 1, size=128, n_objects=0)).image
    seg = auto_segment(test_encoder, empty)
    assert seg.named() == [] and all(r.background for r in seg.regions)


@pytest.fixture(scope="module")
def scene_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("auto")
    scene = [s for s in multi_object_scenes(10, SEED + 3) if len(s.objects) == 3][0]
    path = root / "three shapes.png"
    scene.image.save(path)
    return root, path, scene


def test_segment_auto_writes_an_overlay_and_one_mask_per_region(scene_file, tmp_path):
    root, path, scene = scene_file
    out = tmp_path / "out"
    proc = run_clifs(root / "home", "segment", str(path), "--auto", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert all({"label", "fraction", "box", "guess", "background", "mask", "overlay"} <= set(r) for r in rows)
    assert sum(r["fraction"] for r in rows) == pytest.approx(1.0, abs=1e-6)
    named = {r["label"]: r for r in rows if r["label"] is not None}
    assert set(named) == {o.name for o in scene.objects}
    for obj in scene.objects:
        row = named[obj.name]
        assert box_iou(tuple(row["box"]), obj.box) > 0.7
        mask = np.asarray(Image.open(row["mask"])) > 0
        assert mask.shape == (128, 128) and mask.mean() == pytest.approx(row["fraction"], abs=1e-6)
        assert iou(mask, obj.mask) > 0.7
    assert rows[0]["background"] and rows[0]["label"] is None and rows[0]["mask"].endswith("-background.png")
    overlay = Image.open(out / "three shapes-regions.png")
    assert overlay.size == (128, 128) and overlay.mode == "RGB"

    proc = run_clifs(root / "home", "segment", str(path), "--auto")
    assert proc.returncode == 0, proc.stderr
    assert "(background: " in proc.stdout
    assert all(f"  {o.name}  x=" in proc.stdout for o in scene.objects)


def test_segment_auto_usage_errors_exit_2(scene_file, tmp_path):
    root, path, scene = scene_file
    proc = run_clifs(root / "home", "segment", str(path), "--auto", "--labels", "red circle")
    assert proc.returncode == 2 and "not allowed with argument" in proc.stderr
    proc = run_clifs(root / "home", "segment", str(path))
    assert proc.returncode == 2 and "one of the arguments --labels --auto is required" in proc.stderr
    proc = run_clifs(root / "home", "segment", str(path), "--labels", "red circle", "--vocab", "shapes")
    assert proc.returncode == 2 and "--vocab names the regions of --auto" in proc.stderr
    vocab = tmp_path / "mine.txt"
    vocab.write_text("# not these\ngreen heart\nwhite star\n", encoding="utf-8")
    proc = run_clifs(root / "home", "segment", str(path), "--auto", "--vocab", str(vocab), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert all(r["label"] is None for r in rows)
    assert "no region matches a name" in proc.stderr


def test_whats_in_it_on_the_detail_pane(qtbot, scene_file, tmp_path, test_encoder, monkeypatch):
    from tests.gui_helpers import indexed_window

    _, path, scene = scene_file
    with indexed_window(qtbot, monkeypatch, tmp_path / "home", path.parent, test_encoder) as window:
        window.set_query_image(str(path))  # no text: masks and boxes are off, "What's in it?" is not
        qtbot.waitUntil(lambda: window.results.rowCount() > 0, timeout=WAIT_MS)
        window.view.setCurrentIndex(window.results.index(0))
        vision = window.detail.vision
        assert not vision.buttons["mask"].isEnabled() and vision.buttons["regions"].isEnabled()
        qtbot.waitUntil(window.detail.preview.has_image, timeout=WAIT_MS)
        plain = window.detail.preview.image()

        vision.buttons["regions"].click()
        qtbot.waitUntil(lambda: vision.found.isVisible(), timeout=WAIT_MS)
        assert vision.state.text() == ""  # no error
        text = vision.found.text()
        assert text.startswith("In it: ") and "unnamed" not in text
        assert set(text.removeprefix("In it: ").split(" · ")) == {o.name for o in scene.objects}
        painted = window.detail.preview.image()
        assert painted != plain and painted.size() == plain.size()

        vision.buttons["regions"].click()  # off again: the plain preview
        assert window.detail.preview.image() == plain and not vision.found.isVisible()
