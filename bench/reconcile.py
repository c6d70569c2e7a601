"""Start-up reconcile of 100k unchanged files: walk + diff against the catalog, no file opened, nothing encoded.

    python bench/reconcile.py [--files 100000] [--work /tmp/clifs-bench-reconcile] [--repeats 3]

The first run generates the files (100 folders of tiny files) and a catalog that
already holds every one of them with the same (size, mtime) and one random
vector each, in the test model's space; later runs reuse both. It then measures,
medians over repeats:
  * scan:    walk + catalog rows + diff (``Pipeline.scan``), the reconcile proper;
  * service: ``IndexerService`` start -> idle -> stop, without and with the watcher
             (adds the vector-cache load, the lock, status, and inotify watches).
Goal: the reconcile of 100k unchanged files in <= 5 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from clifs.engine.catalog import IndexedFile, NewItem
from clifs.engine.config import Settings
from clifs.engine.library import Library
from clifs.engine.models.testmodel import load as load_test_model
from indexer.pipeline import Pipeline
from indexer.service import IndexerService


def make_files(root: Path, count: int) -> list[Path]:
    paths = [root / f"d{i // 1000:03d}" / f"f{i:06d}.jpg" for i in range(count)]
    if not (root / "done").exists():
        for p in paths:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"\xff\xd8tiny")
        (root / "done").touch()
    return paths


def fill_catalog(library: Library, paths: list[Path]) -> None:
    """Rows for every file, as an earlier indexing run would have left them."""
    have = library.catalog.counts()["files"]
    if have == len(paths):
        return
    rng = np.random.default_rng(0)
    dim, model_id = library.encoder.dim, library.encoder.model_id
    for start in range(have, len(paths), 5000):
        batch = []
        for p in paths[start : start + 5000]:
            st = p.stat()
            v = rng.normal(size=dim).astype(np.float32)
            batch.append(
                IndexedFile(str(p), "image", st.st_size, st.st_mtime, "x", [NewItem(None, v / np.linalg.norm(v))])
            )
        library.catalog.commit_indexed(batch, model_id)
        print(f"  catalog: {start + len(batch)} files", flush=True)


def time_service(home: Path, encoder, watch: bool) -> float:
    """A fresh Library each time, as at program start (the saved vector cache is loaded, not rebuilt)."""
    start = time.perf_counter()
    library = Library(Settings.load(home), encoder=encoder)
    service = IndexerService(library, watch=watch)
    service.start()
    assert service.wait_idle(timeout=600)
    service.stop()
    elapsed = time.perf_counter() - start
    assert service.status().done == 0 and service.status().failed == 0, service.status()
    library.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/clifs-bench-reconcile"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    root, home = args.work / f"files-{args.files}", args.work / f"home-{args.files}"
    t = time.perf_counter()
    paths = make_files(root, args.files)
    library = Library(Settings.load(home), encoder=load_test_model(device="cpu"))
    fill_catalog(library, paths)
    library.catalog.add_folder(str(root))
    print(f"setup {time.perf_counter() - t:.1f} s; {args.files} files in {root}; os.cpu_count() {os.cpu_count()}")

    pipeline = Pipeline(library)
    scans = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        scan = pipeline.scan([str(root)])
        scans.append(time.perf_counter() - start)
        assert scan.unchanged == args.files and not scan.to_index and not scan.deleted
    print(f"scan (walk + catalog rows + diff): median {statistics.median(scans):.2f} s  (runs: {scans})")
    library.close()
    for watch in (False, True):
        runs = [time_service(home, library.encoder, watch) for _ in range(args.repeats)]
        print(f"service start -> idle -> stop, watch={watch}: median {statistics.median(runs):.2f} s  (runs: {runs})")


if __name__ == "__main__":
    main()
