"""The vector index: a FAISS cache of one model's embeddings, rebuildable from the catalog.

Exact inner-product search for personal libraries (``IndexIDMap2`` over a flat
float16 index: the catalog stores float16, so this loses nothing, and a query
reads half the bytes of float32); past ``ANN_THRESHOLD`` vectors an IVF index
with 8-bit scalar quantisation (removal supported, a quarter of the memory)
chosen automatically, its candidates re-scored with the catalog's vectors; past
``PQ_THRESHOLD`` (where IVF-SQ8's 512 bytes a vector stop fitting a laptop's RAM)
IVF with product quantisation, 8 dimensions to a byte (64 bytes a vector at dim
512), a longer shortlist re-scored the same way (docs/scale.md).
Ids are catalog item ids. The file holds the catalog generation it reflects, in
the same file as the index, written atomically; a stale file is patched from the
catalog, a broken one rebuilt.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import faiss
import numpy as np

from clifs.engine.atomic_files import remove_leftovers, temp_path
from clifs.engine.catalog_reads import CatalogReads

log = logging.getLogger(__name__)

ANN_THRESHOLD = 200_000
#: How many candidates an ANN search re-scores with the catalog's vectors, at least (more when more
#: hits are wanted). 8-bit codes misorder close neighbours; the true top 10 lie well inside the
#: codes' top 64. Each candidate costs a SQLite row (about 30 us at 1M).
REFINE_CANDIDATES = 64
PQ_THRESHOLD = 10_000_000
#: PQ codes misorder far more than 8-bit ones: at 1M, 256 re-scored candidates gave recall@10 0.98
#: where 64 gave 0.76 (bench/scale_index.py, docs/scale.md); at ~30 us a SQLite row, ~8 ms a query.
PQ_REFINE_CANDIDATES = 256
PQ_DIMS_PER_BYTE = 8
_MAGIC = b"CLIFSVEC1"
_CHUNK = 1 << 22  # bytes read or CRC-checked at a time
#: Bump when the kind of index built changes: files of another format are rebuilt.
#: 3: the header carries a CRC-32 of the index bytes, so a flipped bit means a rebuild, not wrong ranks.
FORMAT = 3


def _file_name(model_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model_id)[:150] + ".faiss"


def _new_flat(dim: int) -> faiss.Index:
    return faiss.IndexIDMap2(faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT))


def _new_ivf(dim: int, train: np.ndarray, n_total: int) -> faiss.IndexIVF:
    nlist = int(4 * math.sqrt(n_total))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFScalarQuantizer(
        quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    index.train(train)
    index.nprobe = max(16, nlist // 16)
    return index


def _new_ivfpq(dim: int, train: np.ndarray, n_total: int) -> faiss.IndexIVF:
    nlist = int(4 * math.sqrt(n_total))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFPQ(quantizer, dim, nlist, dim // PQ_DIMS_PER_BYTE, 8, faiss.METRIC_INNER_PRODUCT)
    index.train(train)
    index.nprobe = max(16, nlist // 16)
    return index


def _uses_pq(n: int, dim: int) -> bool:
    return n > PQ_THRESHOLD and dim % PQ_DIMS_PER_BYTE == 0


@contextlib.contextmanager
def _one_faiss_thread() -> Iterator[None]:
    """Search one query on one OpenMP thread (this thread's setting only; index builds keep theirs).

    Splitting one query's scan over threads that compete with numpy's BLAS threads was slower:
    bench/query_latency.py at 100k, p50 52.8 -> 42.0 ms and p95 80 -> 54 ms with one thread.
    """
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


class VectorIndex:
    def __init__(self, directory: Path, model_id: str, dim: int):
        self.path = Path(directory) / _file_name(model_id)
        self.model_id = model_id
        self.dim = dim
        self.index: faiss.Index = _new_flat(dim)
        self.generation = 0
        #: Set by ``sync`` when the saved file had seen more catalog commits than the catalog now holds.
        self.ahead_of_catalog: str | None = None

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def is_ann(self) -> bool:
        return isinstance(self.index, faiss.IndexIVF)

    @property
    def kind(self) -> str:
        """ "exact", "IVF-SQ8" or "IVF-PQ"."""
        if isinstance(self.index, faiss.IndexIVFPQ):
            return "IVF-PQ"
        return "IVF-SQ8" if self.is_ann else "exact"

    @property
    def refine_candidates(self) -> int:
        """How many candidates an ANN search re-scores exactly, at least."""
        return PQ_REFINE_CANDIDATES if isinstance(self.index, faiss.IndexIVFPQ) else REFINE_CANDIDATES

    # -- keeping it in step with the catalog ---------------------------------------------------
    def sync(self, catalog: CatalogReads) -> str:
        """Load from disk and bring up to the catalog's generation. Returns what it did."""
        loaded = self._load()
        current = catalog.generation()
        if loaded and self.generation <= current:
            return "patched" if self.catch_up(catalog) else "loaded"
        if loaded:
            self.ahead_of_catalog = (
                f"the catalog {catalog.path} is behind its vector file ({len(self)} vectors after "
                f"{self.generation} commits; the catalog holds {current}): commits were lost (a deleted -wal "
                "file, a truncated or restored catalog). Run `clifs index` on your folders to index what is missing."
            )
            log.warning(self.ahead_of_catalog)
        self.rebuild(catalog)
        return "rebuilt"

    def catch_up(self, catalog: CatalogReads) -> bool:
        """Apply every catalog change made since this index's generation, by any process.

        The target generation is read before patching; anything committed meanwhile is
        applied again next time, which is harmless because a patch removes before it adds.
        """
        target = catalog.generation()
        if target == self.generation:
            return False
        if target < self.generation:  # the catalog went back (restored from a backup)
            self.rebuild(catalog)
            return True
        self._patch(catalog, self.generation)
        self.generation = target
        return True

    def rebuild(self, catalog: CatalogReads) -> None:
        """Build from the catalog, streaming chunks so a million vectors never sit in memory twice."""
        generation = catalog.generation()
        n = catalog.count_embeddings(self.model_id)
        if _uses_pq(n, self.dim):
            self.index = _new_ivfpq(self.dim, catalog.sample_embeddings(self.model_id, self.dim, 200_000), n)
        elif n > ANN_THRESHOLD:
            self.index = _new_ivf(self.dim, catalog.sample_embeddings(self.model_id, self.dim, 100_000), n)
        else:
            self.index = _new_flat(self.dim)
        for ids, vectors in catalog.iter_embeddings(self.model_id, self.dim):
            self.index.add_with_ids(vectors, ids)
        self.generation = generation
        log.info("vector index rebuilt: %d vectors (%s)", n, self.kind)

    def _patch(self, catalog: CatalogReads, since: int) -> None:
        self.remove(catalog.tombstones_since(since))
        for ids, vectors in catalog.iter_embeddings(self.model_id, self.dim, since_generation=since):
            self.remove(ids)  # a re-embedded item replaces its old vector
            self.index.add_with_ids(vectors, ids)

    # -- live updates ---------------------------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> None:
        if len(ids):
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    # -- search ---------------------------------------------------------------------------------
    def search(
        self,
        query: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        stored: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, ids) for one query; ``allowed`` restricts the ids searched (filters).

        With an ANN index, ``stored(ids)`` (the catalog's vectors for those ids, one row each)
        re-scores ``max(k, self.refine_candidates)`` candidates exactly: 8-bit codes alone misorder close
        neighbours (recall@10 0.92 at 1M in bench/query_latency.py).
        """
        if len(self) == 0 or k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        params = None
        if allowed is not None:
            if len(allowed) == 0:
                return np.zeros(0, np.float32), np.zeros(0, np.int64)
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            if self.is_ann:
                params = faiss.SearchParametersIVF(sel=selector, nprobe=self.index.nprobe)
            else:
                params = faiss.SearchParameters(sel=selector)
            k = min(k, len(allowed))
        k = min(k, len(self))
        refine = self.is_ann and stored is not None
        with _one_faiss_thread():
            scores, ids = self.index.search(
                q, min(len(self), max(k, self.refine_candidates)) if refine else k, params=params
            )
        keep = ids[0] >= 0
        scores, ids = scores[0][keep], ids[0][keep]
        if refine and len(ids):
            scores = stored(ids) @ q[0]
            order = np.argsort(-scores, kind="stable")[:k]
            scores, ids = scores[order], ids[order]
        return scores, ids

    # -- persistence ----------------------------------------------------------------------------
    def save(self) -> None:
        """Write header + index to a temp file, fsync, rename: a reader sees the old or the new file.

        The index streams into the file with its CRC computed on the way, and the header is written
        again at the end with the real CRC (padded to the room left for it). So saving never holds a
        second, serialised copy of the index: at 1M vectors that copy was 0.5 GiB."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A temp name of its own: a searching process may save its patched copy while the indexer saves.
        remove_leftovers(self.path)
        tmp = temp_path(self.path)
        with open(tmp, "wb") as f:
            room = len(self._header(0xFFFFFFFF))  # the longest CRC's header
            f.write(bytes(room))
            crc = 0

            def write(chunk: bytes) -> None:
                nonlocal crc
                crc = zlib.crc32(chunk, crc)
                f.write(chunk)

            faiss.write_index(self.index, faiss.PyCallbackIOWriter(write))
            f.seek(0)
            f.write(self._header(crc, room))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def _header(self, crc32: int, size: int = 0) -> bytes:
        """Magic, length and the JSON header, padded with spaces to ``size`` bytes in all."""
        header = {
            "model_id": self.model_id,
            "dim": self.dim,
            "generation": self.generation,
            "format": FORMAT,
            "crc32": crc32,
        }
        text = json.dumps(header).encode().ljust(size - len(_MAGIC) - 4)
        return _MAGIC + struct.pack("<I", len(text)) + text

    def _load(self) -> bool:
        """Read the saved index, checking its CRC first, in chunks: never the whole file in memory
        beside the index it holds (at 1M vectors, reading it whole made searching peak at 1.6 GiB)."""
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return False
        try:
            with f:
                if f.read(len(_MAGIC)) != _MAGIC:
                    raise ValueError("bad magic")
                (hlen,) = struct.unpack("<I", f.read(4))
                header = json.loads(f.read(hlen))
                if header["model_id"] != self.model_id or header["dim"] != self.dim:
                    raise ValueError("different model")
                if header.get("format", 1) != FORMAT:
                    log.info("vector index %s is of an older format; rebuilding from the catalog", self.path)
                    return False
                body_start = f.tell()
                crc = 0
                while chunk := f.read(_CHUNK):
                    crc = zlib.crc32(chunk, crc)
                if crc != header.get("crc32"):
                    raise ValueError("its checksum does not match: the file is damaged")
                f.seek(body_start)
                self.index = faiss.read_index(faiss.PyCallbackIOReader(f.read, _CHUNK))
            self.generation = int(header["generation"])
            return True
        except Exception as exc:  # any damage means: rebuild from the catalog
            log.warning("vector index %s unusable (%s); rebuilding from the catalog", self.path, exc)
            self.index = _new_flat(self.dim)
            return False
