"""'None of these fits': each label says whether it fits, in the engine, `clifs label` and the window."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clifs.engine.vision.labels import (
    CLIP_RULE,
    TEST_MODEL_RULE,
    FitRule,
    fit_rule,
    flatness,
    label_embedding,
    none_fits,
)
from devkit.none_fits import MEASURE_SEED, rates, shapes_trials
from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes
from tests.conftest import run_clifs, write_single_objects

WAIT_MS = 60_000
#: The issue's goals: "none fits" said for >= 90% of lists without the true label, <= 5% of lists with it.
ABSENT_GOAL, PRESENT_GOAL = 0.90, 0.05


@pytest.mark.parametrize("template_set", ["compact", "ensemble"])
def test_the_shipped_rule_meets_the_goal_on_held_out_scenes(test_encoder, template_set):
    # Seeds the calibration never saw (it used HELD_OUT + 40000; the docs' table HELD_OUT + 41000...).
    trials = shapes_trials(test_encoder, MEASURE_SEED + 900, 200, 1, template_set)
    r = rates(fit_rule(test_encoder), trials)
    assert r.n_absent == 200 and r.n_present == 200
    assert r.absent_none >= ABSENT_GOAL, r
    assert r.present_none <= PRESENT_GOAL, r


def test_an_empty_scene_fits_no_shape_name(test_encoder):
    names = [f"{c} {s}" for c in ("red", "blue", "green") for s in ("circle", "square")]
    for scene in iter_scenes(HELD_OUT_SEED_BASE + 42_000, 10, size=96, n_objects=0):
        emb = test_encoder.encode_pil([scene.image])[0]
        scores = label_embedding(test_encoder, emb, names)
        assert none_fits(scores) and sum(s.probability for s in scores) == pytest.approx(1.0, abs=1e-5)


def test_a_flat_distribution_in_the_grey_zone_fits_nothing_but_a_clear_winner_does():
    """The issue's red envelope with CLIP's stated rule: a near-uniform softmax at scale 100 is no answer."""
    scale = 100.0

    def softmax(c):
        e = np.exp(scale * (c - c.max()))
        return e / e.sum()

    plane_dog_car_bird = np.array([0.2140, 0.2101, 0.2048, 0.2096])
    probs = softmax(plane_dog_car_bird)
    assert probs == pytest.approx([0.37, 0.25, 0.14, 0.24], abs=0.01)  # the numbers
    assert flatness(probs) > 0.9 and not CLIP_RULE.fits(plane_dog_car_bird, probs).any()
    with_envelope = np.append(plane_dog_car_bird, 0.2730)
    probs = softmax(with_envelope)
    assert probs[-1] > 0.99 and CLIP_RULE.fits(with_envelope, probs).tolist() == [False] * 4 + [True]
    sure = np.array([0.31, 0.30])  # two labels that both clearly fit (a dog and a cat): the flat shape does not matter
    assert CLIP_RULE.fits(sure, softmax(sure)).all()
    rule = FitRule(floor=0.5, sure=0.8, max_flatness=0.2, min_probability=0.5)
    assert rule.fits(np.array([0.6]), np.array([1.0])).tolist() == [True]  # one label: flatness 0
    assert rule.fits(np.array([0.4]), np.array([1.0])).tolist() == [False]  # below the floor


@pytest.fixture(scope="module")
def single_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("none-fits")
    return write_single_objects(root / "photos")


def test_label_json_has_fits_and_the_text_says_none_of_these_fits(single_files, tmp_path):
    home = tmp_path / "home"
    image = str(single_files["red circle"])
    proc = run_clifs(home, "label", image, "--labels", "blue square,green triangle,yellow cross", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [set(r) for r in rows] == [{"label", "probability", "cosine", "fits"}] * 3
    assert [r["fits"] for r in rows] == [False, False, False]
    assert sum(r["probability"] for r in rows) == pytest.approx(1.0, abs=1e-5)
    assert all(r["cosine"] < TEST_MODEL_RULE.floor for r in rows)

    proc = run_clifs(home, "label", image, "--labels", "blue square,green triangle,yellow cross")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "none of these fits; best guesses:"
    assert len(lines) == 4 and all(line.endswith("(guess)") for line in lines[1:])

    proc = run_clifs(home, "label", image, "--labels", "blue square,red circle,yellow cross", "--json")
    rows = json.loads(proc.stdout)
    assert rows[0]["label"] == "red circle" and rows[0]["fits"] is True
    assert [r["fits"] for r in rows[1:]] == [False, False]
    proc = run_clifs(home, "label", image, "--labels", "blue square,red circle,yellow cross")
    lines = proc.stdout.splitlines()
    assert "none of these fits" not in proc.stdout and lines[0].endswith("  red circle")
    assert all(line.endswith("(guess)") for line in lines[1:])


def test_the_detail_pane_says_none_of_these_fits_for_an_empty_picture(qtbot, tmp_path, test_encoder, monkeypatch):
    from tests.gui_helpers import indexed_window

    photos = tmp_path / "photos"
    singles = write_single_objects(photos)
    empty = next(iter_scenes(HELD_OUT_SEED_BASE + 42_100, 1, size=96, n_objects=0)).image
    empty.save(photos / "empty.png")
    with indexed_window(qtbot, monkeypatch, tmp_path / "home", photos, test_encoder) as window:
        for path, expected in ((photos / "empty.png", "none"), (singles["green square"], "green square")):
            window.set_query_image(str(path))
            qtbot.waitUntil(lambda p=path: window.results.rowCount() > 0 and window.results.hit(0).path == str(p),
                            timeout=WAIT_MS)  # fmt: skip
            window.view.setCurrentIndex(window.results.index(0))
            labels = window.detail.vision.labels
            qtbot.waitUntil(lambda lab=labels: "%" in lab.text(), timeout=WAIT_MS)
            if expected == "none":
                assert labels.text().startswith("Labels: none of these fits — best guesses: ")
                assert labels.text().count("?") == 5  # the five best guesses, each marked
            else:
                assert labels.text().startswith(f"Labels: {expected} ")  # fits: no "?" on it
                assert "none of these fits" not in labels.text()
            window.clear_query_image()
            qtbot.waitUntil(lambda: window.results.rowCount() == 0, timeout=WAIT_MS)


def test_fits_is_the_same_through_the_python_api(test_encoder, single_files):
    from PIL import Image

    emb = test_encoder.encode_pil([Image.open(single_files["purple triangle"]).convert("RGB")])[0]
    scores = label_embedding(test_encoder, emb, ["purple triangle", "orange cross"], template_set="compact")
    assert [(s.label, s.fits) for s in scores] == [("purple triangle", True), ("orange cross", False)]
    assert scores[0].cosine >= fit_rule(test_encoder).sure
