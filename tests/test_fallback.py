"""With no model named and no CLIP weights to be had, clifs falls back to the starter model and says so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import run_clifs

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo"
OFFLINE = {"CLIFS_MODEL": "", "HF_HUB_OFFLINE": "1"}


def test_default_model_falls_back_to_starter_and_says_why(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("chelsea.jpg", "coffee.jpg", "rocket.jpg", "motorcycle.jpg"):
        shutil.copy(DEMO / name, photos / name)
    home = tmp_path / "home"
    proc = run_clifs(home, "index", str(photos), "--json", "--no-progress", HF_HOME=str(tmp_path / "hf"), **OFFLINE)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)[0]
    assert "starter" in summary["model"] and "not CLIP" in summary["model"]
    assert "ViT-B-32" in proc.stderr and "starter" in proc.stderr  # the reason, on stderr

    proc = run_clifs(home, "search", "a cup of coffee", "--json", HF_HOME=str(tmp_path / "hf"), **OFFLINE)
    assert proc.returncode == 0, proc.stderr
    assert Path(json.loads(proc.stdout)[0]["path"]).name == "coffee.jpg"
