"""`clifs index --cluster`: decode and embed on a Ray cluster (a local Ray with 2 CPUs here), commit here.

One Ray instance serves the module; the `clifs` subprocesses join it by its address, as a laptop joins
a cluster. The cluster path must give the in-process vectors, the same list and search output, skip
unchanged files, keep moved files' vectors, record bad files, and survive a worker and a driver dying.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clifs.cli.main import main
from clifs.engine.config import Settings
from clifs.engine.errors import UsageError
from clifs.engine.library import Library
from tests.conftest import clifs_env, run_clifs, write_single_objects
from tests.indexer_helpers import disagreements


@pytest.fixture(scope="module")
def ray_address():
    ray = pytest.importorskip("ray", reason="the cluster extra (pip install 'clifs[cluster]') is not installed")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def _pipeline(library: Library, **kwargs):
    from indexer.cluster import ActorPlan, ClusterPipeline, connect

    return ClusterPipeline(library, ActorPlan.for_resources(connect("auto")), **kwargs)


def _json(proc: subprocess.CompletedProcess):
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.slow  # two `clifs index` runs (one joining the cluster, whose actors start: ~4 s here)
def test_same_vectors_list_and_search_as_in_process(tmp_path, clifs_home, ray_address, monkeypatch, capsys):
    photos = tmp_path / "photos"
    singles = write_single_objects(photos)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    local = tmp_path / "local-home"
    cluster = tmp_path / "cluster-home"

    [here] = _json(run_clifs(local, "index", str(photos), "--json", "--no-progress", "--no-ocr"))
    [there] = _json(
        run_clifs(cluster, "index", str(photos), "--cluster", ray_address, "--json", "--no-progress", "--no-ocr")
    )
    assert there["indexed"] == here["indexed"] == len(singles)
    assert there["encoded_images"] == len(singles)  # on the workers: the driver's model encoded nothing
    assert there["failed"] == here["failed"] and len(there["failed"]) == 1  # the bad file, with its reason
    assert "broken.jpg" in there["failed"][0]["path"] and there["failed"][0]["error"]

    def output(home: Path, *args: str):
        monkeypatch.setenv("CLIFS_HOME", str(home))
        assert main(list(args)) == 0
        return json.loads(capsys.readouterr().out)

    for args in (["list", "--json"], ["list", "--failed", "--json"], ["search", "a red circle", "--json"]):
        here, there = output(local, *args), output(cluster, *args)
        for hit in here + there:  # catalog ids follow the order results arrived in, which Ray does not keep
            hit.pop("item_id", None)
        assert there == here, args

    a, b = Library(local, load_model=False), Library(cluster, load_model=False)
    try:
        for path in singles.values():
            u, v = a.embedding_for(path).astype(np.float32), b.embedding_for(path).astype(np.float32)
            assert float(u @ v / np.linalg.norm(u) / np.linalg.norm(v)) >= 0.9999
    finally:
        a.close()
        b.close()


@pytest.mark.slow  # two runs on the cluster, each starting its model actor (~4 s here)
def test_unchanged_files_are_skipped_and_moves_keep_their_vectors(tmp_path, clifs_home, ray_address):
    photos = tmp_path / "photos"
    singles = write_single_objects(photos)
    library = Library(clifs_home)
    try:
        first = _pipeline(library).index_folders([str(photos)])
        assert first.added == len(singles) and not first.failed

        again = _pipeline(library)
        report = again.index_folders([str(photos)])
        assert (report.added, report.unchanged, again.images_encoded) == (0, len(singles), 0)

        old = singles["red circle"]
        before = library.catalog.item_ids_of_path(str(old))
        moved = photos / "sub" / "renamed.png"
        moved.parent.mkdir()
        old.rename(moved)
        Image.new("RGB", (64, 64), "blue").save(photos / "new.png")
        third = _pipeline(library)
        report = third.index_folders([str(photos)])
        assert (report.moved, report.added, third.images_encoded) == (1, 1, 1)  # only the new file is embedded
        assert library.catalog.item_ids_of_path(str(moved)) == before
        assert library.search(text="a red circle", top=1)[0].path == str(moved)
    finally:
        library.close()


@pytest.mark.slow  # the killed actor is restarted: a second process start and model load
def test_a_worker_that_dies_mid_batch_is_retried_and_every_file_lands_once(tmp_path, clifs_home, ray_address):
    photos = tmp_path / "photos"
    singles = write_single_objects(photos)
    marker = tmp_path / "died-once"
    library = Library(clifs_home)
    try:
        report = _pipeline(library, batch_size=4, die_once_marker=marker).index_folders([str(photos)])
        assert marker.exists()  # an actor did exit its process on its first batch
        assert report.added == len(singles) and not report.failed
    finally:
        library.close()
    assert disagreements(clifs_home, photos, library.encoder) == []


def test_an_error_in_the_workers_code_stops_the_run_with_its_reason(tmp_path, clifs_home, ray_address):
    photos = tmp_path / "photos"
    write_single_objects(photos)
    library = Library(clifs_home)
    try:
        # The fault hook cannot create its marker: a worker raises (not a crash, so Ray does not retry it).
        pipeline = _pipeline(library, die_once_marker=tmp_path / "no-such-folder" / "marker")
        with pytest.raises(UsageError, match=r"the cluster's workers failed \(FileNotFoundError: .*no-such-folder"):
            pipeline.index_folders([str(photos)])
    finally:
        library.close()


def _committed(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM files").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


@pytest.mark.slow  # two `clifs index` runs joining the cluster, on pictures large enough to be killed mid-run
def test_a_killed_driver_resumes_on_rerun(tmp_path, clifs_home, ray_address):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(7)
    for i in range(32):  # noisy pictures: each takes a moment to hash and decode, so the run is long enough
        Image.fromarray(rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)).save(photos / f"{i:02}.png")
    args = ["index", str(photos), "--cluster", ray_address, "--batch-size", "2", "--no-progress", "--no-ocr"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "clifs.cli.main", *args],
        env=clifs_env(clifs_home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while _committed(clifs_home / "catalog.sqlite3") < 1 and proc.poll() is None:
        assert time.monotonic() < deadline, "the cluster run committed nothing"
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    kept = _committed(clifs_home / "catalog.sqlite3")
    assert 0 < kept < 32, f"{kept} files committed when the driver was killed"

    [rerun] = _json(run_clifs(clifs_home, *args, "--json"))
    assert rerun["unchanged"] == kept and rerun["indexed"] == 32 - kept
    library = Library(clifs_home, load_model=False)
    try:
        rows = library.catalog.list_files()
        assert len(rows) == 32 and all(f.status == "ok" and n == 1 for f, n in rows)
        assert len(library.vectors) == 32
    finally:
        library.close()


def test_no_ray_or_an_unreachable_cluster_is_one_clear_line(tmp_path):
    photos = tmp_path / "photos"
    write_single_objects(photos)
    home = tmp_path / "home"
    shadow = tmp_path / "no-ray"
    shadow.mkdir()
    (shadow / "ray.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    no_ray = run_clifs(
        home,
        "index",
        str(photos),
        "--cluster",
        "local",
        PYTHONPATH=os.pathsep.join([str(shadow), os.environ.get("PYTHONPATH", "")]),
    )
    unreachable = run_clifs(home, "index", str(photos), "--cluster", "127.0.0.1:1")
    for proc, words in (
        (no_ray, "pip install 'clifs[cluster]'"),
        (unreachable, "cannot reach the Ray cluster at 127.0.0.1:1"),
    ):
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_the_model_goes_one_actor_a_gpu_else_one_per_four_cpus_and_chunks_follow_the_model_batches():
    from indexer.cluster import ActorPlan, chunks
    from indexer.scan import DiskFile

    assert ActorPlan.for_resources({"CPU": 64.0, "GPU": 8.0}) == ActorPlan(8, 1.0, 8)  # 8 preprocessing threads
    assert ActorPlan.for_resources({"CPU": 2.0}) == ActorPlan(1, 0.0, 2)
    assert ActorPlan.for_resources({"CPU": 32.0}) == ActorPlan(8, 0.0, 4)
    assert ActorPlan.for_resources({"CPU": 32.0}, actors=3).actors == 3

    files = [DiskFile(f"/p/{i}", 1, 1.0, "video" if i == 5 else "image") for i in range(12)]
    cut = chunks(files, 4)
    assert [[int(f.path[3:]) for f in c] for c in cut] == [[0, 1, 2, 3], [4], [5], [6, 7, 8, 9], [10, 11]]


def test_an_actor_preprocessing_in_threads_gives_the_same_vectors_and_failures(tmp_path, clifs_home):
    """What a GPU actor does (preprocessing threads beside the model), checked here on the CPU runtime."""
    from indexer.cluster import Embedder, EmbedderConfig
    from indexer.pipeline import Embedded, Failed, read_media
    from indexer.scan import walk

    photos = tmp_path / "photos"
    write_single_objects(photos)
    (photos / "broken.png").write_bytes(b"not a picture")
    settings = Settings.load(clifs_home)
    library = Library(settings)
    model_id = library.model.model_id
    library.close()
    files = sorted(walk(str(photos), []), key=lambda f: f.path)
    outputs = []
    for threads in (1, 3):
        actor = Embedder(EmbedderConfig(settings, model_id, 8, preprocess_threads=threads))
        outputs.append(actor._embed([read_media(f, settings.max_image_pixels) for f in files]))
    one, three = outputs
    assert [type(r) for r in one] == [type(r) for r in three] and sum(isinstance(r, Failed) for r in one) == 1
    for a, b in zip(one, three):
        assert a.file == b.file
        if isinstance(a, Embedded):
            assert np.array_equal(np.stack(a.vectors), np.stack(b.vectors))
