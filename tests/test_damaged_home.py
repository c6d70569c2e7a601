"""Damaged, foreign or unusable homes: one readable line and exit 2, never a traceback; reading
commands work on a read-only home; what the catalog lost is said, not silently shown as empty."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest

from clifs.engine.config import Settings
from clifs.engine.library import Library
from tests.conftest import TEST_MODEL, run_clifs, write_single_objects


def _json(proc) -> list:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _one_line_error(proc, *words: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("clifs: error: "), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def indexed_home(tmp_path) -> tuple[Path, Path, dict[str, Path]]:
    photos = tmp_path / "photos"
    singles = write_single_objects(photos)
    home = tmp_path / "home"
    assert _json(run_clifs(home, "index", str(photos), "--json", "--no-progress"))[0]["indexed"] == len(singles)
    return home, photos, singles


@pytest.mark.parametrize("damage", ["truncated", "random bytes"])
def test_a_damaged_catalog_is_one_line_and_exit_2(indexed_home, damage):
    home, _, _ = indexed_home
    catalog = home / "catalog.sqlite3"
    data = catalog.read_bytes()
    catalog.write_bytes(data[: len(data) // 3] if damage == "truncated" else np.random.default_rng(0).bytes(len(data)))
    for args in (["list"], ["search", "a red circle"], ["status"]):
        _one_line_error(run_clifs(home, *args), "damaged", "move it aside")


def test_a_newer_schema_is_one_line_and_exit_2(indexed_home):
    home, _, _ = indexed_home
    with sqlite3.connect(home / "catalog.sqlite3") as db:
        db.execute("UPDATE schema_version SET version = 99")
    _one_line_error(run_clifs(home, "list"), "schema version 99", "Upgrade clifs")


def test_a_home_that_is_a_file_is_one_line_and_exit_2(tmp_path):
    home = tmp_path / "home"
    home.write_text("not a folder")
    for args in (["list"], ["search", "x"], ["index", str(tmp_path)]):
        _one_line_error(run_clifs(home, *args), "is a file, not a folder")


def test_a_read_only_home_still_searches_and_lists(indexed_home, tmp_path):
    home, photos, singles = indexed_home
    _json(run_clifs(home, "search", "a red circle", "--json"))  # the text tower and vector file are saved
    view = tmp_path / "read-only-home"
    view.mkdir()
    if subprocess.run(["mount", "--bind", str(home), str(view)], capture_output=True).returncode != 0:
        pytest.skip("bind mounts are not permitted here")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True, capture_output=True)
        assert len(_json(run_clifs(view, "list", "--json"))) == len(singles)
        hits = _json(run_clifs(view, "search", "a red circle", "--top", "1", "--json"))
        assert hits[0]["path"] == str(singles["red circle"])
        _one_line_error(run_clifs(view, "index", str(photos)), "read-only")
    finally:
        subprocess.run(["umount", str(view)], capture_output=True)


def test_the_main_file_holds_every_commit_after_index_exits(indexed_home):
    """A clean exit checkpoints the WAL: deleting the -wal file afterwards loses nothing."""
    home, _, singles = indexed_home
    Path(home, "catalog.sqlite3-wal").unlink(missing_ok=True)
    assert len(_json(run_clifs(home, "list", "--json"))) == len(singles)


def test_a_catalog_behind_its_vector_file_is_said_plainly(indexed_home):
    home, _, _ = indexed_home
    for suffix in ("", "-wal", "-shm"):
        Path(home, "catalog.sqlite3" + suffix).unlink(missing_ok=True)  # a lost catalog, its vector file kept
    settings = Settings.load(home)
    settings.model = TEST_MODEL
    library = Library(settings, load_model=False)
    try:
        assert len(library.vectors) == 0
        assert library.warnings and "behind its vector file" in library.warnings[0]
    finally:
        library.close()


def test_a_vector_file_with_flipped_bytes_is_rebuilt_not_trusted(indexed_home):
    home, _, singles = indexed_home
    settings = Settings.load(home)
    settings.model = TEST_MODEL
    (vector_file,) = settings.vectors_dir.glob("*.faiss")
    data = bytearray(vector_file.read_bytes())
    data[-200:-100] = bytes(100)  # zero part of the stored vectors: it still loads, and would rank wrongly
    vector_file.write_bytes(bytes(data))
    library = Library(settings, load_model=False)
    try:
        hits = library.search(text="a red circle", top=1)
        assert hits[0].path == str(singles["red circle"])
        assert len(library.vectors) == len(singles)
    finally:
        library.close()
    assert vector_file.read_bytes() != bytes(data)  # rewritten from the catalog


def test_a_full_disk_is_one_line_and_the_next_run_finishes_the_job(tmp_path):
    photos = tmp_path / "photos"
    singles = write_single_objects(photos)
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        home = disk / "home"
        assert run_clifs(home, "list").returncode == 0  # the catalog exists; then the disk fills up
        ballast = disk / "ballast"
        try:
            with open(ballast, "wb", buffering=0) as out:
                while True:
                    out.write(b"\0" * 65536)
        except OSError:  # the disk is full
            pass
        _one_line_error(run_clifs(home, "index", str(photos)), "full")
        ballast.unlink()
        summary = _json(run_clifs(home, "index", str(photos), "--json", "--no-progress"))[0]
        assert summary["indexed"] + summary["unchanged"] == len(singles)
        assert len(_json(run_clifs(home, "list", "--json"))) == len(singles)
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_search_says_plainly_when_the_catalog_lost_commits(indexed_home):
    home, _, _ = indexed_home
    for suffix in ("", "-wal", "-shm"):
        Path(home, "catalog.sqlite3" + suffix).unlink(missing_ok=True)
    proc = run_clifs(home, "search", "a red circle")
    assert proc.returncode == 0, proc.stderr
    assert "behind its vector file" in proc.stderr and "nothing indexed yet" in proc.stderr
