"""kill -9 at random moments while the home's disk is nearly full and while files whose names are not
UTF-8 are being added; then, with space back, one more run: every file ends indexed exactly once."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clifs.engine.library import Library
from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes
from tests.conftest import clifs_env, run_clifs
from tests.test_crash_index import faiss_ids

TMPFS_BYTES = 4 << 20  # the catalog fits; the test model's 13 MB text-tower cache does not


def _committed(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM files").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_kill_minus_9_on_a_nearly_full_disk_with_undecodable_names(tmp_path, small_disk, test_encoder):
    photos = tmp_path / "photos"
    photos.mkdir()
    scenes = iter_scenes(HELD_OUT_SEED_BASE + 70, 60, 64)
    names = [os.fsencode(photos / f"{i:03d}") + (b"-\xff\xfe.png" if i % 4 == 0 else b".png") for i in range(60)]
    for name, scene in zip(names, scenes):
        scene.image.save(os.fsdecode(name))
    home = small_disk / "home"
    ballast = small_disk / "ballast"
    rng = random.Random(7)
    for round_ in range(4):
        free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
        ballast.write_bytes(b"\0" * max(0, free - rng.randrange(64 << 10, 512 << 10)))  # 64-512 KB left
        proc = subprocess.Popen(
            [sys.executable, "-m", "clifs.cli.main", "index", str(photos), "--batch-size", "4", "--no-progress"],
            env=clifs_env(home),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        target = _committed(home / "catalog.sqlite3") + rng.randrange(1, 12)
        deadline = time.monotonic() + 60
        while proc.poll() is None and _committed(home / "catalog.sqlite3") < target and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.0, 0.05))
        proc.kill()
        proc.wait()
        if round_ == 1:  # new undecodable names arrive between two killed runs
            for i, scene in enumerate(iter_scenes(HELD_OUT_SEED_BASE + 90, 4, 64)):
                name = os.fsencode(photos) + b"/late-%d-\xe9.png" % i
                scene.image.save(os.fsdecode(name))
                names.append(name)
    ballast.unlink()
    done = run_clifs(home, "index", str(photos), "--no-progress")
    assert done.returncode == 0, done.stderr

    library = Library(home, encoder=test_encoder)
    try:
        files = library.catalog.list_files()
        assert sorted(os.fsencode(f.path) for f, _ in files) == sorted(names)
        assert all(f.status == "ok" and n == 1 for f, n in files), [(f.path, f.error) for f, _ in files]
        item_ids = {i for f, _ in files for i in library.catalog.item_ids_of_path(f.path)}
        assert len(item_ids) == len(names)
        assert faiss_ids(library) == item_ids
    finally:
        library.close()
