"""Warm text-query latency end to end, and the ANN index's recall, at 10k / 100k / 1M items.

    python bench/query_latency.py [--sizes 10000 100000 1000000] [--queries 50]

This process writes random ViT-B-32 weights to a file, loads them as `clifs` would and
exports the model's towers to ONNX into each size's CLIFS_HOME, as indexing does (the text
tower then runs on ONNX Runtime, int8 by default). Then, per size, one child process fills a
real catalog (SQLite) with clustered synthetic 512-d vectors and builds and saves the vector
index, and a second, new one (like `clifs search`, the window, or a script using ``Library``)
times ``Library.search(text=...)`` (tokenize, encode, FAISS search, re-score, metadata
fetch): p50/p95 over the queries after one warm-up. Then recall@10 of the index the library
picked at that size against exact search on the same vectors, and that process's RSS while
searching (and its peak). Searching in the process that had just filled the catalog gave a
longer tail (1M: p95 36 ms against 24 ms) that no user's search process has.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
from sqlalchemy import insert

from clifs.engine.catalog import Embedding, File, Item, Meta
from clifs.engine.config import Settings
from clifs.engine.library import Library
from clifs.engine.models.numpy_ops import l2_normalise

DIM = 512
QUERIES = ["a dog on a beach", "a red car", "birthday cake with candles", "mountains at sunset", "a cat asleep"]


def fill_catalog(library: Library, n: int, model_id: str, rng: np.random.Generator, chunk: int = 50_000) -> np.ndarray:
    """n one-item image files with clustered unit vectors; returns the cluster centres."""
    centres = l2_normalise(rng.normal(size=(max(16, n // 500), DIM)))
    with library.catalog.engine.begin() as conn:
        for start in range(0, n, chunk):
            ids = range(start + 1, min(n, start + chunk) + 1)
            conn.execute(
                insert(File),
                [
                    {
                        "id": i,
                        "path": f"/bench/{i // 1000}/{i}.jpg",
                        "size": 1000,
                        "mtime": 0.0,
                        "kind": "image",
                        "status": "ok",
                    }
                    for i in ids
                ],
            )
            conn.execute(insert(Item), [{"id": i, "file_id": i} for i in ids])
            which = rng.integers(0, len(centres), size=len(ids))
            vecs = l2_normalise(centres[which] + 0.6 * rng.normal(size=(len(ids), DIM)) / np.sqrt(DIM) * 4).astype(
                np.float16
            )
            conn.execute(
                insert(Embedding),
                [
                    {"item_id": i, "model_id": model_id, "vector": v.tobytes(), "generation": 1}
                    for i, v in zip(ids, vecs)
                ],
            )
        conn.execute(Meta.update().where(Meta.c.key == "generation").values(value="1"))
    return centres


def recall_at_10(library: Library, centres: np.ndarray, rng: np.random.Generator, n_queries: int = 50) -> float:
    exact = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    for ids, vecs in library.catalog.iter_embeddings(library.model.model_id, DIM):
        exact.add_with_ids(vecs, ids)
    queries = l2_normalise(
        centres[rng.integers(0, len(centres), n_queries)] + 0.3 * rng.normal(size=(n_queries, DIM)) / np.sqrt(DIM) * 4
    )
    hits = []
    for q in queries:
        truth = set(exact.search(q[None].astype(np.float32), 10)[1][0].tolist())
        stored = lambda ids: library.catalog.vectors_of(ids, library.model.model_id, DIM)  # noqa: E731
        got = set(library.vectors.search(q, 10, stored=stored)[1].tolist())  # as Searcher does
        hits.append(len(truth & got) / 10)
    return float(np.mean(hits))


def current_rss_gib() -> float:
    """Resident memory now (not the lifetime peak, which includes model creation)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**30


def fill(home: Path, n: int) -> None:
    """Fill the catalog with ``n`` items and build and save the vector index (as indexing leaves them)."""
    library = Library(Settings.load(home))
    t = time.perf_counter()
    centres = fill_catalog(library, n, library.model.model_id, np.random.default_rng(n))
    fill_s = time.perf_counter() - t
    np.save(home / "bench-centres.npy", centres)
    t = time.perf_counter()
    library.search(text="build the index", top=10)  # builds the index from the catalog and saves it
    print(
        f"{n:>9,} items | catalog filled in {fill_s:5.1f} s, {library.vectors.kind} index built in "
        f"{time.perf_counter() - t:5.1f} s",
        flush=True,
    )
    library.close()


def peak_rss_gib() -> float:
    """This process's peak resident memory (VmHWM: ru_maxrss would carry over the parent's, which holds
    torch, from before the fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure(home: Path, n: int, n_queries: int) -> None:
    """One size, in a new process, as ``clifs search`` or the window finds the library an indexing run
    left: load, search, report. The process has not imported torch. The OS's cache is warmed first (the
    catalog and the vector file read once, as an indexing run leaves them): a cold disk cache made each
    query's catalog reads a disk's seeks (1M: p95 50 ms against 20)."""
    for path in [home / "catalog.sqlite3", *(home / "vectors").iterdir()]:
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass
    t = time.perf_counter()
    library = Library(Settings.load(home))
    library.search(text="warm up", top=10)
    first_s = time.perf_counter() - t
    kind = library.vectors.kind
    latencies = []
    for i in range(n_queries):
        query = f"{QUERIES[i % len(QUERIES)]} #{i}"  # distinct texts: no cache hits
        t = time.perf_counter()
        hits = library.search(text=query, top=10)
        latencies.append((time.perf_counter() - t) * 1000)
        assert len(hits) == 10
    rss_gib = current_rss_gib()
    peak_gib = peak_rss_gib()  # before the exact index recall builds
    torch_loaded = "torch" in sys.modules
    recall = recall_at_10(library, np.load(home / "bench-centres.npy"), np.random.default_rng(n + 1), 200)
    p50, p95 = statistics.median(latencies), float(np.percentile(latencies, 95))
    print(
        f"{n:>9,} items | {kind:7} | first search {first_s:4.1f} s (loads the index) | "
        f"query p50 {p50:6.1f} ms p95 {p95:6.1f} ms | recall@10 vs exact {recall:.3f} | "
        f"RSS while searching {rss_gib:.2f} GiB (peak {peak_gib:.2f}){' (torch imported)' if torch_loaded else ''}",
        flush=True,
    )
    library.close()


def prepare_model(folder: Path, arch: str) -> tuple[str, object]:
    """Random weights for ``arch`` in a file, loaded through clifs: (model spec, encoder)."""
    import open_clip
    from safetensors.torch import save_file

    from clifs.engine.models.openclip import load

    weights = folder / f"{arch}.safetensors"
    model = open_clip.create_model(arch)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    spec = f"{arch}:{weights}"
    return spec, load(spec, device="cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "int8"], help="the text tower's")
    parser.add_argument("--fill", type=Path, metavar="HOME", help=argparse.SUPPRESS)  # the children's sides
    parser.add_argument("--measure", type=Path, metavar="HOME", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fill:
        fill(args.fill, args.sizes[0])
        return
    if args.measure:
        measure(args.measure, args.sizes[0], args.queries)
        return
    import shutil

    from clifs.engine.models import model_cache

    with tempfile.TemporaryDirectory() as tmp:
        spec, encoder = prepare_model(Path(tmp), "ViT-B-32")
        exported = Path(tmp) / "cache"
        assert model_cache.store(exported, spec, encoder)  # as indexing does: the towers exported to ONNX
        for n in args.sizes:
            home = Path(tmp) / f"home-{n}"
            shutil.copytree(exported, Settings(home=home).cache_dir)
            (home / "config.toml").write_text(f'precision = "{args.precision}"\n')
            env = dict(os.environ, CLIFS_HOME=str(home), CLIFS_MODEL=spec)
            for step in ("--fill", "--measure"):
                cmd = [sys.executable, __file__, step, str(home), "--sizes", str(n), "--queries", str(args.queries)]
                subprocess.run(cmd, env=env, check=True)


if __name__ == "__main__":
    main()
