"""Near-duplicate photos: copies of one picture (resized, recompressed, lightly cropped or blurred).

Two steps, neither O(n^2) in Python:

1. Candidates by embedding: a FAISS range search of every image vector against all of them (exact
   for small libraries, IVF past ``EXACT_LIMIT``), keeping pairs at cosine >= the model's threshold.
2. Confirmation by a 64-bit perceptual hash (clifs.engine.image_hash): two different photos of a plain
   wall, or of one place, embed alike; their faint structure differs and the hashes say so.

Confirmed pairs join into groups (union-find). The groups are stored in the catalog so a search
shows one hit per group; new files join groups as they are indexed (``link_new_files``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from clifs.engine.catalog import Catalog, ImageFacts
from clifs.engine.image_hash import hamming

log = logging.getLogger(__name__)

#: Up to this many vectors the range search is exact (flat); past it IVF-Flat with NPROBE lists.
EXACT_LIMIT = 20_000
#: Near-duplicates are so close that they share an IVF list or its nearest neighbours: few probes do.
NPROBE = 8
QUERY_CHUNK = 16_384


@dataclass(frozen=True)
class Calibration:
    """When two photos are copies: cosine of their embeddings at least ``cosine`` AND perceptual
    hashes at most ``max_hash_distance`` bits apart (of 64)."""

    cosine: float
    max_hash_distance: int
    source: str  # how the numbers were chosen


#: Per model family (the model id's prefix); bench/duplicates_calibration.py measures them.
CALIBRATIONS: dict[str, Calibration] = {
    "openclip:shapes-vit-tiny": Calibration(
        0.95, 14, "bench/duplicates_calibration.py on shapes-world scenes (copies vs other scenes)"
    ),
    "starter:": Calibration(0.95, 14, "bench/duplicates_calibration.py on assets/demo (copies vs other photos)"),
    # CLIP: the cosine commonly used for near-duplicates (issue #13); the hash limit as measured above.
    "": Calibration(0.95, 14, "CLIP near-duplicate cosine 0.95; hash limit from bench/duplicates_calibration.py"),
}


def calibration_for(model_id: str) -> Calibration:
    for prefix in sorted(CALIBRATIONS, key=len, reverse=True):
        if model_id.startswith(prefix):
            return CALIBRATIONS[prefix]
    return CALIBRATIONS[""]


def best_first(copies: Iterable[ImageFacts]) -> list[ImageFacts]:
    """The best copy first: the most pixels, then the most bytes, then the oldest (taken, else modified)."""

    def key(f: ImageFacts):
        pixels = (f.width or 0) * (f.height or 0)
        when = f.taken_at if f.taken_at is not None else f.mtime
        return (-pixels, -f.size, when, f.path)

    return sorted(copies, key=key)


# -- candidates -----------------------------------------------------------------------------------
def candidate_pairs(vectors: np.ndarray, threshold: float, *, exact_limit: int = EXACT_LIMIT) -> np.ndarray:
    """(m, 2) row pairs i < j whose vectors' inner product is at least ``threshold``."""
    import faiss

    n, dim = vectors.shape if vectors.ndim == 2 else (0, 0)
    if n < 2:
        return np.zeros((0, 2), np.int64)
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    faiss.normalize_L2(x)
    if n <= exact_limit:
        index = faiss.IndexFlatIP(dim)
    else:
        nlist = int(2 * math.sqrt(n))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(0).choice(n, size=min(n, 40 * nlist), replace=False)
        index.train(x[np.sort(sample)])
        index.nprobe = NPROBE
    index.add(x)
    found: list[np.ndarray] = []
    for start in range(0, n, QUERY_CHUNK):
        lims, _, ids = index.range_search(x[start : start + QUERY_CHUNK], threshold)
        rows = np.repeat(np.arange(start, start + len(lims) - 1, dtype=np.int64), np.diff(lims).astype(np.int64))
        ids = ids.astype(np.int64)
        keep = rows != ids
        found.append(np.stack([np.minimum(rows, ids)[keep], np.maximum(rows, ids)[keep]], axis=1))
    pairs = np.concatenate(found) if found else np.zeros((0, 2), np.int64)
    return np.unique(pairs, axis=0) if len(pairs) else pairs


def _groups_of(pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Connected components of the pairs (union-find), each sorted, in order of their first member."""
    parent: dict[int, int] = {}

    def find(a: int) -> int:
        parent.setdefault(a, a)
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for a in parent:
        groups.setdefault(find(a), []).append(a)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


def group_vectors(
    ids: np.ndarray,
    vectors: np.ndarray,
    hashes: Callable[[list[int]], dict[int, int | None]],
    calibration: Calibration,
) -> list[list[int]]:
    """Groups of ``ids`` whose vectors are near-identical and whose hashes (``hashes(ids)``) agree."""
    pairs = candidate_pairs(vectors, calibration.cosine)
    if not len(pairs):
        return []
    involved = sorted({int(ids[i]) for i in np.unique(pairs)})
    known = hashes(involved)
    confirmed = []
    for i, j in pairs.tolist():
        a, b = int(ids[i]), int(ids[j])
        ha, hb = known.get(a), known.get(b)
        if ha is not None and hb is not None and hamming(ha, hb) <= calibration.max_hash_distance:
            confirmed.append((a, b))
    return _groups_of(confirmed)


# -- over the catalog ---------------------------------------------------------------------------------
class PhashSource:
    """Perceptual hashes of catalog files: stored ones, else computed from the file now (files indexed
    before clifs kept them) and stored for next time when the catalog can be written."""

    def __init__(self, catalog: Catalog, max_pixels: int = 120_000_000):
        self.catalog = catalog
        self.max_pixels = max_pixels
        self.computed = 0

    def __call__(self, file_ids: list[int]) -> dict[int, int | None]:
        from clifs.engine.image_hash import perceptual_hash
        from clifs.engine.media import MediaError, open_image

        facts = self.catalog.image_facts(file_ids)
        out: dict[int, int | None] = {fid: f.phash for fid, f in facts.items()}
        new: dict[int, int] = {}
        for fid, f in facts.items():
            if f.phash is None:
                try:
                    new[fid] = out[fid] = perceptual_hash(open_image(f.path, self.max_pixels))
                except (MediaError, OSError) as exc:
                    log.info("no perceptual hash for %s: %s", f.path, exc)
        self.computed += len(new)
        if new and not self.catalog.read_only:
            self.catalog.set_phashes(new)
        return out


def find_duplicates(
    catalog: Catalog,
    model_id: str,
    dim: int,
    folder: str | None = None,
    *,
    store: bool = True,
    max_pixels: int = 120_000_000,
) -> list[list[ImageFacts]]:
    """Every near-duplicate group of indexed images (under ``folder``), each best copy first, the groups
    by their best copy's path. With ``store`` (and a writable catalog) the groups are kept for search."""
    file_ids, vectors = catalog.image_embeddings(model_id, dim, folder)
    calibration = calibration_for(model_id)
    groups = group_vectors(file_ids, vectors, PhashSource(catalog, max_pixels), calibration)
    if store and not catalog.read_only:
        catalog.set_duplicate_groups(groups, model_id, scope=folder)
    facts = catalog.image_facts(i for g in groups for i in g)
    out = [best_first(facts[i] for i in g if i in facts) for g in groups]
    return sorted((g for g in out if len(g) > 1), key=lambda g: g[0].path)


def link_new_files(
    catalog: Catalog,
    index,
    model_id: str,
    new_files: dict[int, tuple[np.ndarray, int | None]],
    *,
    k: int = 32,
    max_pixels: int = 120_000_000,
) -> int:
    """Join newly indexed images (file id -> (vector, perceptual hash)) to the stored groups of their
    copies, by a k-NN search of the vector index (``VectorIndex``); returns the pairs joined."""
    if not new_files or len(index) < 2:
        return 0
    calibration = calibration_for(model_id)
    file_ids = list(new_files)
    queries = np.stack([np.asarray(new_files[f][0], np.float32) for f in file_ids])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True).clip(1e-12)
    scores, item_ids = index.index.search(np.ascontiguousarray(queries), min(k, len(index)))
    # 8-bit IVF codes are approximate: re-check every near candidate against the stored vector.
    slack = 0.03 if index.is_ann else 1e-3
    near = sorted(
        {int(i) for i, s in zip(item_ids.ravel(), scores.ravel()) if i >= 0 and s >= calibration.cosine - slack}
    )
    if not near:
        return 0
    owners = catalog.file_ids_of_items(near)
    stored = dict(zip(near, catalog.vectors_of(np.asarray(near, np.int64), model_id, queries.shape[1])))
    hashes = PhashSource(catalog, max_pixels)
    known = {f: h for f, (_, h) in new_files.items() if h is not None}
    wanted = sorted({owners[i] for i in near if i in owners} - set(known))
    known.update({f: h for f, h in hashes(wanted).items() if h is not None})
    images = set(catalog.image_facts(owners.values()))
    pairs = set()
    for row, fid in enumerate(file_ids):
        for item in item_ids[row]:
            other = owners.get(int(item))
            if other is None or other == fid or other not in images or int(item) not in stored:
                continue
            if float(stored[int(item)] @ queries[row]) < calibration.cosine:
                continue
            ha, hb = known.get(fid), known.get(other)
            if ha is not None and hb is not None and hamming(ha, hb) <= calibration.max_hash_distance:
                pairs.add((min(fid, other), max(fid, other)))
    catalog.join_duplicates(sorted(pairs))
    return len(pairs)
