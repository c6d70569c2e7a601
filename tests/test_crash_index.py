"""kill -9 the one-shot indexer mid-run, rerun, and check catalog, FAISS and folder agree."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from clifs.engine.library import Library
from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes
from tests.conftest import clifs_env, run_clifs


def _indexed_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM files").fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def _kill_when(home: Path, photos: Path, at_least: int) -> None:
    """Start `clifs index` and SIGKILL it once ``at_least`` files are committed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "clifs.cli.main", "index", str(photos), "--batch-size", "8", "--no-progress"],
        env=clifs_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while _indexed_count(home / "catalog.sqlite3") < at_least and proc.poll() is None:
        assert time.monotonic() < deadline, "indexer made no progress"
        time.sleep(0.02)
    proc.kill()  # SIGKILL; a no-op when the run already finished (poll() reaped it)
    proc.wait()


def test_kill_minus_9_at_several_points_then_rerun(tmp_path, test_encoder):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, scene in enumerate(iter_scenes(HELD_OUT_SEED_BASE + 50, 120, 64)):
        scene.image.save(photos / f"{i:03d}.png")
    home = tmp_path / "home"
    for at_least in (1, 50):
        _kill_when(home, photos, at_least)
    proc = run_clifs(home, "index", str(photos), "--no-progress")
    assert proc.returncode == 0, proc.stderr

    library = Library(home, encoder=test_encoder)
    files = library.catalog.list_files()
    assert sorted(Path(f.path).name for f, _ in files) == sorted(p.name for p in photos.iterdir())
    assert all(f.status == "ok" and n == 1 for f, n in files)
    item_ids = {i for f, _ in files for i in library.catalog.item_ids_of_path(f.path)}
    assert len(library.vectors) == len(item_ids) == 120
    ids = faiss_ids(library)
    assert ids == item_ids
    library.close()


def faiss_ids(library: Library) -> set[int]:
    import faiss

    return set(faiss.vector_to_array(library.vectors.index.id_map).tolist())
