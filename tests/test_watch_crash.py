"""`clifs watch` killed with SIGKILL at random moments, and a searcher reading while the indexer writes.

The processes are real (each its own interpreter state, killed by the kernel), but
they are forked from a forkserver that has already imported torch and open_clip:
on a busy 2-core machine a fresh interpreter spends 5-15 s importing, which would
make twenty restarts take minutes; a forked one starts in about a second.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from clifs.engine.library import Library
from tests.conftest import TEST_MODEL
from tests.indexer_helpers import disagreements, item_ids_by_path, wait_agreement, wait_until, write_image

CONFIG = "batch_size = 8\ndecode_workers = 1\ntorch_threads = 1\n"


@pytest.fixture(scope="module")
def forkserver():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "open_clip", "clifs.cli.main", "clifs.engine.library", "indexer.service"])
    return ctx


@pytest.fixture
def spawn(forkserver):
    """Start a daemon process from the forkserver; any still alive at the end of the test is killed."""
    procs = []

    def start(target, *args: str):
        proc = forkserver.Process(target=target, args=args, daemon=True)
        proc.start()
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.is_alive():
            proc.kill()
            proc.join()


def _as_clifs(home: str) -> None:
    os.environ.update({"CLIFS_HOME": home, "CLIFS_MODEL": TEST_MODEL, "OMP_NUM_THREADS": "1"})


def run_watch(home: str, folder: str) -> None:
    """`clifs watch FOLDER` in this (forked) process."""
    _as_clifs(home)
    sys.stderr = open(os.path.join(home, f"watch-{os.getpid()}.log"), "w")  # closed when the process ends
    from clifs.cli.main import main

    sys.exit(main(["watch", folder, "--debounce", "0.2", "--no-progress"]))


def search_in_a_loop(home: str, stop_file: str, result_file: str) -> None:
    """Search until ``stop_file`` appears; record how many searches ran and every error seen."""
    _as_clifs(home)
    import torch

    torch.set_num_threads(1)
    library = Library(home)
    searches, errors = 0, []
    Path(result_file + ".ready").touch()
    while not os.path.exists(stop_file):
        try:
            library.search("a red circle", top=5)
            searches += 1
        except Exception as exc:  # the point: record any "database is locked" instead of dying
            errors.append(f"{type(exc).__name__}: {exc}")
    library.close()
    Path(result_file).write_text(json.dumps({"searches": searches, "errors": errors}))


class Folder:
    """Random file operations on a test folder, with fresh names only."""

    def __init__(self, root: Path, rng: random.Random):
        self.root = root
        self.rng = rng
        self.count = 0
        for sub in ("a", "b", "c"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*.png"))

    def _fresh(self) -> Path:
        self.count += 1
        parent = self.root / self.rng.choice(["", "a", "b", "c"])
        parent.mkdir(exist_ok=True)
        return parent / f"f{self.count:04d}.png"

    def random_op(self) -> None:
        files = self.files()
        op = self.rng.choice(
            ["add", "add", "move", "move", "delete", "modify", "copy", "rename-dir"] if files else ["add"]
        )
        if op == "add":
            write_image(self._fresh(), seed=self.rng.randrange(10**6))
        elif op == "move":
            self.rng.choice(files).rename(self._fresh())
        elif op == "delete":
            self.rng.choice(files).unlink()
        elif op == "modify":
            write_image(self.rng.choice(files), seed=self.rng.randrange(10**6))
        elif op == "copy":  # two identical files are two files
            shutil.copy2(self.rng.choice(files), self._fresh())
        else:
            subdirs = [d for d in self.root.iterdir() if d.is_dir()]
            old = self.rng.choice(subdirs)
            self.count += 1
            old.rename(self.root / f"d{self.count:04d}")


def _watcher_ready(home: Path, pid: int) -> bool:
    try:
        status = json.loads((home / "status.json").read_text())
    except (OSError, ValueError):
        return False
    return status.get("pid") == pid and status.get("state") == "watching" and status.get("queued") == 0


def test_sigkill_at_random_moments_then_restart_and_reconcile(tmp_path, spawn, test_encoder):
    seed = int(os.environ.get("CLIFS_CRASH_SEED", "20240611"))  # set it to replay or vary a run
    rng = random.Random(seed)
    home, root = tmp_path / "home", tmp_path / "photos"
    home.mkdir()
    (home / "config.toml").write_text(CONFIG)
    folder = Folder(root, rng)
    for _ in range(12):
        folder.random_op()
    kills = checks = 0
    started = time.monotonic()
    while kills < 20:
        proc = spawn(run_watch, str(home), str(root))
        if kills % 3 == 2:  # now and then, die during start-up, reconcile or the first batches
            time.sleep(rng.uniform(0.0, 1.5))
        else:
            wait_until(lambda p=proc: _watcher_ready(home, p.pid) or not p.is_alive(), timeout=120)
            assert proc.is_alive(), (home / f"watch-{proc.pid}.log").read_text()
            wait_agreement(home, root, test_encoder, timeout=60)
            checks += 1
            kill_at = time.monotonic() + rng.uniform(0.0, 1.2)
            while time.monotonic() < kill_at:  # change the folder under the running watcher
                folder.random_op()
                time.sleep(rng.uniform(0.0, 0.1))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        kills += 1
        for _ in range(rng.randrange(4)):  # and while it is down
            folder.random_op()

    proc = spawn(run_watch, str(home), str(root))
    wait_until(lambda: _watcher_ready(home, proc.pid), timeout=120)
    wait_agreement(home, root, test_encoder, timeout=60)
    os.kill(proc.pid, signal.SIGTERM)  # a clean stop this time
    proc.join(timeout=60)
    assert proc.exitcode == 0, (home / f"watch-{proc.pid}.log").read_text()
    assert not disagreements(home, root, test_encoder)
    print(
        f"seed {seed}: {kills} kills, {checks + 1} agreement checks, {len(folder.files())} files, {time.monotonic() - started:.1f} s"
    )


def test_search_while_the_service_writes(tmp_path, spawn, test_encoder):
    from indexer.service import IndexerService

    home, root = tmp_path / "home", tmp_path / "photos"
    home.mkdir()
    (home / "config.toml").write_text(CONFIG)
    for i in range(4):
        write_image(root / f"seed{i}.png", seed=i)
    service = IndexerService(Library(home, encoder=test_encoder), debounce_seconds=0.1)
    service.add_folder(str(root))
    service.start()
    stop_file, result_file = tmp_path / "stop", tmp_path / "result.json"
    reader = spawn(search_in_a_loop, str(home), str(stop_file), str(result_file))
    try:
        wait_until(lambda: Path(str(result_file) + ".ready").exists() or not reader.is_alive(), timeout=120)
        for burst in range(8):  # each burst is several write transactions while the reader searches
            for i in range(6):
                write_image(root / f"b{burst}-{i}.png", seed=100 + burst * 10 + i)
            if burst % 2:
                os.unlink(root / f"b{burst - 1}-0.png")
            wait_until(lambda: set(item_ids_by_path(service.library)) == {str(p) for p in root.glob("*.png")}, 60)
    finally:
        stop_file.touch()
        reader.join(timeout=60)
        service.stop(timeout=30)
    assert reader.exitcode == 0
    result = json.loads(result_file.read_text())
    print(f"{result['searches']} searches while the service indexed {len(list(root.glob('*.png')))} files")
    assert result["errors"] == []
    assert result["searches"] >= 10  # it was searching all along: ready before the first write, stopped after the last
    assert not disagreements(home, root, test_encoder)
