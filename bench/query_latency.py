"""Warm text-query latency end to end, and the ANN index's recall, at 10k / 100k / 1M items.

    python bench/query_latency.py [--sizes 10000 100000 1000000] [--queries 50]

This process writes random ViT-B-32 weights to a file, loads them as `clifs`
would and exports the model's towers to ONNX into each size's CLIFS_HOME, as indexing
does (the text tower then runs on ONNX Runtime, int8 by default). Then, per size, a fresh process (like `clifs search` or a script using
``Library``) fills a real catalog (SQLite) with clustered synthetic 512-d vectors
and times ``Library.search(text=...)`` (tokenize, encode, FAISS search, re-score,
metadata fetch): p50/p95 over the queries after one warm-up. Then recall@10 of the
index the library picked at that size against exact search on the same vectors,
and that process's RSS while searching.
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
        conn.execute(Meta.__table__.update().where(Meta.key == "generation").values(value="1"))
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


def measure(home: Path, n: int, n_queries: int) -> None:
    """One size, in this process: fill, search, report. Runs in a child that has not imported torch."""
    rng = np.random.default_rng(n)
    library = Library(Settings.load(home))
    model_id = library.model.model_id
    t = time.perf_counter()
    centres = fill_catalog(library, n, model_id, rng)
    fill_s = time.perf_counter() - t
    t = time.perf_counter()
    kind = "IVF-SQ8" if library.vectors.is_ann else "exact"
    build_s = time.perf_counter() - t
    library.search(text="warm up", top=10)
    latencies = []
    for i in range(n_queries):
        query = f"{QUERIES[i % len(QUERIES)]} #{i}"  # distinct texts: no cache hits
        t = time.perf_counter()
        hits = library.search(text=query, top=10)
        latencies.append((time.perf_counter() - t) * 1000)
        assert len(hits) == 10
    rss_gib = current_rss_gib()
    torch_loaded = "torch" in sys.modules
    recall = recall_at_10(library, centres, rng)
    p50, p95 = statistics.median(latencies), float(np.percentile(latencies, 95))
    print(
        f"{n:>9,} items | index {kind:7} built in {build_s:5.1f} s (catalog filled in {fill_s:5.1f} s) | "
        f"query p50 {p50:6.1f} ms p95 {p95:6.1f} ms | recall@10 vs exact {recall:.3f} | "
        f"RSS while searching {rss_gib:.2f} GiB{' (torch imported)' if torch_loaded else ''}",
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
    parser.add_argument("--measure", type=Path, metavar="HOME", help=argparse.SUPPRESS)  # the child's side
    args = parser.parse_args()
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
            cmd = [sys.executable, __file__, "--measure", str(home), "--sizes", str(n), "--queries", str(args.queries)]
            subprocess.run(cmd, env=env, check=True)


if __name__ == "__main__":
    main()
