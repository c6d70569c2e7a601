"""The live indexer on real folders: the real watchdog observer, SQLite, FAISS and the test model."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clifs.cli.main import main as clifs_main
from clifs.engine.library import Library
from indexer.lock import IndexerLock, LockHeld, holder
from indexer.service import IndexerService
from indexer.status import read_status_file
from tests.conftest import clifs_env, run_clifs
from tests.indexer_helpers import (
    disagreements,
    item_ids_by_path,
    media_on_disk,
    wait_agreement,
    wait_until,
    write_image,
)


def _library(home: Path, encoder) -> Library:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("batch_size = 8\ndecode_workers = 1\ntorch_threads = 1\n")
    return Library(home, encoder=encoder)


@pytest.fixture
def service_factory(clifs_home, test_encoder):
    """Start services on the test home; every one is stopped at the end, however the test ends."""
    started: list[IndexerService] = []

    def make(folders: list[Path], debounce: float = 0.3) -> IndexerService:
        service = IndexerService(_library(clifs_home, test_encoder), debounce_seconds=debounce)
        for folder in folders:
            service.add_folder(str(folder))
        service.start()
        started.append(service)
        return service

    yield make
    for service in started:
        service.stop(timeout=30)
        service.library.close()


def _write_slowly(path: Path, data: bytes, chunk: int, pause: float) -> None:
    """A copy in progress: the file grows for a while (its mtime and size keep changing)."""
    with open(path, "wb") as f:
        for start in range(0, len(data), chunk):
            f.write(data[start : start + chunk])
            f.flush()
            time.sleep(pause)


def test_watcher_converges_after_create_modify_rename_move_delete_and_a_slow_copy(
    tmp_path, service_factory, test_encoder
):
    photos = tmp_path / "photos"
    for i, rel in enumerate(["a.png", "b.png", "sub1/c.png", "sub1/d.png", "sub2/e.png"]):
        write_image(photos / rel, seed=i)
    service = service_factory([photos], debounce=1.0)
    library = service.library
    wait_agreement(library.settings.home, photos, test_encoder, timeout=60)
    ids = item_ids_by_path(library)
    encoded = test_encoder.images_encoded

    write_image(photos / "new.png", seed=10)
    write_image(photos / "a.png", seed=11)  # modified in place
    (photos / "b.png").rename(photos / "b2.png")
    (photos / "sub1" / "c.png").rename(photos / "sub2" / "c.png")
    (photos / "sub2" / "e.png").unlink()
    (photos / "sub1").rename(photos / "sub3")  # a folder renamed with d.png inside
    write_image(photos / ".hidden.png", seed=12)
    write_image(photos / "node_modules" / "x.png", seed=13)
    noise = np.random.default_rng(0).integers(0, 256, (900, 900, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG", compress_level=0)
    _write_slowly(photos / "sub2" / "big.png", buffer.getvalue(), chunk=1 << 17, pause=0.05)
    seconds = wait_agreement(library.settings.home, photos, test_encoder, timeout=60)
    print(f"watcher converged {seconds:.2f} s after the last change (debounce 1.0 s)")

    after = item_ids_by_path(library)
    for old, new in [("b.png", "b2.png"), ("sub1/c.png", "sub2/c.png"), ("sub1/d.png", "sub3/d.png")]:
        assert after[str(photos / new)] == ids[str(photos / old)], f"{old} -> {new} did not keep its vectors"
    assert after[str(photos / "a.png")] != ids[str(photos / "a.png")]  # re-embedded
    # Encoded: new.png, the modified a.png and big.png once (never while it was half-written).
    assert test_encoder.images_encoded - encoded == 3
    status = service.status()
    assert status.failed == 0 and status.recent_errors == []
    assert status.state == "watching" and status.queued == 0


def test_pause_resume_and_remove_folders(tmp_path, service_factory):
    a, b = tmp_path / "a", tmp_path / "b"
    write_image(a / "1.png", seed=1)
    write_image(b / "2.png", seed=2)
    service = service_factory([a, b])
    library = service.library
    wait_until(lambda: set(item_ids_by_path(library)) == media_on_disk(tmp_path), timeout=60)

    service.set_folder_paused(str(b), True)
    wait_until(lambda: service.status().state == "watching" and library.catalog.folders()[1].paused, timeout=10)
    write_image(b / "while-paused.png", seed=3)
    write_image(a / "sentinel.png", seed=4)  # once this is indexed, an event from b would have been too
    wait_until(lambda: str(a / "sentinel.png") in item_ids_by_path(library), timeout=30)
    assert service.wait_idle(timeout=30)
    assert str(b / "while-paused.png") not in item_ids_by_path(library)

    service.set_folder_paused(str(b), False)  # resuming reconciles what happened meanwhile
    wait_until(lambda: str(b / "while-paused.png") in item_ids_by_path(library), timeout=30)

    service.remove_folder(str(b))
    # Files leave first, then the folder row (two transactions): wait for both.
    wait_until(
        lambda: (
            set(item_ids_by_path(library)) == media_on_disk(a)
            and [f.path for f in library.catalog.folders()] == [str(a)]
        ),
        timeout=30,
    )
    assert not disagreements(library.settings.home, a, service.library.encoder)


def test_pause_holds_work_until_resume(tmp_path, service_factory):
    photos = tmp_path / "photos"
    write_image(photos / "first.png", seed=1)
    service = service_factory([photos], debounce=0.1)
    wait_until(lambda: service.wait_idle(0) and len(item_ids_by_path(service.library)) == 1, timeout=60)
    service.pause()
    wait_until(lambda: service.status().state == "paused", timeout=10)
    write_image(photos / "second.png", seed=2)
    wait_until(lambda: service.status().queued == 1, timeout=10)  # seen, held
    assert not service.wait_idle(0.5) and len(item_ids_by_path(service.library)) == 1
    service.resume()
    wait_until(lambda: len(item_ids_by_path(service.library)) == 2, timeout=30)
    assert service.status().paused is False


def test_status_and_folders_from_other_processes_while_the_service_runs(tmp_path, service_factory, capsys):
    photos, more = tmp_path / "photos", tmp_path / "more"
    write_image(photos / "1.png", seed=1)
    write_image(more / "2.png", seed=2)
    service = service_factory([photos])
    home = service.library.settings.home
    wait_until(lambda: service.wait_idle(0) and (read_status_file(home) or {}).get("state") == "watching", 60)

    proc = run_clifs(home, "status", "--json")
    assert proc.returncode == 0, proc.stderr
    [status] = json.loads(proc.stdout)
    assert status["running"] is True and status["pid"] == os.getpid()
    assert status["state"] == "watching" and status["catalog"]["files"] == 1
    assert status["folders"] == [{"path": str(photos), "paused": False}]

    # `clifs folders add` from outside: the running service notices the catalog's list and indexes it.
    assert clifs_main(["folders", "add", str(more)]) == 0
    wait_until(lambda: str(more / "2.png") in item_ids_by_path(service.library), timeout=30)
    assert clifs_main(["folders", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [f["path"] for f in listed] == sorted([str(photos), str(more)])
    assert clifs_main(["folders", "remove", str(more)]) == 0
    wait_until(lambda: set(item_ids_by_path(service.library)) == {str(photos / "1.png")}, timeout=30)
    assert clifs_main(["folders", "remove", str(tmp_path / "never-added")]) == 2


def test_second_indexer_exits_2_naming_the_holder(tmp_path, clifs_home):
    photos = tmp_path / "photos"
    write_image(photos / "1.png", seed=1)
    with IndexerLock(clifs_home):
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "clifs.cli.main", command, str(photos), "--no-progress"],
                env=clifs_env(clifs_home),
                stderr=subprocess.PIPE,
                text=True,
            )
            for command in ("watch", "index")
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 2, err
            assert f"pid {os.getpid()}" in err and "already running" in err
        assert holder(clifs_home) == os.getpid()
        with pytest.raises(LockHeld):
            IndexerLock(clifs_home).acquire()
    assert holder(clifs_home) is None


def test_a_dead_owners_lock_is_taken_over(clifs_home):
    clifs_home.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (clifs_home / "indexer.lock").write_text(f"{dead.pid}\n")
    assert holder(clifs_home) is None
    lock = IndexerLock(clifs_home)
    lock.acquire()
    try:
        assert (clifs_home / "indexer.lock").read_text().strip() == str(os.getpid())
    finally:
        lock.release()


def test_watch_without_folders_is_a_usage_error(clifs_home, capsys):
    assert clifs_main(["watch", "--no-progress"]) == 2
    assert "no folders to watch" in capsys.readouterr().err


def test_unplugged_folder_keeps_its_files(tmp_path, service_factory):
    photos = tmp_path / "drive" / "photos"
    write_image(photos / "1.png", seed=1)
    service = service_factory([photos])
    wait_until(lambda: len(item_ids_by_path(service.library)) == 1, timeout=60)
    service.stop(timeout=30)
    shutil.move(tmp_path / "drive", tmp_path / "unplugged")  # the drive is gone while clifs is closed
    again = IndexerService(service.library, debounce_seconds=0.3)
    again.start()
    try:
        wait_until(lambda: again.wait_idle(0), timeout=60)
        assert list(item_ids_by_path(service.library)) == [str(photos / "1.png")]
        assert any("folder not found" in reason for _, reason in again.status().recent_errors)
    finally:
        again.stop(timeout=30)
