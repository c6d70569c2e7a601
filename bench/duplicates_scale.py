"""How long does grouping near-duplicates take at 100k and 1M photos? Synthetic CLIP-sized vectors.

    .venv/bin/python bench/duplicates_scale.py [--sizes 100000,1000000] [--dim 512] [--threads 2]

Vectors are drawn around 2,000 cluster centres (cosine to their centre ~0.8, so neighbours are dense as
in a real library, not the near-orthogonal spread of isotropic noise); 1 % of them get a planted copy
(cosine ~0.97 to its original). Timed: ``clifs.engine.duplicates.candidate_pairs`` at the CLIP threshold
(0.95): exact flat range search up to 4,096 vectors, past that a FAISS IVF-Flat self-join (2*sqrt(n)
lists; each vector searches its own list, and a second one when it lies near a border), with its recall
of the planted pairs; then the union-find over the pairs. The perceptual-hash check costs one
64-bit comparison per candidate pair (stored at index time), so it is not a factor. Writes bench/out/duplicates_scale.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import faiss
import numpy as np

from clifs.engine.duplicates import EXACT_LIMIT, _groups_of, candidate_pairs

ROOT = Path(__file__).resolve().parents[1]


def library(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, set[tuple[int, int]]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2000, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = np.empty((n, dim), np.float32)
    spread = 0.75 / np.sqrt(dim)  # cosine to the centre ~0.8
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        noise = rng.normal(scale=spread, size=(m, dim)).astype(np.float32)
        x[start : start + m] = centres[rng.integers(0, len(centres), m)] + noise
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    copies = rng.choice(n // 2, size=n // 100, replace=False)
    planted = set()
    for i in copies.tolist():
        j = n - 1 - i
        noisy = x[i] + rng.normal(scale=0.24 / np.sqrt(dim), size=dim).astype(np.float32)  # cosine ~0.97
        x[j] = noisy / np.linalg.norm(noisy)
        planted.add((i, j))
    return x, planted


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--exact-too", action="store_true", help="also time the exact search at each size")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        x, planted = library(n, args.dim)
        runs = [("auto", None)] + ([("exact", n)] if args.exact_too else [])
        for _name, limit in runs:
            started = time.perf_counter()
            pairs = candidate_pairs(x, 0.95) if limit is None else candidate_pairs(x, 0.95, exact_limit=limit)
            search_s = time.perf_counter() - started
            started = time.perf_counter()
            groups = _groups_of(map(tuple, pairs.tolist()))
            group_s = time.perf_counter() - started
            found = {tuple(p) for p in pairs.tolist()}
            row = {
                "n": n,
                "index": "exact"
                if n <= (limit or EXACT_LIMIT)
                else "IVF-Flat, 2*sqrt(n) lists, own list + border list",
                "search_s": round(search_s, 2),
                "union_find_s": round(group_s, 3),
                "pairs": len(found),
                "planted": len(planted),
                "recall_of_planted": round(len(found & planted) / len(planted), 4),
                "groups": len(groups),
                "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
        del x
    out = ROOT / "bench" / "out" / "duplicates_scale.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
