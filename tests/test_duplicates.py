"""Near-duplicates (issue 13): resized, recompressed, lightly cropped and blurred copies of a photo group,
best copy first; unrelated photos, two photos of a plain wall and two views of one place do not; search
shows one hit per group; the grouping is a FAISS range search, not a Python double loop."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clifs.engine.catalog_reads import ImageFacts
from clifs.engine.duplicates import _groups_of, best_first, calibration_for, candidate_pairs
from clifs.engine.image_hash import distance, perceptual_signature
from devkit.copies import copies, plain_walls, two_views
from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes
from tests.conftest import run_clifs

COPY_KINDS = ("resized", "recompressed", "cropped", "blurred")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("dupes")
    folder = root / "photos"
    (folder / "phone").mkdir(parents=True)
    scenes = [s.image for s in iter_scenes(HELD_OUT_SEED_BASE + 700, 11, 384, n_objects=2)]
    groups = []
    an_hour_ago = time.time() - 3600
    for g, original in enumerate(scenes[:3]):
        first = folder / f"trip{g}.jpg"
        original.save(first, quality=95)
        os.utime(first, (an_hour_ago, an_hour_ago))
        members = [first]
        for kind, copy in copies(original).items():
            if kind not in COPY_KINDS:
                continue
            path = folder / "phone" / f"trip{g}_{kind}.jpg"
            copy.save(path, quality=90)
            members.append(path)
        groups.append(members)
    for i, other in enumerate(scenes[3:]):  # unrelated photos
        other.save(folder / f"other{i}.jpg", quality=90)
    wall_a, wall_b = plain_walls(seed=3)
    wall_a.save(folder / "wall_morning.jpg", quality=92)
    wall_b.save(folder / "wall_evening.jpg", quality=92)
    place = next(iter_scenes(HELD_OUT_SEED_BASE + 800, 1, 512, n_objects=3)).image
    left, right = two_views(place)
    left.save(folder / "square_left.jpg", quality=92)
    right.save(folder / "square_right.jpg", quality=92)
    home = root / "home"
    proc = run_clifs(home, "index", str(folder), "--json", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["failed"] == []
    return home, folder, [[str(p) for p in g] for g in groups]


def _expected_order(paths: list[str]) -> list[str]:
    facts = []
    for p in paths:
        with Image.open(p) as im:
            w, h = im.size
        st = os.stat(p)
        facts.append(ImageFacts(0, p, st.st_size, st.st_mtime, w, h, None, None))
    return [f.path for f in best_first(facts)]


def test_the_copies_of_each_photo_are_found_exactly_best_copy_first(photos):
    home, _, groups = photos
    proc = run_clifs(home, "duplicates", "--json")
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert sorted(map(sorted, found)) == sorted(map(sorted, groups))  # no wall, no place, no unrelated photo
    for group in found:
        assert group == _expected_order(group)
        assert "/phone/" not in group[0]  # the full-size original first: most pixels, then most bytes


def test_text_output_lists_each_group_with_its_copies(photos):
    home, _, groups = photos
    proc = run_clifs(home, "duplicates")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert sum(not line.startswith("  = ") for line in lines) == 3
    assert sum(line.startswith("  = ") for line in lines) == 3 * len(COPY_KINDS)
    assert "3 group(s), 12 extra copies" in proc.stderr


def test_duplicates_in_a_folder(photos):
    home, folder, groups = photos
    proc = run_clifs(home, "duplicates", "--in", str(folder / "phone"), "--json")
    assert proc.returncode == 0, proc.stderr
    inside = json.loads(proc.stdout)
    assert sorted(map(sorted, inside)) == sorted(sorted(p for p in g if "/phone/" in p) for g in groups)
    missing = run_clifs(home, "duplicates", "--in", str(folder / "nowhere"))
    assert missing.returncode == 2 and "not a folder" in missing.stderr


def test_search_shows_one_hit_per_group_with_the_other_copies(photos):
    home, folder, groups = photos
    proc = run_clifs(home, "search", "--image", groups[0][0], "--top", "30", "--json")
    hits = json.loads(proc.stdout)
    in_group = [h for h in hits if h["path"] in groups[0]]
    assert len(in_group) == 1
    hit = in_group[0]
    assert hits[0] is hit and hit["path"] == groups[0][0]  # the group shows its best copy
    assert sorted([hit["path"], *hit["duplicates"]]) == sorted(groups[0])
    assert all(h["duplicates"] == [] for h in hits if Path(h["path"]).stem.startswith(("other", "wall", "square")))
    text = run_clifs(home, "search", "--image", groups[0][0], "--top", "3")
    assert f"(+{len(COPY_KINDS)} similar)" in text.stdout.splitlines()[0]


def test_all_copies_lists_every_copy(photos):
    home, _, groups = photos
    proc = run_clifs(home, "search", "--image", groups[1][0], "--top", "30", "--json", "--all-copies")
    hits = json.loads(proc.stdout)
    assert {h["path"] for h in hits} >= set(groups[1])
    assert all(h["duplicates"] == [] for h in hits)


def test_a_copy_indexed_later_joins_its_group_without_regrouping(photos, tmp_path):
    home, folder, groups = photos
    late = folder / "phone" / "trip2_late.jpg"
    with Image.open(groups[2][0]) as im:
        im.resize((300, 300)).save(late, quality=80)
    try:
        proc = run_clifs(home, "index", str(folder), "--json", "--no-progress")
        assert json.loads(proc.stdout)[0]["indexed"] == 1
        hits = json.loads(run_clifs(home, "search", "--image", groups[2][0], "--top", "30", "--json").stdout)
        hit = next(h for h in hits if h["path"] in groups[2] or h["path"] == str(late))
        assert sorted([hit["path"], *hit["duplicates"]]) == sorted([*groups[2], str(late)])
    finally:
        late.unlink()
        run_clifs(home, "index", str(folder), "--no-progress")


# -- the parts ----------------------------------------------------------------------------------------
def test_signatures_tell_copies_from_look_alikes():
    picture = next(iter_scenes(HELD_OUT_SEED_BASE + 900, 1, 256, n_objects=2)).image
    mine = perceptual_signature(picture)
    for kind, copy in copies(picture).items():
        assert distance(mine, perceptual_signature(copy)) <= 12, kind
    a, b = plain_walls(seed=5)
    assert distance(perceptual_signature(a), perceptual_signature(b)) > 20
    left, right = two_views(next(iter_scenes(HELD_OUT_SEED_BASE + 901, 1, 512, n_objects=3)).image)
    assert distance(perceptual_signature(left), perceptual_signature(right)) > 20


def test_range_search_finds_planted_pairs_exactly_and_with_ivf():
    rng = np.random.default_rng(0)
    n, dim = 6000, 64
    x = rng.normal(size=(n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    planted = []
    for i in range(0, 600, 3):  # 200 pairs, each a near copy (cosine ~0.99)
        j = n - 1 - i
        noisy = x[i] + rng.normal(scale=0.1 / np.sqrt(dim), size=dim).astype(np.float32)
        x[j] = noisy / np.linalg.norm(noisy)
        planted.append((i, j))
    exact = {tuple(p) for p in candidate_pairs(x, 0.95).tolist()}
    ivf = {tuple(p) for p in candidate_pairs(x, 0.95, exact_limit=1000).tolist()}
    assert exact == set(planted)  # random 64-d vectors never reach 0.95 by chance
    assert len(ivf & set(planted)) >= 0.98 * len(planted) and ivf <= exact


def test_groups_are_connected_components():
    assert _groups_of([(5, 3), (3, 9), (1, 2), (7, 7)]) == [[1, 2], [3, 5, 9], [7]]


def test_calibrations_by_model():
    assert calibration_for("openclip:shapes-vit-tiny:x:y").cosine == 0.88
    assert calibration_for("starter:conse1:abc").cosine == 0.92
    assert calibration_for("openclip:ViT-B-32:laion2b").cosine == 0.95
