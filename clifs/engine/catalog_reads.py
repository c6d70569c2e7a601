"""The catalog's reads that a search makes, in SQLite's own SQL over the standard library's ``sqlite3``.

Importing SQLAlchemy costs ~0.3 s, a third of a cold ``clifs search`` (bench/cold_search.py), and a
search only reads. So the reads a search needs (the vector index's sync, the candidates' rows, the
filters, shots, duplicate groups and words in pictures) are written once here, in ``CatalogReads``,
over a plain DB-API connection. ``Catalog`` (clifs.engine.catalog: SQLAlchemy Core, the schema, every
write and every other read) inherits them and runs them on its own connection; ``CatalogReader``
runs them on a ``sqlite3`` connection of its own, and is what a ``Library`` reads through until
something needs to write. The table and column names are the ones ``clifs.engine.catalog`` declares.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clifs.engine.errors import CatalogError
from clifs.engine.paths import folder_prefix

log = logging.getLogger(__name__)

#: The schema clifs.engine.catalog creates and migrates to; a reader opens only a catalog at this version.
SCHEMA_VERSION = 5
#: SQLite's words for a file that is not (or no longer) a database it can read.
_DAMAGE = ("malformed", "not a database", "file is encrypted", "unable to open database file", "disk i/o error")
#: Below this much free space a "disk I/O error" is the disk being full, not the catalog being damaged.
_FULL_DISK_BYTES = 1 << 20
#: Ids bound in one ``IN (...)``: under SQLite's oldest limit of 999 variables.
_CHUNK = 900


@dataclass
class ItemInfo:
    item_id: int
    path: str
    kind: str
    timestamp: float | None
    size: int
    mtime: float
    width: int | None
    height: int | None
    taken: str | None = None
    taken_at: float | None = None
    taken_from: str | None = None
    camera: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    dup_group: int | None = None
    modality: str = "picture"


@dataclass
class ImageFacts:
    """What choosing the best copy of a near-duplicate group, and confirming it, needs to know."""

    file_id: int
    path: str
    size: int
    mtime: float
    width: int | None
    height: int | None
    taken_at: float | None
    phash: bytes | None  # a perceptual signature, or None (not computed yet)


_ITEM_INFO_SQL = (
    "SELECT items.id, files.path, files.kind, items.timestamp, files.size, files.mtime, files.width, files.height, "
    "files.taken, files.taken_at, files.taken_from, files.camera, files.latitude, files.longitude, files.dup_group, "
    "items.modality FROM items JOIN files ON files.id = items.file_id"
)
#: The columns of an ``ImageFacts``, in its fields' order (the path is column 1).
_IMAGE_FACTS = "files.id, files.path, files.size, files.mtime, files.width, files.height, files.taken_at, files.phash"


def encode_path(path: str) -> bytes:
    """Paths are stored as the OS's own bytes (see ``clifs.engine.catalog.FsPath``)."""
    return os.fsencode(path)


def decode_path(value: bytes | str) -> str:
    return os.fsdecode(value) if isinstance(value, bytes) else value


def path_range(folder: str) -> tuple[str, str]:
    """(low, high): a path lies inside ``folder`` when low <= path < high, a range the unique index serves."""
    prefix = folder_prefix(folder)
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def shot_prefix(path: str) -> str | None:
    """``folder/IMG_1.`` for ``folder/IMG_1.JPG``: the start of the range its shot's files share."""
    folder, name = os.path.split(path)
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, stem + ".") if stem and ext else None


def blob_to_vectors(blobs: list[bytes], dim: int) -> np.ndarray:
    return np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(-1, dim).astype(np.float32)


def _in_chunks(ids: list[int]) -> Iterator[tuple[list[int], str]]:
    """``ids`` in runs that fit one ``IN (...)``, each with its placeholders ("?,?,?")."""
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        yield chunk, ",".join("?" * len(chunk))


def connect_read_only(path: Path) -> sqlite3.Connection:
    """Without a ``-shm`` file SQLite cannot share a WAL on a read-only disk: read the main file
    as immutable then (a clean exit checkpoints everything into it)."""
    uri = path.resolve().as_uri()
    shm = path.with_name(path.name + "-shm")
    return sqlite3.connect(
        f"{uri}?mode=ro" if shm.exists() else f"{uri}?immutable=1", uri=True, timeout=30, check_same_thread=False
    )


def damage_error(path: Path, message: str) -> CatalogError | None:
    """The one-line CatalogError for SQLite's ``message`` when it means a damaged catalog or a full
    disk, else None (an error of another kind, raised as it is)."""
    if not any(word in message.lower() for word in _DAMAGE):
        return None
    try:
        free: int | None = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    if free is not None and free < _FULL_DISK_BYTES:  # SQLite cannot create its -wal: not damage
        return CatalogError(
            f"the disk holding the clifs home {path.parent} is full ({free // 1024} KB free): "
            "free some space and try again; the catalog is intact"
        )
    return CatalogError(
        f"the catalog {path} is damaged ({message.strip()}): move it aside "
        f"(mv {path} {path}.damaged) and run `clifs index` on your folders again"
    )


class CatalogReads:
    """The reads of a search, on whatever connection ``_reading`` yields (a ``sqlite3.Connection``)."""

    path: Path
    read_only: bool

    def _reading(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def generation(self) -> int:
        with self._reading() as c:
            return int(c.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    def counts(self) -> dict[str, int]:
        with self._reading() as c:
            files, failed, items = c.execute(
                "SELECT (SELECT count(*) FROM files WHERE status = 'ok'), "
                "(SELECT count(*) FROM files WHERE status = 'failed'), (SELECT count(*) FROM items)"
            ).fetchone()
        return {"files": files, "failed": failed, "items": items}

    # -- embeddings -----------------------------------------------------------------------------
    def iter_embeddings(
        self, model_id: str, dim: int, since_generation: int = -1, chunk: int = 50_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) chunks of the embeddings written after ``since_generation``."""
        last = -1
        with self._reading() as c:
            while True:
                rows = c.execute(
                    "SELECT item_id, vector FROM embeddings WHERE model_id = ? AND generation > ? AND item_id > ? "
                    "ORDER BY item_id LIMIT ?",
                    (model_id, since_generation, last, chunk),
                ).fetchall()
                if not rows:
                    return
                ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                yield ids, blob_to_vectors([r[1] for r in rows], dim)
                last = int(ids[-1])

    def count_embeddings(self, model_id: str) -> int:
        with self._reading() as c:
            return c.execute("SELECT count(*) FROM embeddings WHERE model_id = ?", (model_id,)).fetchone()[0]

    def sample_embeddings(self, model_id: str, dim: int, n: int) -> np.ndarray:
        """Up to ``n`` embeddings spread evenly over the ids (to train an ANN index; deterministic,
        so a rebuild of the same catalog gives the same index)."""
        stride = max(1, -(-self.count_embeddings(model_id) // n))
        with self._reading() as c:
            rows = c.execute(
                "SELECT vector FROM embeddings WHERE model_id = ? AND item_id % ? = 0 ORDER BY item_id LIMIT ?",
                (model_id, stride, n),
            ).fetchall()
        return blob_to_vectors([r[0] for r in rows], dim)

    def tombstones_since(self, generation: int) -> np.ndarray:
        with self._reading() as c:
            rows = c.execute("SELECT item_id FROM tombstones WHERE generation > ?", (generation,))
            return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def embedding_of(self, item_id: int, model_id: str) -> np.ndarray | None:
        with self._reading() as c:
            row = c.execute(
                "SELECT vector FROM embeddings WHERE item_id = ? AND model_id = ?", (int(item_id), model_id)
            ).fetchone()
        return None if row is None else np.frombuffer(row[0], dtype=np.float16).astype(np.float32)

    def vectors_of(self, item_ids: np.ndarray, model_id: str, dim: int) -> np.ndarray:
        """The stored vectors of ``item_ids``, one row each in that order (zeros for an item gone meanwhile)."""
        out = np.zeros((len(item_ids), dim), np.float32)
        ids = [int(i) for i in item_ids]
        row = {i: n for n, i in enumerate(ids)}
        with self._reading() as c:
            for chunk, marks in _in_chunks(ids):
                for item_id, blob in c.execute(
                    f"SELECT item_id, vector FROM embeddings WHERE model_id = ? AND item_id IN ({marks})",
                    (model_id, *chunk),
                ):
                    out[row[item_id]] = np.frombuffer(blob, dtype=np.float16)
        return out

    # -- items and their files ------------------------------------------------------------------
    def item_ids_of_path(self, path: str, modality: str | None = None) -> list[int]:
        """The items of a file, in order; only its pictures or only its windows of sound with ``modality``."""
        sql = "SELECT items.id FROM items JOIN files ON files.id = items.file_id WHERE files.path = ?"
        params: tuple = (encode_path(path),)
        if modality is not None:
            sql += " AND items.modality = ?"
            params += (modality,)
        with self._reading() as c:
            return [r[0] for r in c.execute(sql + " ORDER BY items.id", params)]

    def item_infos(self, item_ids: list[int]) -> dict[int, ItemInfo]:
        out: dict[int, ItemInfo] = {}
        ids = [int(i) for i in item_ids]
        with self._reading() as c:
            for chunk, marks in _in_chunks(ids):
                for r in c.execute(f"{_ITEM_INFO_SQL} WHERE items.id IN ({marks})", chunk):
                    out[r[0]] = ItemInfo(r[0], decode_path(r[1]), *r[2:])
        return out

    def item_ids_matching(
        self,
        folder: str | None = None,
        kind: str | None = None,
        modified_after: float | None = None,
        modified_before: float | None = None,
        taken_after: float | None = None,
        taken_before: float | None = None,
        camera: str | None = None,
    ) -> np.ndarray:
        """Ids of items that pass the search filters, for a FAISS id selector.

        ``kind`` "image" and "video" are files of that kind (a video's frames and its soundtrack);
        "audio" is every window of sound: audio files and the soundtracks of videos.
        ``taken_*`` compare the wall-clock seconds of ``files.taken_at``; ``camera`` is a
        case-insensitive piece of the camera's name ("iphone", "EOS 5D")."""
        where: list[str] = []
        params: list = []

        def add(condition: str, *values) -> None:
            where.append(condition)
            params.extend(values)

        if taken_after is not None:
            add("files.taken_at >= ?", taken_after)
        if taken_before is not None:
            add("files.taken_at < ?", taken_before)
        if camera:
            pattern = "%" + camera.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            add("lower(files.camera) LIKE lower(?) ESCAPE '\\'", pattern)
        if folder:
            low, high = path_range(folder)
            add("files.path >= ? AND files.path < ?", encode_path(low), encode_path(high))
        if kind == "audio":
            add("items.modality = 'sound'")
        elif kind:
            add("files.kind = ?", kind)
        if modified_after is not None:
            add("files.mtime >= ?", modified_after)
        if modified_before is not None:
            add("files.mtime <= ?", modified_before)
        sql = "SELECT items.id FROM items JOIN files ON files.id = items.file_id"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._reading() as c:
            return np.fromiter((r[0] for r in c.execute(sql, params)), dtype=np.int64)

    def same_shots(self, paths: Iterable[str]) -> dict[str, list[str]]:
        """Each path's other files of its shot: same folder, same name before the extension ("IMG_1.CR2"
        for "IMG_1.JPG"), by path. A range on the path index per shot (``folder/IMG_1.`` up to
        ``folder/IMG_1/``), all in one query: a UNION ALL, because SQLite scans the whole table for an OR
        of more than a few ranges."""
        out: dict[str, list[str]] = {}
        by_prefix: dict[str, list[str]] = {}
        for path in paths:
            out[path] = []
            prefix = shot_prefix(path)
            if prefix:
                by_prefix.setdefault(prefix, []).append(path)
        prefixes = list(by_prefix)
        one_range = "SELECT path FROM files WHERE path >= ? AND path < ? AND status = 'ok'"
        with self._reading() as c:
            for start in range(0, len(prefixes), 200):  # two bound values a range, under SQLite's 999
                lows = prefixes[start : start + 200]
                params = [encode_path(bound) for low in lows for bound in (low, low[:-1] + "/")]
                for (found,) in c.execute(" UNION ALL ".join([one_range] * len(lows)), params):
                    found = decode_path(found)
                    for path in by_prefix.get(shot_prefix(found) or "", []):
                        if found != path:
                            out[path].append(found)
        for shot in out.values():
            shot.sort()
        return out

    # -- near-duplicates ------------------------------------------------------------------------
    def image_facts(self, file_ids: Iterable[int]) -> dict[int, ImageFacts]:
        out: dict[int, ImageFacts] = {}
        ids = [int(i) for i in file_ids]
        with self._reading() as c:
            for chunk, marks in _in_chunks(ids):
                rows = c.execute(
                    f"SELECT {_IMAGE_FACTS} FROM files WHERE files.id IN ({marks}) "
                    "AND files.kind = 'image' AND files.status = 'ok'",
                    chunk,
                )
                out.update((r[0], ImageFacts(r[0], decode_path(r[1]), *r[2:])) for r in rows)
        return out

    def duplicate_members(self, groups: Iterable[int]) -> dict[int, list[ImageFacts]]:
        """The files of each stored group, by group."""
        keys = sorted({int(g) for g in groups})
        out: dict[int, list[ImageFacts]] = {}
        with self._reading() as c:
            for chunk, marks in _in_chunks(keys):
                rows = c.execute(
                    f"SELECT files.dup_group, {_IMAGE_FACTS} FROM files "
                    f"WHERE files.dup_group IN ({marks}) AND files.status = 'ok'",
                    chunk,
                )
                for r in rows:
                    out.setdefault(r[0], []).append(ImageFacts(r[1], decode_path(r[2]), *r[3:]))
        return out

    # -- words in pictures ----------------------------------------------------------------------
    def text_candidates(self, match: str | None, needles: list[str] = (), limit: int = 20_000) -> list[tuple[int, str]]:
        """(item id, normalised text) of the items whose text matches the FTS5 expression ``match``,
        or, without one, holds every one of ``needles`` (a scan: words too short for trigrams)."""
        if match:
            sql, params = "SELECT rowid, text FROM ocr_fts WHERE ocr_fts MATCH ? LIMIT ?", (match, limit)
        elif needles:
            where = " AND ".join("instr(text, ?) > 0" for _ in needles)
            sql, params = f"SELECT rowid, text FROM ocr_fts WHERE {where} LIMIT ?", (*needles, limit)
        else:
            return []
        with self._reading() as c:
            return [(int(r[0]), r[1]) for r in c.execute(sql, params)]

    def ocr_lines_of(self, item_ids: Iterable[int]) -> dict[int, list[tuple[str, float, list[list[int]]]]]:
        """The recognised lines of these items, in reading order, by item id (items without text absent)."""
        ids = [int(i) for i in item_ids]
        out: dict[int, list[tuple[str, float, list[list[int]]]]] = {}
        with self._reading() as c:
            for chunk, marks in _in_chunks(ids):
                rows = c.execute(
                    f"SELECT item_id, text, confidence, box FROM ocr_lines WHERE item_id IN ({marks}) ORDER BY id",
                    chunk,
                )
                for item_id, t, conf, box in rows:
                    out.setdefault(item_id, []).append((t, conf, json.loads(box)))
        return out

    # -- small facts ----------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with self._reading() as c:
            row = c.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def checkpoint(self) -> None:
        """Copy what the WAL holds into the main file (without waiting for readers), so the main file
        alone has every commit: a deleted ``-wal`` or a copied catalog then loses nothing."""
        if self.read_only:
            return
        try:
            with self._reading() as c:
                c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except (sqlite3.OperationalError, CatalogError) as exc:  # busy or a full disk: the WAL still holds it all
            log.info("WAL checkpoint of %s skipped: %s", self.path, exc)


class CatalogReader(CatalogReads):
    """The catalog opened for reading alone, without SQLAlchemy. Its ``sqlite3`` connections are pooled,
    as SQLAlchemy's are for the Catalog: a read takes an idle one or opens one, from any thread (the
    window searches on worker threads), and gives it back; ``close`` closes them all."""

    def __init__(self, path: Path, read_only: bool):
        self.path = path
        self.read_only = read_only
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(cls, path: Path) -> CatalogReader | None:
        """A reader of the catalog at ``path``, or None where only the full Catalog can open it: no
        catalog yet, one whose schema needs creating or upgrading, or one SQLite cannot read (the
        Catalog then says what is wrong in one line, as it always did)."""
        path = Path(path)
        if not path.is_file():
            return None
        reader = cls(path, read_only=not os.access(path.parent, os.W_OK))
        try:
            with reader._reading() as c:
                has_version = c.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
                ).fetchone()
                version = c.execute("SELECT max(version) FROM schema_version").fetchone()[0] if has_version else None
        except (sqlite3.Error, CatalogError):
            version = None
        if version != SCHEMA_VERSION:
            reader.close()
            return None
        return reader

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            conn = connect_read_only(self.path)
        else:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        try:
            if conn is None:
                conn = self._connect()
            yield conn
        except sqlite3.DatabaseError as exc:
            error = damage_error(self.path, str(exc))
            if error is None:
                raise
            raise error from None
        finally:
            if conn is not None:
                with self._lock:
                    if self._closed:
                        conn.close()
                    else:
                        self._idle.append(conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
