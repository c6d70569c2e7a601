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
    assert "ViT-B-32" in proc.stderr and proc.stderr.count("Using the offline starter model") == 1  # why, once

    proc = run_clifs(home, "search", "a cup of coffee", "--json", HF_HOME=str(tmp_path / "hf"), **OFFLINE)
    assert proc.returncode == 0, proc.stderr
    assert Path(json.loads(proc.stdout)[0]["path"]).name == "coffee.jpg"
    assert proc.stderr.count("Using the offline starter model") == 1


def test_make_run_main_job_headless(tmp_path):
    """What `make run` does on a fresh offline machine with no display: index the demo, print searches."""
    import subprocess
    import sys

    from tests.conftest import clifs_env

    env = clifs_env(tmp_path / "home", HF_HOME=str(tmp_path / "hf"), QT_QPA_PLATFORM="offscreen", **OFFLINE)
    proc = subprocess.run([sys.executable, "-m", "clifs.demo"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "offline starter model" in proc.stdout and "not CLIP" in proc.stdout
    assert (proc.stdout + proc.stderr).count("Using the offline starter model") == 1  # why, said once
    media = [p for p in DEMO.iterdir() if p.suffix.lower() in {".jpg", ".mp4", ".mpg"}]
    assert f"indexed {len(media)} new files" in proc.stdout and "0 failed" in proc.stdout
    cat_block = proc.stdout.split('"a cat"')[1].split('"')[0]
    assert "chelsea.jpg" in cat_block or "faust_github.jpg" in cat_block
