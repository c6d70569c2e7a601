"""The catalog: SQLite (via SQLAlchemy 2, WAL mode), the source of truth.

Folders, files, items (an image, or one sampled video frame with its timestamp)
and each item's embedding per model as a float16 blob. Every write transaction
bumps ``generation``; the FAISS cache records the generation it reflects and is
patched from ``Embedding.c.generation`` and ``Tombstone`` rows when it is behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import (
    Boolean,
    Column,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import DatabaseError, OperationalError, StatementError
from sqlalchemy.types import TypeDecorator

from clifs.engine.catalog_reads import (
    SCHEMA_VERSION,
    CatalogReads,
    blob_to_vectors,
    connect_read_only,
    damage_error,
    decode_path,
    encode_path,
    path_range,
)
from clifs.engine.errors import CatalogError
from clifs.engine.paths import is_under
from clifs.engine.photo_metadata import PhotoMeta

log = logging.getLogger(__name__)


class FsPath(TypeDecorator):
    """A file-system path stored as the OS's own bytes (``os.fsencode``), so every name the OS gives
    round-trips, names that are not valid UTF-8 (old zip archives, Samba shares) included. Byte order
    is UTF-8 text order, so sorting and prefix ranges behave as they did for text."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> bytes | None:
        return None if value is None else encode_path(value)

    def process_result_value(self, value: bytes | str | None, dialect: Dialect) -> str | None:
        return None if value is None else decode_path(value)


#: Every table of the catalog (SQLAlchemy Core: the ORM's import alone was ~0.15 s of every command's start).
metadata = MetaData()

SchemaVersion = Table("schema_version", metadata, Column("version", Integer, primary_key=True))

Meta = Table(
    "meta",
    metadata,
    Column("key", String, primary_key=True),
    Column("value", String, nullable=False),
)

Folder = Table(
    "folders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("path", FsPath, nullable=False, unique=True),
    Column("paused", Boolean, nullable=False, default=False),
    Column("added_at", Float, nullable=False, default=time.time),
)

File = Table(
    "files",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("path", FsPath, nullable=False, unique=True),
    Column("size", Integer, nullable=False),
    Column("mtime", Float, nullable=False),
    Column("content_hash", String, index=True),
    Column("kind", String, nullable=False),  # "image" | "video" | "audio"
    Column("status", String, nullable=False),  # "ok" | "failed"
    Column("error", String),
    Column("width", Integer),
    Column("height", Integer),
    Column("duration", Float),  # seconds, videos only
    Column("indexed_at", Float, nullable=False, default=time.time),
    # -- schema 3: what the file says about itself (clifs.engine.photo_metadata) -------------------
    #: 1 once the metadata was read; NULL for a file indexed before clifs read it (read on the next scan).
    Column("described", Integer),
    Column("taken", String),  # ISO 8601 wall clock, "+hh:mm" when known
    Column("taken_at", Float),  # that wall clock as seconds (UTC-read)
    Column("taken_from", String),  # "exif" | "raw" | "video" | "mtime"
    Column("camera_make", String),
    Column("camera_model", String),
    Column("camera", String),  # make and model as one name
    Column("latitude", Float),
    Column("longitude", Float),
    #: perceptual signature (clifs.engine.image_hash): 4 x 64-bit hashes, the whole picture and centred crops
    Column("phash", LargeBinary),
    Column("dup_group", Integer),  # near-duplicate group (a file id)
    # -- schema 5: sound (clifs.engine.audio) ----------------------------------------------------
    #: Why an indexed audio file or video has no sound items: "silent", or why its soundtrack could not be read.
    Column("sound_note", String),
    Index("ix_files_taken_at", "taken_at"),
    Index("ix_files_dup_group", "dup_group"),
)

Item = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("file_id", Integer, ForeignKey("files.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("timestamp", Float),  # seconds into a video or a sound
    #: "picture" (an image, a video frame) or "sound" (a window of an audio file or of a video's soundtrack)
    Column("modality", String, nullable=False, default="picture", server_default="picture"),
    # AUTOINCREMENT: an id is never reused, so a FAISS id always means one item.
    sqlite_autoincrement=True,
)

Embedding = Table(
    "embeddings",
    metadata,
    Column("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("model_id", String, primary_key=True),
    Column("vector", LargeBinary, nullable=False),  # float16, L2-normalised
    Column("generation", Integer, nullable=False),
    Index("ix_embeddings_model_generation", "model_id", "generation"),
)

#: Items removed at a generation, so a stale vector index can drop them without a rebuild.
Tombstone = Table(
    "tombstones",
    metadata,
    Column("item_id", Integer, primary_key=True),
    Column("generation", Integer, nullable=False, index=True),
)

# -- schema 4: words in pictures (clifs.engine.ocr) ------------------------------------------------
#: Whether a file's text was read, by which engine, and why not: no row means not yet read.
OcrFile = Table(
    "ocr_files",
    metadata,
    Column("file_id", Integer, ForeignKey("files.id", ondelete="CASCADE"), primary_key=True),
    Column("engine", String, nullable=False),  # clifs.engine.ocr.engine_version(): a newer one reads again
    Column("status", String, nullable=False),  # "ok" | "failed"
    Column("error", String),
    Column("lines", Integer, nullable=False, default=0),
    Column("seconds", Float, nullable=False, default=0.0),
    Column("read_at", Float, nullable=False, default=time.time),
)

#: One recognised line of an item (an image, or one kept video frame).
OcrLine = Table(
    "ocr_lines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("text", String, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("box", String, nullable=False),  # JSON [[x, y] x 4] in the file's pixels
)


#: The full-text index: one row per item with text (rowid = item id) holding its lines in
#: clifs.engine.ocr_text.normalise()d form (case and accents folded), split into trigrams so CJK
#: without spaces is found too. An item's row goes with the item (the trigger), as its lines do.
_OCR_SQL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS ocr_fts USING fts5(text, tokenize='trigram')",
    "CREATE TRIGGER IF NOT EXISTS ocr_fts_item_gone AFTER DELETE ON items "
    "BEGIN DELETE FROM ocr_fts WHERE rowid = old.id; END",
)


def _ddl(*tables) -> list[str]:
    from sqlalchemy.dialects import sqlite as sqlite_dialect
    from sqlalchemy.schema import CreateIndex, CreateTable

    dialect = sqlite_dialect.dialect()
    out = []
    for table in tables:
        out.append(str(CreateTable(table).compile(dialect=dialect)))
        out += [str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes]
    return out


# Migrations: MIGRATIONS[v] upgrades a catalog at version v to v + 1.
MIGRATIONS: dict[int, Iterable[str]] = {
    # Paths become the OS's bytes (FsPath); a column's declared type does not bind what SQLite stores.
    1: ["UPDATE files SET path = CAST(path AS BLOB)", "UPDATE folders SET path = CAST(path AS BLOB)"],
    # Photo metadata and near-duplicate groups: new columns, all NULL, so every file counts as not yet
    # described and its metadata is read on the next scan (no decoding, no re-embedding).
    2: [
        *(
            f"ALTER TABLE files ADD COLUMN {column}"
            for column in (
                "described INTEGER",
                "taken VARCHAR",
                "taken_at FLOAT",
                "taken_from VARCHAR",
                "camera_make VARCHAR",
                "camera_model VARCHAR",
                "camera VARCHAR",
                "latitude FLOAT",
                "longitude FLOAT",
                "phash BLOB",
                "dup_group INTEGER",
            )
        ),
        "CREATE INDEX IF NOT EXISTS ix_files_taken_at ON files (taken_at)",
        "CREATE INDEX IF NOT EXISTS ix_files_dup_group ON files (dup_group)",
    ],
    # Words in pictures: new tables, empty, so every file counts as not yet read (the OCR pass reads it).
    3: [*_ddl(OcrFile, OcrLine), *_OCR_SQL],
    # Sound: every item so far is a picture, and no file has a note about its sound (nothing re-embedded).
    4: [
        "ALTER TABLE items ADD COLUMN modality VARCHAR NOT NULL DEFAULT 'picture'",
        "ALTER TABLE files ADD COLUMN sound_note VARCHAR",
    ],
}


@dataclass
class FileState:
    """What the scanner compares with the disk."""

    id: int
    path: str
    size: int
    mtime: float
    content_hash: str | None
    status: str


@dataclass
class NewItem:
    timestamp: float | None
    vector: np.ndarray
    modality: str = "picture"  # or "sound"


@dataclass
class IndexedFile:
    """One decoded and embedded file, ready to commit."""

    path: str
    kind: str
    size: int
    mtime: float
    content_hash: str
    items: list[NewItem]
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    meta: PhotoMeta | None = None  # None: not read (the next scan reads it)
    sound_note: str | None = None  # why it has no sound items ("silent", a soundtrack that cannot be read)


@dataclass
class OcrTodo:
    """An indexed file whose text is still to be read, with its items (item id, video timestamp)."""

    file_id: int
    path: str
    kind: str
    items: list[tuple[int, float | None]]


@dataclass
class OcrRead:
    """What the OCR pass read from one file: lines per item id as (text, confidence, box), or why not."""

    file_id: int
    engine: str
    items: dict[int, list[tuple[str, float, list[list[int]]]]]
    error: str | None = None
    seconds: float = 0.0


@dataclass
class OcrState:
    """A file's OCR record (None where it was never read)."""

    engine: str
    status: str
    error: str | None
    lines: int
    seconds: float
    read_at: float


def _meta_columns(meta: PhotoMeta) -> dict:
    return {
        "described": 1,
        "taken": meta.taken,
        "taken_at": meta.taken_at,
        "taken_from": meta.taken_from,
        "camera_make": meta.camera_make,
        "camera_model": meta.camera_model,
        "camera": meta.camera,
        "latitude": meta.latitude,
        "longitude": meta.longitude,
        "phash": meta.phash,
    }


def _set_sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _under(column, folder: str):
    """``column`` holds a path inside ``folder``: a range on the bytes, which the unique index serves."""
    low, high = path_range(folder)
    return (column >= low) & (column < high)


def vector_to_blob(v: np.ndarray) -> bytes:
    return np.asarray(v, dtype=np.float16).tobytes()


class Catalog(CatalogReads):
    """The one owner of the catalog's tables: every query the indexer, the GUI and the CLI need
    (the reads of a search in ``CatalogReads``, in plain SQL; everything else in SQLAlchemy Core)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._prepare_home()
        #: True when the home cannot be written (a read-only mount): reading commands still work.
        self.read_only = not os.access(self.path.parent, os.W_OK)
        if self.read_only:
            if not self.path.is_file():
                raise CatalogError(f"the clifs home {self.path.parent} is read-only and holds no catalog yet")
            self.engine = create_engine("sqlite://", creator=lambda: connect_read_only(self.path))
        else:
            self.engine = create_engine(f"sqlite:///{self.path}", connect_args={"timeout": 30})
            event.listen(self.engine, "connect", _set_sqlite_pragmas)
        with self._readable():
            self._migrate()

    def _prepare_home(self) -> None:
        home = self.path.parent
        if home.exists() and not home.is_dir():
            raise CatalogError(f"the clifs home {home} is a file, not a folder: set CLIFS_HOME to a folder")
        if self.path.is_dir():
            raise CatalogError(f"the catalog {self.path} is a folder, not a database: move it aside")
        try:
            home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CatalogError(f"cannot create the clifs home {home}: {exc.strerror or exc}") from None

    @contextlib.contextmanager
    def _readable(self) -> Iterator[None]:
        """SQLite's "malformed" / "not a database" become one readable CatalogError."""
        try:
            yield
        except (DatabaseError, sqlite3.DatabaseError) as exc:
            error = damage_error(self.path, str(exc.orig if isinstance(exc, DatabaseError) else exc))
            if error is None:
                raise
            raise error from None

    # -- schema ---------------------------------------------------------------------------------
    def _migrate(self) -> None:
        with self.engine.begin() as conn:
            has_version = conn.execute(
                text("SELECT name FROM sqlite_master WHERE type='table' AND name='schema_version'")
            ).first()
            version = conn.execute(select(func.max(SchemaVersion.c.version))).scalar_one() if has_version else None
            if version is None:
                # A new catalog, or one whose creation a kill interrupted: SQLite's driver commits each
                # CREATE TABLE on its own, so some tables can exist without the version row. Both
                # steps below skip what already exists.
                metadata.create_all(conn)
                for statement in _OCR_SQL:
                    conn.execute(text(statement))
                conn.execute(SchemaVersion.insert().values(version=SCHEMA_VERSION))
                conn.execute(Meta.insert().prefix_with("OR IGNORE").values(key="generation", value="0"))
                return
            if version > SCHEMA_VERSION:
                raise CatalogError(
                    f"The catalog {self.path} has schema version {version}, newer than this clifs "
                    f"understands ({SCHEMA_VERSION}). Upgrade clifs."
                )
            if version < SCHEMA_VERSION and self.read_only:
                raise CatalogError(
                    f"the catalog {self.path} needs an upgrade (schema {version} -> {SCHEMA_VERSION}) "
                    "but its home is read-only: open it once where it can be written"
                )
            for v in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[v]:
                    conn.execute(text(statement))
                conn.execute(update(SchemaVersion).values(version=v + 1))

    @contextlib.contextmanager
    def session(self) -> Iterator[Connection]:
        """A connection to read with."""
        with self._readable(), self.engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The DB-API connection under a pooled one, for the reads ``CatalogReads`` writes in plain SQL."""
        with self.session() as s:
            yield s.connection.driver_connection

    @contextlib.contextmanager
    def write(self) -> Iterator[tuple[Connection, int]]:
        """One write transaction; yields (its connection, the generation this transaction creates)."""
        if self.read_only:
            raise CatalogError(f"the clifs home {self.path.parent} is read-only: searching works, indexing does not")
        with self._readable(), self.engine.begin() as s:
            # Write first, read second: the transaction takes the write lock at once, so two
            # writers queue on busy_timeout instead of failing to upgrade a read snapshot.
            s.execute(text("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"))
            gen = int(s.execute(select(Meta.c.value).where(Meta.c.key == "generation")).scalar_one())
            yield s, gen

    # -- folders --------------------------------------------------------------------------------
    def add_folder(self, path: str) -> None:
        with self.write() as (s, _):
            if not s.execute(select(Folder.c.id).where(Folder.c.path == path)).first():
                s.execute(insert(Folder).values(path=path))

    def set_folder_paused(self, path: str, paused: bool) -> bool:
        with self.write() as (s, _):
            return s.execute(update(Folder).where(Folder.c.path == path).values(paused=paused)).rowcount > 0

    def forget_folder(self, path: str) -> int:
        """Take ``path`` off the folder list and its files out of the catalog; returns the files removed.

        Folders may nest (``~/Pictures`` and ``~/Pictures/2024``): files another listed folder
        still covers stay. Files go first, then the row, so an interrupted removal is simply done again.
        """
        others = [f.path for f in self.folders() if f.path != path]
        gone = [p for p in self.paths_under(path) if not any(is_under(p, o) for o in others)]
        removed = self.delete_files(gone)
        with self.write() as (s, _):
            s.execute(delete(Folder).where(Folder.c.path == path))
        return removed

    def folders(self) -> list[Row]:
        """The listed folders (``path``, ``paused``, ``added_at``), by path."""
        with self.session() as s:
            return list(s.execute(select(Folder).order_by(Folder.c.path)))

    # -- files ----------------------------------------------------------------------------------
    def paths_under(self, folder: str) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(File.c.path).where(_under(File.c.path, folder))))

    def file_states(self, paths: list[str]) -> dict[str, FileState]:
        """The catalog rows of these paths (those it has), by path."""
        out: dict[str, FileState] = {}
        with self.session() as s:
            for start in range(0, len(paths), 500):
                rows = s.execute(
                    select(File.c.id, File.c.path, File.c.size, File.c.mtime, File.c.content_hash, File.c.status).where(
                        File.c.path.in_(paths[start : start + 500])
                    )
                )
                out.update((r.path, FileState(*r)) for r in rows)
        return out

    def file_states_under(self, folder: str) -> dict[str, FileState]:
        with self.session() as s:
            rows = s.execute(
                select(File.c.id, File.c.path, File.c.size, File.c.mtime, File.c.content_hash, File.c.status).where(
                    _under(File.c.path, folder)
                )
            )
            return {r.path: FileState(r.id, r.path, r.size, r.mtime, r.content_hash, r.status) for r in rows}

    def commit_indexed(self, files: list[IndexedFile], model_id: str) -> list[list[int]]:
        """Insert (or replace) files with their items and embeddings in ONE transaction.

        Returns the new item ids per file, in order. When the batch cannot be stored for a reason
        of one file's own (not a full disk, not a lock), the files are committed one by one and the
        one that fails is recorded as failed with the reason, so it never takes its batch down.
        """
        try:
            return self._commit_files(files, model_id)
        except (OperationalError, CatalogError):
            raise  # the disk, a lock or the home: nothing one file did
        except (StatementError, ValueError, UnicodeError) as exc:
            if len(files) == 1:
                f = files[0]
                log.warning("cannot store %r in the catalog: %s", f.path, exc)
                self.record_failure(f.path, f.kind, f.size, f.mtime, f"could not be stored in the catalog: {exc}")
                return [[]]
            return [ids for f in files for ids in self.commit_indexed([f], model_id)]

    def _commit_files(self, files: list[IndexedFile], model_id: str) -> list[list[int]]:
        new_ids: list[list[int]] = []
        with self.write() as (s, gen):
            self._delete_paths(s, [f.path for f in files], gen)
            for f in files:
                values = dict(
                    path=f.path,
                    size=f.size,
                    mtime=f.mtime,
                    content_hash=f.content_hash,
                    kind=f.kind,
                    status="ok",
                    width=f.width,
                    height=f.height,
                    duration=f.duration,
                    sound_note=f.sound_note,
                    **(_meta_columns(f.meta) if f.meta is not None else {}),
                )
                file_id = s.execute(insert(File).values(**values)).inserted_primary_key[0]
                item_ids: list[int] = []
                if f.items:
                    item_ids = list(
                        s.scalars(
                            insert(Item).returning(Item.c.id, sort_by_parameter_order=True),
                            [
                                {"file_id": file_id, "timestamp": it.timestamp, "modality": it.modality}
                                for it in f.items
                            ],
                        )
                    )
                    s.execute(
                        insert(Embedding),
                        [
                            {"item_id": i, "model_id": model_id, "vector": vector_to_blob(it.vector), "generation": gen}
                            for i, it in zip(item_ids, f.items)
                        ],
                    )
                new_ids.append(item_ids)
        return new_ids

    def record_failure(self, path: str, kind: str, size: int, mtime: float, error: str) -> None:
        with self.write() as (s, gen):
            self._delete_paths(s, [path], gen)
            s.execute(
                insert(File).values(
                    path=path, size=size, mtime=mtime, content_hash=None, kind=kind, status="failed", error=error
                )
            )

    def move_file(self, old_path: str, new_path: str, mtime: float) -> None:
        """A rename: the row (and so its items and vectors) follows the file."""
        with self.write() as (s, gen):
            self._delete_paths(s, [new_path], gen)
            s.execute(update(File).where(File.c.path == old_path).values(path=new_path, mtime=mtime))

    def delete_files(self, paths: list[str]) -> int:
        if not paths:
            return 0
        with self.write() as (s, gen):
            return self._delete_paths(s, paths, gen)

    @staticmethod
    def _delete_paths(s: Connection, paths: list[str], gen: int) -> int:
        removed = 0
        for start in range(0, len(paths), 500):
            chunk = paths[start : start + 500]
            file_ids = list(s.scalars(select(File.c.id).where(File.c.path.in_(chunk))))
            if not file_ids:
                continue
            item_ids = list(s.scalars(select(Item.c.id).where(Item.c.file_id.in_(file_ids))))
            for i in range(0, len(item_ids), 500):
                s.execute(
                    Tombstone.insert().prefix_with("OR REPLACE"),
                    [{"item_id": iid, "generation": gen} for iid in item_ids[i : i + 500]],
                )
            s.execute(delete(File).where(File.c.id.in_(file_ids)))
            removed += len(file_ids)
        return removed

    def files_with_hash(self, content_hash: str) -> list[str]:
        with self.session() as s:
            return list(
                s.scalars(select(File.c.path).where(File.c.content_hash == content_hash, File.c.status == "ok"))
            )

    def list_files(self, failed_only: bool = False) -> list[tuple[Row, int]]:
        """(file's row, number of embedded items) for every file, by path."""
        with self.session() as s:
            q = (
                select(File, func.count(Item.c.id))
                .outerjoin(Item, Item.c.file_id == File.c.id)
                .group_by(File.c.id)
                .order_by(File.c.path)
            )
            if failed_only:
                q = q.where(File.c.status == "failed")
            return [(row, row[-1]) for row in s.execute(q)]

    def sound_counts(self) -> dict[int, int]:
        """Windows of sound per file id (files with none are left out)."""
        with self.session() as s:
            rows = s.execute(
                select(Item.c.file_id, func.count(Item.c.id)).where(Item.c.modality == "sound").group_by(Item.c.file_id)
            )
            return {file_id: n for file_id, n in rows}

    # -- embeddings -----------------------------------------------------------------------------
    def missing_embeddings(self, model_id: str) -> list[str]:
        """Paths of indexed files some of whose items have no vector for ``model_id`` (after a model switch)."""
        with self.session() as s:
            have = select(Embedding.c.item_id).where(Embedding.c.model_id == model_id)
            return list(
                s.scalars(
                    select(File.c.path)
                    .join(Item, Item.c.file_id == File.c.id)
                    .where(File.c.status == "ok", Item.c.id.not_in(have))
                    .distinct()
                )
            )

    # -- photo metadata (schema 3) ---------------------------------------------------------------
    def undescribed_under(self, folder: str) -> list[tuple[str, str, float]]:
        """(path, kind, mtime) of indexed files under ``folder`` whose metadata was never read."""
        with self.session() as s:
            rows = s.execute(
                select(File.c.path, File.c.kind, File.c.mtime).where(
                    _under(File.c.path, folder), File.c.status == "ok", File.c.described.is_(None)
                )
            )
            return [(r.path, r.kind, r.mtime) for r in rows]

    def describe(self, metas: list[tuple[str, PhotoMeta]]) -> None:
        """Store what files say about themselves (dates, camera, position) in one transaction."""
        if not metas:
            return
        with self.write() as (s, _):
            for path, meta in metas:
                values = _meta_columns(meta)
                if meta.phash is None:
                    values.pop("phash")  # keep a hash already computed
                s.execute(update(File).where(File.c.path == path).values(**values))

    def cameras(self) -> list[tuple[str, int]]:
        """(camera name, number of files) of the cameras the catalog knows, most used first."""
        with self.session() as s:
            n = func.count(File.c.id)
            rows = s.execute(
                select(File.c.camera, n).where(File.c.camera.is_not(None)).group_by(File.c.camera).order_by(n.desc())
            )
            return [(r[0], r[1]) for r in rows]

    # -- near-duplicates (schema 3) -------------------------------------------------------------
    def image_embeddings(
        self, model_id: str, dim: int, folder: str | None = None, chunk: int = 50_000
    ) -> tuple[np.ndarray, np.ndarray]:
        """(file ids, vectors) of every indexed image with a vector for ``model_id`` (an image has one item)."""
        file_ids: list[np.ndarray] = []
        vectors: list[np.ndarray] = []
        last = -1
        with self.session() as s:
            while True:
                q = (
                    select(Item.c.id, Item.c.file_id, Embedding.c.vector)
                    .join(Embedding, Embedding.c.item_id == Item.c.id)
                    .join(File, File.c.id == Item.c.file_id)
                    .where(Embedding.c.model_id == model_id, File.c.kind == "image", Item.c.id > last)
                    .order_by(Item.c.id)
                    .limit(chunk)
                )
                if folder:
                    q = q.where(_under(File.c.path, folder))
                rows = s.execute(q).all()
                if not rows:
                    break
                file_ids.append(np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows)))
                vectors.append(blob_to_vectors([r[2] for r in rows], dim))
                last = int(rows[-1][0])
        if not file_ids:
            return np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
        return np.concatenate(file_ids), np.concatenate(vectors)

    def file_ids_of_items(self, item_ids: Iterable[int]) -> dict[int, int]:
        ids = [int(i) for i in item_ids]
        out: dict[int, int] = {}
        with self.session() as s:
            for start in range(0, len(ids), 900):
                out.update(
                    s.execute(select(Item.c.id, Item.c.file_id).where(Item.c.id.in_(ids[start : start + 900]))).all()
                )
        return out

    def set_phashes(self, hashes: dict[int, bytes]) -> None:
        """Perceptual signatures computed later (files indexed before clifs kept them), by file id."""
        if not hashes or self.read_only:
            return
        with self.write() as (s, _):
            for file_id, value in hashes.items():
                s.execute(update(File).where(File.c.id == file_id).values(phash=value))

    def set_duplicate_groups(self, groups: list[list[int]], model_id: str, scope: str | None = None) -> None:
        """Replace the stored near-duplicate groups (lists of file ids); ``scope`` None: the whole catalog.

        A group's key is a number of its own (never a file id: SQLite may give a removed file's id to a
        new file, which must not inherit a group)."""
        with self.write() as (s, _):
            clear = update(File).where(File.c.dup_group.is_not(None))
            if scope:
                clear = clear.where(_under(File.c.path, scope))
            s.execute(clear.values(dup_group=None))
            key = (s.execute(select(func.max(File.c.dup_group))).scalar_one() or 0) + 1
            for members in groups:
                for start in range(0, len(members), 900):
                    s.execute(update(File).where(File.c.id.in_(members[start : start + 900])).values(dup_group=key))
                key += 1
            if scope is None:
                self._set_meta(s, "duplicates_model", model_id)

    def join_duplicates(self, pairs: list[tuple[int, int]]) -> None:
        """Put each pair of file ids (a new file, a copy found for it) into one group, merging groups."""
        if not pairs:
            return
        with self.write() as (s, _):
            for a, b in pairs:
                groups = dict(s.execute(select(File.c.id, File.c.dup_group).where(File.c.id.in_([a, b]))).all())
                if a not in groups or b not in groups:
                    continue  # one was removed meanwhile
                keys = {g for g in groups.values() if g is not None}
                if keys:
                    key = min(keys)
                else:
                    key = (s.execute(select(func.max(File.c.dup_group))).scalar_one() or 0) + 1
                s.execute(update(File).where(File.c.id.in_([a, b])).values(dup_group=key))
                others = [k for k in keys if k != key]
                if others:
                    s.execute(update(File).where(File.c.dup_group.in_(others)).values(dup_group=key))

    # -- words in pictures (schema 4) -------------------------------------------------------------
    def _ocr_todo_query(self, engine: str, folder: str | None):
        done = select(OcrFile.c.file_id).where(OcrFile.c.engine == engine)
        q = select(File.c.id, File.c.path, File.c.kind).where(
            File.c.status == "ok", File.c.kind != "audio", File.c.id.not_in(done)
        )
        return q.where(_under(File.c.path, folder)) if folder else q

    def ocr_todo(self, engine: str, folder: str | None = None, limit: int = 32, after: int = 0) -> list[OcrTodo]:
        """Indexed files (under ``folder``) that ``engine`` has not read yet, oldest first, after file id
        ``after``; a file another engine read counts as not read."""
        with self.session() as s:
            rows = s.execute(
                self._ocr_todo_query(engine, folder).where(File.c.id > after).order_by(File.c.id).limit(limit)
            ).all()
            todo = {r.id: OcrTodo(r.id, r.path, r.kind, []) for r in rows}
            if todo:
                for item_id, file_id, ts in s.execute(
                    select(Item.c.id, Item.c.file_id, Item.c.timestamp)
                    .where(Item.c.file_id.in_(list(todo)), Item.c.modality == "picture")
                    .order_by(Item.c.id)
                ):
                    todo[file_id].items.append((item_id, ts))
            return list(todo.values())

    def ocr_todo_count(self, engine: str, folder: str | None = None) -> int:
        with self.session() as s:
            return s.execute(
                select(func.count()).select_from(self._ocr_todo_query(engine, folder).subquery())
            ).scalar_one()

    def commit_ocr(self, reads: list[OcrRead]) -> int:
        """Store what was read in ONE transaction (replacing an older engine's reading); a file
        removed or re-indexed meanwhile is skipped (its new row is read afresh). Returns files stored."""
        import json

        from clifs.engine.ocr_text import normalise

        stored = 0
        with self.write() as (s, _):
            for r in reads:
                own = set(s.scalars(select(Item.c.id).where(Item.c.file_id == r.file_id)))
                if not own and s.execute(select(File.c.id).where(File.c.id == r.file_id)).first() is None:
                    continue
                ids = list(own)
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    s.execute(delete(OcrLine).where(OcrLine.c.item_id.in_(chunk)))
                    s.execute(text(f"DELETE FROM ocr_fts WHERE rowid IN ({','.join(map(str, chunk))})"))
                n = 0
                for item_id, lines in r.items.items():
                    if item_id not in own or not lines:
                        continue
                    s.execute(
                        insert(OcrLine),
                        [
                            {"item_id": item_id, "text": t, "confidence": float(c), "box": json.dumps(b)}
                            for t, c, b in lines
                        ],
                    )
                    joined = normalise("\n".join(t for t, _, _ in lines))
                    if joined:
                        s.execute(
                            text("INSERT INTO ocr_fts (rowid, text) VALUES (:id, :t)"), {"id": item_id, "t": joined}
                        )
                    n += len(lines)
                s.execute(delete(OcrFile).where(OcrFile.c.file_id == r.file_id))
                s.execute(
                    insert(OcrFile).values(
                        file_id=r.file_id,
                        engine=r.engine,
                        status="failed" if r.error else "ok",
                        error=r.error,
                        lines=n,
                        seconds=round(r.seconds, 4),
                        read_at=time.time(),
                    )
                )
                stored += 1
        return stored

    def ocr_state(self, path: str) -> tuple[OcrState | None, list[tuple[int, float | None]]]:
        """The OCR record of the indexed file ``path`` and its items (item id, timestamp)."""
        with self.session() as s:
            file_id = s.execute(select(File.c.id).where(File.c.path == path)).scalar_one_or_none()
            if file_id is None:
                return None, []
            items = [
                (r[0], r[1])
                for r in s.execute(
                    select(Item.c.id, Item.c.timestamp).where(Item.c.file_id == file_id).order_by(Item.c.id)
                )
            ]
            row = s.execute(
                select(
                    OcrFile.c.engine,
                    OcrFile.c.status,
                    OcrFile.c.error,
                    OcrFile.c.lines,
                    OcrFile.c.seconds,
                    OcrFile.c.read_at,
                ).where(OcrFile.c.file_id == file_id)
            ).first()
            return (OcrState(*row) if row else None), items

    def ocr_counts(self) -> dict[str, int]:
        """Files read (ok), failed, lines, and items with text."""
        with self.session() as s:
            n = lambda status: s.execute(select(func.count()).where(OcrFile.c.status == status)).scalar_one()  # noqa: E731
            return {
                "read": n("ok"),
                "failed": n("failed"),
                "lines": s.execute(select(func.count(OcrLine.c.id))).scalar_one(),
                "items_with_text": s.execute(text("SELECT count(*) FROM ocr_fts")).scalar_one(),
            }

    def ocr_failures(self) -> list[tuple[str, str]]:
        """(path, reason) of the files whose text could not be read."""
        with self.session() as s:
            rows = s.execute(
                select(File.c.path, OcrFile.c.error)
                .join(OcrFile, OcrFile.c.file_id == File.c.id)
                .where(OcrFile.c.status == "failed")
            )
            return [(r[0], r[1] or "") for r in rows]

    # -- small facts ----------------------------------------------------------------------------
    def set_meta(self, key: str, value: str) -> None:
        with self.write() as (s, _):
            self._set_meta(s, key, value)

    def record_embedder(self, model_id: str, runtime: str) -> None:
        """Note that ``runtime`` ("onnxruntime int8", "torch fp16 cuda") made vectors of ``model_id``.

        Vectors of one model id are one space whatever made them; this says what did, for a person or a bench.
        """
        import json

        key = f"embedded_by:{model_id}"
        with self.write() as (s, _):
            found = s.execute(select(Meta.c.value).where(Meta.c.key == key)).scalar_one_or_none()
            runtimes = json.loads(found) if found else []
            if runtime not in runtimes:
                self._set_meta(s, key, json.dumps([*runtimes, runtime]))

    def embedders(self, model_id: str) -> list[str]:
        """Every runtime that made vectors of ``model_id``, oldest first (see ``record_embedder``)."""
        import json

        found = self.get_meta(f"embedded_by:{model_id}")
        return json.loads(found) if found else []

    @staticmethod
    def _set_meta(s: Connection, key: str, value: str) -> None:
        if s.execute(update(Meta).where(Meta.c.key == key).values(value=value)).rowcount == 0:
            s.execute(insert(Meta).values(key=key, value=value))

    def close(self) -> None:
        self.checkpoint()
        self.engine.dispose()
