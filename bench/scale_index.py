"""The vector index at scale: exact fp16, IVF-SQ8 (clifs past 200k), IVF-PQ in RAM and IVF-PQ with on-disk,
memory-mapped inverted lists, on the same synthetic vectors.

    python bench/scale_index.py [--n 1000000] [--queries 200] [--kinds exact sq8 pq ondisk] [--nlist N]

Clustered unit vectors of dim 512, as bench/query_latency.py makes them (cluster centres n/500 apart,
queries near a centre). Per index: the memory it holds in RAM (its serialised size; for the on-disk
one its RAM part, with the mapped file's size beside it), the time to train it (k-means for the
coarse quantizer, once, shared by the IVF indexes: its cost is given on the line of the first IVF),
the time to add the vectors, one-thread query latency p50/p95 (FAISS search plus the exact re-scoring
of the shortlist from float16 copies of the vectors, as clifs re-scores from the catalog: add ~30 us a
candidate for SQLite's row reads), and recall@10 against exact float32 search. Warm page cache: the
on-disk index's lists are in memory after its first queries; a cold disk adds a read per probed list.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

DIM = 512
CHUNK = 100_000
PQ_M = 64  # 64 sub-quantizers of 8 bits: 64 bytes a vector


def l2n(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_vectors(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(n, DIM) float16 clustered unit vectors (float16: what the catalog stores), and the centres."""
    centres = l2n(rng.normal(size=(max(16, n // 500), DIM)))
    out = np.empty((n, DIM), np.float16)
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        which = rng.integers(0, len(centres), m)
        out[start : start + m] = l2n(centres[which] + 0.6 * rng.normal(size=(m, DIM)) / np.sqrt(DIM) * 4)
    return out, centres


def chunks(x: np.ndarray):
    for start in range(0, len(x), CHUNK):
        yield start, np.ascontiguousarray(x[start : start + CHUNK], dtype=np.float32)


def exact_top10(x: np.ndarray, queries: np.ndarray) -> np.ndarray:
    best_s = np.full((len(queries), 10), -np.inf, np.float32)
    best_i = np.zeros((len(queries), 10), np.int64)
    for start, block in chunks(x):
        s = queries @ block.T
        top = np.argpartition(-s, 10, axis=1)[:, :10]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, top, 1)], 1)
        cand_i = np.concatenate([best_i, top + start], 1)
        keep = np.argsort(-cand_s, axis=1)[:, :10]
        best_s, best_i = np.take_along_axis(cand_s, keep, 1), np.take_along_axis(cand_i, keep, 1)
    return best_i


def timed_queries(index: faiss.Index, x: np.ndarray, queries: np.ndarray, shortlist: int | None):
    """(p50 ms, p95 ms, top-10 ids per query), one query at a time on one thread."""
    faiss.omp_set_num_threads(1)
    index.search(queries[:1], 10)  # warm-up
    times, found = [], []
    for q in queries:
        t = time.perf_counter()
        _, ids = index.search(q[None], shortlist or 10)
        ids = ids[0][ids[0] >= 0]
        if shortlist:
            scores = x[ids].astype(np.float32) @ q  # exact re-scoring of the shortlist
            ids = ids[np.argsort(-scores)[:10]]
        times.append((time.perf_counter() - t) * 1000)
        found.append(ids[:10])
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    return statistics.median(times), float(np.percentile(times, 95)), found


def recall(found: list[np.ndarray], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / 10 for f, t in zip(found, truth)]))


def add_precomputed(index: faiss.IndexIVF, x: np.ndarray, assign: np.ndarray) -> float:
    t = time.perf_counter()
    for start, block in chunks(x):
        ids = np.arange(start, start + len(block), dtype=np.int64)
        a = np.ascontiguousarray(assign[start : start + len(block)])
        index.add_core(len(block), faiss.swig_ptr(block), faiss.swig_ptr(ids), faiss.swig_ptr(a))
    return time.perf_counter() - t


def report(name: str, ram: int, disk: int, train_s: float, add_s: float, p50: float, p95: float, rec: float) -> None:
    disk_note = f" + {disk / 2**20:7.0f} MiB mapped" if disk else ""
    print(
        f"{name:28} RAM {ram / 2**20:7.0f} MiB{disk_note:22} | train {train_s:6.1f} s, add {add_s:6.1f} s | "
        f"p50 {p50:6.2f} ms, p95 {p95:6.2f} ms | recall@10 {rec:.3f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--shortlists", type=int, nargs="+", default=[64, 256], help="re-scored candidates (IVF-PQ)")
    parser.add_argument("--kinds", nargs="+", default=["exact", "sq8", "pq", "ondisk"], help="which indexes to build")
    parser.add_argument("--nlist", type=int, help="coarse lists (default 4 sqrt(n), as clifs picks)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    x, centres = make_vectors(args.n, rng)
    queries = l2n(
        centres[rng.integers(0, len(centres), args.queries)]
        + 0.3 * rng.normal(size=(args.queries, DIM)) / np.sqrt(DIM) * 4
    )
    truth = exact_top10(x, queries)
    print(
        f"{args.n:,} vectors of dim {DIM} made, exact top-10 of {args.queries} queries in {time.perf_counter() - t:.0f} s; {os.cpu_count()} CPUs",
        flush=True,
    )

    if "exact" in args.kinds:  # float16, as clifs below 200k vectors
        t = time.perf_counter()
        flat = faiss.IndexScalarQuantizer(DIM, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
        for _, block in chunks(x):
            flat.add(block)
        add_s = time.perf_counter() - t
        p50, p95, found = timed_queries(flat, x, queries, None)
        report("exact fp16", flat.sa_code_size() * args.n, 0, 0.0, add_s, p50, p95, recall(found, truth))
        del flat

    nlist = args.nlist or int(4 * np.sqrt(args.n))
    nprobe = max(16, nlist // 16)
    sample = np.ascontiguousarray(
        x[rng.choice(args.n, min(args.n, max(100_000, 39 * nlist)), replace=False)], np.float32
    )
    t = time.perf_counter()
    quantizer = faiss.IndexFlatIP(DIM)
    kmeans = faiss.Clustering(DIM, nlist)
    kmeans.spherical = True
    kmeans.train(sample, quantizer)
    coarse_s = time.perf_counter() - t
    t = time.perf_counter()
    assign = np.concatenate([quantizer.search(block, 1)[1][:, 0] for _, block in chunks(x)]).astype(np.int64)
    assign_s = time.perf_counter() - t
    print(
        f"coarse quantizer: {nlist} lists (nprobe {nprobe}), k-means on {len(sample):,} in {coarse_s:.0f} s; assigning the vectors {assign_s:.0f} s (in each IVF's add)",
        flush=True,
    )

    if "sq8" in args.kinds:
        sq8 = faiss.IndexIVFScalarQuantizer(
            quantizer, DIM, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        t = time.perf_counter()
        sq8.train(sample)
        train_s = coarse_s + time.perf_counter() - t
        add_s = assign_s + add_precomputed(sq8, x, assign)
        sq8.nprobe = nprobe
        p50, p95, found = timed_queries(sq8, x, queries, 64)
        report(
            "IVF-SQ8 + re-score 64",
            faiss.serialize_index(sq8).nbytes,
            0,
            train_s,
            add_s,
            p50,
            p95,
            recall(found, truth),
        )
        del sq8

    with tempfile.TemporaryDirectory(prefix="clifs-scale-") as tmp:
        pq = faiss.IndexIVFPQ(quantizer, DIM, nlist, PQ_M, 8, faiss.METRIC_INNER_PRODUCT)
        t = time.perf_counter()
        pq.train(sample)
        pq_train_s = time.perf_counter() - t
        empty = Path(tmp, "trained.index")
        faiss.write_index(pq, str(empty))
        pq_add_s = assign_s + add_precomputed(pq, x, assign)
        pq.nprobe = nprobe
        for shortlist in args.shortlists if "pq" in args.kinds else []:
            p50, p95, found = timed_queries(pq, x, queries, shortlist)
            report(
                f"IVF-PQ{PQ_M} RAM + re-score {shortlist}",
                faiss.serialize_index(pq).nbytes,
                0,
                coarse_s + pq_train_s,
                pq_add_s,
                p50,
                p95,
                recall(found, truth),
            )

        # the same lists moved to a file that is memory-mapped: RAM holds the quantizer and codebooks
        t = time.perf_counter()
        trained = faiss.read_index(str(empty))
        lists = faiss.OnDiskInvertedLists(nlist, pq.code_size, str(Path(tmp, "lists.ivfdata")))
        sources = faiss.InvertedListsPtrVector()
        sources.push_back(pq.invlists)
        trained.ntotal = lists.merge_from_multiple(sources.data(), sources.size(), False)
        trained.replace_invlists(lists, True)
        lists.this.disown()  # the index owns its lists now
        final = Path(tmp, "ondisk.index")
        faiss.write_index(trained, str(final))
        del trained, pq
        merge_s = time.perf_counter() - t
        ondisk = faiss.read_index(str(final))  # on-disk lists are memory-mapped from their file
        ondisk.nprobe = nprobe
        ram = final.stat().st_size  # the index file without its lists: quantizer, codebooks, list sizes
        disk = Path(tmp, "lists.ivfdata").stat().st_size
        for shortlist in args.shortlists:
            p50, p95, found = timed_queries(ondisk, x, queries, shortlist)
            report(
                f"IVF-PQ{PQ_M} on disk + re-score {shortlist}",
                ram,
                disk,
                coarse_s + pq_train_s,
                pq_add_s + merge_s,
                p50,
                p95,
                recall(found, truth),
            )
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GiB")


if __name__ == "__main__":
    main()
