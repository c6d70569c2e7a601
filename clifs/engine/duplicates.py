"""Near-duplicate photos: copies of one picture (resized, recompressed, lightly cropped or blurred).

Two steps, neither O(n^2) in Python:

1. Candidates by embedding: a FAISS range search of every image vector against all of them (exact
   for small libraries, IVF past ``EXACT_LIMIT``), keeping pairs at cosine >= the model's threshold.
2. Confirmation by perceptual hashes (clifs.engine.image_hash; the whole picture and centred crops, so
   a cropped copy still matches): two different photos of a plain wall, or of one place, embed alike;
   their faint structure differs and the hashes say so.

Confirmed pairs join into groups (union-find). The groups are stored in the catalog so a search
shows one hit per group; new files join groups as they are indexed (``link_new_files``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from clifs.engine.catalog_reads import ImageFacts
from clifs.engine.image_hash import distance, is_signature

if TYPE_CHECKING:
    from clifs.engine.catalog import Catalog

log = logging.getLogger(__name__)

#: Up to this many vectors the range search is exact (one flat FAISS range search, BLAS-bound).
EXACT_LIMIT = 4096
#: Past it, IVF-Flat with about 2 * sqrt(n) lists: every vector searches the list it was put in, and a
#: vector that lies near a list's border (its second-nearest centroid within ``BORDER`` of the nearest)
#: also searches that second list, so copies split by a border are still found (bench/duplicates_scale.py).
BORDER = 0.02


@dataclass(frozen=True)
class Calibration:
    """When two photos are copies: cosine of their embeddings at least ``cosine`` AND perceptual
    hashes at most ``max_hash_distance`` bits apart (of 64)."""

    cosine: float
    max_hash_distance: int
    source: str  # how the numbers were chosen


#: Per model family (the model id's prefix), measured by bench/duplicates_calibration.py: resized, JPEG 35,
#: 8 % cropped, 6 % cut off one side, blurred and crop+resize+JPEG copies of 20 pictures, against 190
#: pairs of different pictures, plain walls and overlapping views of one place (bench/out/duplicates_calibration.json).
#: The hash limit is the model-independent part: copies lay within 12 bits, different photos 20 or more.
CALIBRATIONS: dict[str, Calibration] = {
    # the 64-px test model sees an 8 % crop of a shapes scene at cosine 0.77-0.99: 118/120 copies at 0.88
    "openclip:shapes-vit-tiny": Calibration(0.88, 14, "shapes-world scenes: 118/120 copies found, 0/197 false"),
    # copies at cosine >= 0.954 (blur is the lowest), different demo photos up to 0.981 (the hash separates them)
    "starter:": Calibration(0.92, 14, "assets/demo photos: 120/120 copies found, 0/197 false"),
    # CLIP (any open_clip model): the near-duplicate cosine the issue states; not measured here (no CLIP
    # weights on this offline machine), the hash limit as measured for the other two.
    "": Calibration(0.95, 14, "CLIP near-duplicate cosine ~0.95 (stated, not measured here); hash limit measured"),
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
    """(m, 2) row pairs i < j whose vectors' inner product is at least ``threshold``.

    Exact for up to ``exact_limit`` vectors; past that a FAISS IVF self-join: each vector is compared
    with the ~sqrt(n) others of its list (and of a second list near a border), not with all n.
    """
    import faiss

    n = len(vectors)
    if n < 2:
        return np.zeros((0, 2), np.int64)
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    faiss.normalize_L2(x)
    dim = x.shape[1]
    if n <= exact_limit:
        index = faiss.IndexFlatIP(dim)
        index.add(x)
        return _pairs(*index.range_search(x, threshold)[::2], np.arange(n))
    nlist = int(2 * np.sqrt(n))
    kmeans = faiss.Kmeans(dim, nlist, niter=8, seed=0, spherical=True, max_points_per_centroid=32)
    kmeans.train(x)
    quantizer = faiss.IndexFlatIP(dim)
    quantizer.add(kmeans.centroids)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.is_trained = True
    index.nprobe = 1
    near, lists = quantizer.search(x, 2)  # each vector's two nearest lists, once (not again per search)
    first, second = (np.ascontiguousarray(lists[:, i : i + 1]) for i in (0, 1))
    near_first, near_second = (np.ascontiguousarray(near[:, i : i + 1]) for i in (0, 1))
    index.add_core(n, faiss.swig_ptr(x), None, faiss.swig_ptr(np.ascontiguousarray(first[:, 0])))
    found = [_pairs(*index.range_search_preassigned(x, threshold, first, near_first)[::2], np.arange(n))]
    border = np.flatnonzero(near[:, 1] >= near[:, 0] - BORDER)
    if len(border):
        lims, _, ids = index.range_search_preassigned(x[border], threshold, second[border], near_second[border])
        found.append(_pairs(lims, ids, border))
    pairs = np.concatenate(found)
    return np.unique(pairs, axis=0) if len(pairs) else pairs


def _pairs(lims: np.ndarray, ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """A range search's results as (i, j) pairs with i < j, from query rows ``rows``."""
    queries = np.repeat(rows.astype(np.int64), np.diff(lims).astype(np.int64))
    ids = ids.astype(np.int64)
    keep = queries != ids
    a, b = queries[keep], ids[keep]
    return np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)


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
    hashes: Callable[[list[int]], dict[int, bytes | None]],
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
        if ha is not None and hb is not None and distance(ha, hb) <= calibration.max_hash_distance:
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

    def __call__(self, file_ids: list[int]) -> dict[int, bytes | None]:
        from clifs.engine.image_hash import perceptual_signature
        from clifs.engine.media import MediaError, open_image

        facts = self.catalog.image_facts(file_ids)
        out: dict[int, bytes | None] = {fid: f.phash if is_signature(f.phash) else None for fid, f in facts.items()}
        new: dict[int, bytes] = {}
        for fid, f in facts.items():
            if out[fid] is None:
                try:
                    new[fid] = out[fid] = perceptual_signature(open_image(f.path, self.max_pixels))
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
    new_files: dict[int, tuple[np.ndarray, bytes | None]],
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
    # IVF codes are approximate: re-check every near candidate against the stored vector. PQ codes
    # (past 10M vectors) err more than 8-bit ones; a wider slack only re-checks more rows.
    slack = {"IVF-PQ": 0.1, "IVF-SQ8": 0.03}.get(index.kind, 1e-3)
    near = sorted(
        {int(i) for i, s in zip(item_ids.ravel(), scores.ravel()) if i >= 0 and s >= calibration.cosine - slack}
    )
    if not near:
        return 0
    owners = catalog.file_ids_of_items(near)
    stored = dict(zip(near, catalog.vectors_of(np.asarray(near, np.int64), model_id, queries.shape[1])))
    hashes = PhashSource(catalog, max_pixels)
    known = {f: h for f, (_, h) in new_files.items() if is_signature(h)}
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
            if ha is not None and hb is not None and distance(ha, hb) <= calibration.max_hash_distance:
                pairs.add((min(fid, other), max(fid, other)))
    catalog.join_duplicates(sorted(pairs))
    return len(pairs)
