"""`clifs label | segment | detect` end to end, in a subprocess, with the test model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes
from tests.conftest import run_clifs


def _json(proc):
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Two two-object scenes: one inside an indexed folder, one outside it."""
    root = tmp_path_factory.mktemp("vision")
    scenes = [s for s in iter_scenes(HELD_OUT_SEED_BASE + 7000, 20, size=128) if len(s.objects) == 2][:2]
    (root / "library").mkdir()
    inside, outside = root / "library" / "inside.png", root / "outside.png"
    scenes[0].image.save(inside)
    scenes[1].image.save(outside)
    home = root / "home"
    proc = run_clifs(home, "index", str(root / "library"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    return home, (inside, scenes[0]), (outside, scenes[1])


def test_label_json_sums_to_one_and_reuses_the_stored_embedding(photos):
    home, (inside, scene), (outside, _) = photos
    names = [o.name for o in scene.objects] + [
        "green cross" if scene.objects[0].name != "green cross" else "red square"
    ]
    proc = run_clifs(
        home, "-v", "label", str(inside), "--labels", ",".join(names), "--json", "--model", "shapes-vit-tiny"
    )
    rows = _json(proc)
    assert [set(r) for r in rows] == [{"label", "probability", "cosine", "fits"}] * 3
    assert {r["label"] for r in rows} == set(names)
    assert sum(r["probability"] for r in rows) == pytest.approx(1.0, abs=1e-5)
    assert "stored embedding" in proc.stderr  # indexed: a matmul, no image pass

    proc = run_clifs(home, "-v", "label", str(outside), "--vocab", "shapes", "--top", "4", "--json")
    rows = _json(proc)
    assert len(rows) == 4 and "stored embedding" not in proc.stderr
    assert [r["probability"] for r in rows] == sorted((r["probability"] for r in rows), reverse=True)


def test_segment_writes_an_overlay_and_one_mask_per_label(photos, tmp_path):
    home, (inside, scene), _ = photos
    labels = [o.name for o in scene.objects]
    rows = _json(
        run_clifs(home, "segment", str(inside), "--labels", ",".join(labels), "--out", str(tmp_path), "--json")
    )
    assert [r["label"] for r in rows] == labels
    assert all(0.0 <= r["fraction"] <= 1.0 for r in rows) and sum(r["fraction"] for r in rows) <= 1.0
    for row, obj in zip(rows, scene.objects, strict=True):
        mask = np.asarray(Image.open(row["mask"]))
        assert mask.shape == (128, 128) and set(np.unique(mask)) <= {0, 255}
        assert (mask > 0).mean() == pytest.approx(row["fraction"], abs=1e-6)
        assert ((mask > 0) & obj.mask).sum() > 0.3 * obj.mask.sum()  # it found a good part of the object
    overlay = Image.open(rows[0]["overlay"])
    assert overlay.size == (128, 128) and overlay.mode == "RGB"


def test_detect_json_and_overlay(photos, tmp_path):
    home, (inside, scene), _ = photos
    obj = scene.objects[0]
    rows = _json(run_clifs(home, "detect", str(inside), "--labels", obj.name, "--out", str(tmp_path), "--json"))
    assert rows and all(set(r) == {"label", "score", "box"} for r in rows)
    best = rows[0]
    assert best["label"] == obj.name and 0.5 <= best["score"] <= 1.0
    x, y, w, h = best["box"]
    ox, oy, ow, oh = obj.box
    inter = max(0, min(x + w, ox + ow) - max(x, ox)) * max(0, min(y + h, oy + oh) - max(y, oy))
    assert inter / (w * h + ow * oh - inter) > 0.5
    assert Image.open(tmp_path / "inside-boxes.png").size == (128, 128)


def test_unsupported_model_and_missing_file_exit_2(photos, tmp_path, clifs_home, capsys):
    """In-process (the error paths need no fresh interpreter): exit code 2, a readable reason, no traceback."""
    import open_clip
    import torch

    from clifs.cli.main import main

    _, (inside, _), _ = photos
    folder = tmp_path / "tiny-resnet-clip"
    folder.mkdir()
    cfg = {
        "embed_dim": 32,
        "vision_cfg": {"layers": [1, 1, 1, 1], "width": 16, "image_size": 64, "head_width": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }
    torch.save(open_clip.model.CLIP(**cfg).state_dict(), folder / "open_clip_pytorch_model.bin")
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": {}}))
    assert main(["segment", str(inside), "--labels", "red circle", "--model", str(folder)]) == 2
    assert "not supported for this model" in capsys.readouterr().err
    assert main(["detect", str(inside), "--labels", "red circle", "--model", str(folder)]) == 2
    assert "not supported for this model" in capsys.readouterr().err
    assert main(["label", str(tmp_path / "nope.png")]) == 2
    assert "not found" in capsys.readouterr().err
