"""Shared fixtures: a temp CLIFS_HOME, the trained test model, shapes-world folders, the `clifs` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from devkit.shapes import COLOURS, HELD_OUT_SEED_BASE, SHAPES, render_scene, scene_rng

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
torch.set_num_threads(1)

TEST_MODEL = "shapes-vit-tiny"


@pytest.fixture(scope="session", autouse=True)
def shared_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of exported models for every test home, so each model is exported once per run,
    not once per test. Tests of the export itself point CLIFS_MODEL_CACHE elsewhere (or unset it)."""
    cache = tmp_path_factory.mktemp("model-cache")
    previous = os.environ.get("CLIFS_MODEL_CACHE")
    os.environ["CLIFS_MODEL_CACHE"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("CLIFS_MODEL_CACHE", None)
    else:
        os.environ["CLIFS_MODEL_CACHE"] = previous


@pytest.fixture
def clifs_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("CLIFS_HOME", str(home))
    monkeypatch.setenv("CLIFS_MODEL", TEST_MODEL)
    return home


@pytest.fixture(scope="session")
def test_encoder():
    from clifs.engine.models.testmodel import load

    return load(device="cpu")


def write_single_objects(folder: Path, seed: int = HELD_OUT_SEED_BASE + 10, size: int = 96) -> dict[str, Path]:
    """One image per (colour, shape), named after it; returns {"red circle": path}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = scene_rng(seed)
    out = {}
    for colour in COLOURS:
        for shape in SHAPES:
            scene = render_scene(rng, size, n_objects=1, colours=(colour,), shapes=(shape,))
            path = folder / f"{colour}_{shape}.png"
            scene.image.save(path)
            out[f"{colour} {shape}"] = path
    return out


def clifs_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment for a `clifs` subprocess; an extra value of "" removes that variable."""
    env = dict(os.environ)
    env.update({"CLIFS_HOME": str(home), "CLIFS_MODEL": TEST_MODEL, "OMP_NUM_THREADS": "1"}, **extra)
    return {k: v for k, v in env.items() if v != ""}


def run_clifs(home: Path, *args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
    """Run the real `clifs` command in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "clifs.cli.main", *args],
        env=clifs_env(home, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
