"""End to end through the `clifs` command on generated shapes-world folders (rclip-style)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes
from tests.conftest import run_clifs, write_single_objects


def _json(proc) -> list:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """A folder of one image per (colour, shape) plus multi-object scenes, indexed once."""
    root = tmp_path_factory.mktemp("lib")
    photos = root / "photos"
    singles = write_single_objects(photos / "singles")
    (photos / "scenes").mkdir()
    for i, scene in enumerate(iter_scenes(HELD_OUT_SEED_BASE + 20, 16, 96, n_objects=2)):
        scene.image.convert("RGB").save(photos / "scenes" / f"scene_{i}.jpg", quality=90)
    home = root / "home"
    summary = _json(run_clifs(home, "index", str(photos), "--json", "--no-progress"))[0]
    assert summary["indexed"] == len(singles) + 16
    assert summary["failed"] == []
    return home, photos, singles


def test_text_query_finds_the_right_image_first(library):
    home, _, singles = library
    hits = _json(run_clifs(home, "search", "a red circle", "--top", "3", "--json"))
    assert hits[0]["path"] == str(singles["red circle"])
    assert set(hits[0]) >= {"path", "score", "kind"}
    assert hits[0]["kind"] == "image"
    assert -1.0 <= hits[0]["score"] <= 1.0
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]


def test_image_query_finds_its_near_duplicate(library, tmp_path):
    home, _, singles = library
    query = tmp_path / "query.jpg"
    Image.open(singles["blue triangle"]).convert("RGB").resize((80, 80)).save(query, quality=60)
    hits = _json(run_clifs(home, "search", "--image", str(query), "--top", "1", "--json"))
    assert hits[0]["path"] == str(singles["blue triangle"])
    assert hits[0]["score"] > 0.9


def test_filters_restrict_results(library):
    home, photos, _ = library
    hits = _json(run_clifs(home, "search", "a shape", "--in", str(photos / "scenes"), "--top", "50", "--json"))
    assert len(hits) == 16
    assert all(h["path"].startswith(str(photos / "scenes") + "/") for h in hits)
    assert _json(run_clifs(home, "search", "a shape", "--kind", "video", "--json")) == []


def test_usage_errors_exit_2(library):
    home, _, _ = library
    proc = run_clifs(home, "search")
    assert proc.returncode == 2 and "TEXT" in proc.stderr
    proc = run_clifs(home, "search", "--image", "/no/such/file.jpg")
    assert proc.returncode == 2 and "not found" in proc.stderr
    proc = run_clifs(home, "index", "/no/such/folder")
    assert proc.returncode == 2 and "not a folder" in proc.stderr


def test_rename_reuses_vectors_delete_removes_modify_reencodes(tmp_path):
    photos = tmp_path / "photos"
    singles = write_single_objects(photos)
    home = tmp_path / "home"
    first = _json(run_clifs(home, "index", str(photos), "--json", "--no-progress"))[0]
    assert first["encoded_images"] == len(singles)

    # Rename, delete and modify in one go.
    renamed = photos / "sub" / "renamed.png"
    renamed.parent.mkdir()
    shutil.move(singles["green square"], renamed)
    singles["red circle"].unlink()
    modified = singles["yellow cross"]
    scene = next(iter_scenes(HELD_OUT_SEED_BASE + 30, 1, 96, n_objects=1, colours=("purple",), shapes=("circle",)))
    scene.image.save(modified)

    second = _json(run_clifs(home, "index", str(photos), "--json", "--no-progress"))[0]
    assert second["moved"] == 1
    assert second["removed"] == 1
    assert second["indexed"] == 1  # only the modified file
    assert second["encoded_images"] == 1  # the move re-encoded nothing

    listed = {e["path"]: e for e in _json(run_clifs(home, "list", "--json"))}
    assert str(renamed) in listed and str(singles["green square"]) not in listed
    assert str(singles["red circle"]) not in listed
    assert len(listed) == len(singles) - 1
    hits = _json(run_clifs(home, "search", "a red circle", "--top", "30", "--json"))
    assert str(singles["red circle"]) not in {h["path"] for h in hits}
    assert str(renamed) in {h["path"] for h in hits}

    third = _json(run_clifs(home, "index", str(photos), "--json", "--no-progress"))[0]
    assert third["encoded_images"] == 0 and third["unchanged"] == len(singles) - 1


def test_identical_copies_are_two_files(tmp_path):
    photos = tmp_path / "photos"
    singles = write_single_objects(photos)
    home = tmp_path / "home"
    _json(run_clifs(home, "index", str(photos), "--json", "--no-progress"))
    shutil.copy(singles["red circle"], photos / "copy.png")
    summary = _json(run_clifs(home, "index", str(photos), "--json", "--no-progress"))[0]
    assert summary["moved"] == 0 and summary["indexed"] == 1
    paths = {e["path"] for e in _json(run_clifs(home, "list", "--json"))}
    assert {str(singles["red circle"]), str(photos / "copy.png")} <= paths


def test_missing_weights_is_a_clear_error_not_a_traceback(tmp_path):
    """Point the hub at an empty cache with the network off: exit 2 and say what to do."""
    proc = run_clifs(
        tmp_path / "home",
        "search",
        "a dog",
        "--model",
        "ViT-B-32:laion2b_s34b_b79k",
        HF_HOME=str(tmp_path / "empty-hf"),
        HF_HUB_OFFLINE="1",
        XDG_CACHE_HOME=str(tmp_path / "empty-cache"),
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "ViT-B-32" in proc.stderr and "not in the local cache" in proc.stderr
    assert "--model" in proc.stderr  # says how to supply weights


def test_unknown_model_and_missing_file_exit_2(tmp_path):
    proc = run_clifs(tmp_path / "home", "search", "x", "--model", "no-such-model")
    assert proc.returncode == 2 and "Unknown model" in proc.stderr
    proc = run_clifs(tmp_path / "home", "search", "x", "--model", f"ViT-B-32:{tmp_path}/missing.pt")
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr


def test_each_command_parses_with_only_its_own_module():
    """`clifs COMMAND` builds only COMMAND's parser (a cold search's start): the map it uses names every
    command each module registers, and a command's parser alone accepts what the whole one does."""
    import argparse
    import importlib

    import clifs.cli
    from clifs.cli.main import COMMANDS, build_parser

    cli = Path(clifs.cli.__file__).parent
    modules = [f"clifs.cli.{f.stem}" for f in sorted(cli.glob("*.py")) if "\ndef register(" in f.read_text()]
    registered = {}
    for name in modules:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(name).register(sub)
        registered.update(dict.fromkeys(sub.choices, name))
    assert registered == COMMANDS

    argv = ["-v", "search", "a red circle", "--top", "3", "--kind", "video"]
    alone, whole = build_parser(argv).parse_args(argv), build_parser().parse_args(argv)
    assert (alone.command, alone.text, alone.top, alone.kind, alone.verbose) == (
        "search",
        "a red circle",
        3,
        "video",
        True,
    )
    assert vars(alone) == vars(whole)
