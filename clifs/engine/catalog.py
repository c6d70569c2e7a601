"""The catalog: SQLite (via SQLAlchemy 2, WAL mode), the source of truth.

Folders, files, items (an image, or one sampled video frame with its timestamp)
and each item's embedding per model as a float16 blob. Every write transaction
bumps ``generation``; the FAISS cache records the generation it reflects and is
patched from ``Embedding.c.generation`` and ``Tombstone`` rows when it is behind.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
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
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import DatabaseError, OperationalError, StatementError
from sqlalchemy.types import TypeDecorator

from clifs.engine.errors import CatalogError
from clifs.engine.paths import folder_prefix, is_under
from clifs.engine.photo_metadata import PhotoMeta

log = logging.getLogger(__name__)

SCHEMA_VERSION = 5
#: SQLite's words for a file that is not (or no longer) a database it can read.
_DAMAGE = ("malformed", "not a database", "file is encrypted", "unable to open database file", "disk i/o error")


class FsPath(TypeDecorator):
    """A file-system path stored as the OS's own bytes (``os.fsencode``), so every name the OS gives
    round-trips, names that are not valid UTF-8 (old zip archives, Samba shares) included. Byte order
    is UTF-8 text order, so sorting and prefix ranges behave as they did for text."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> bytes | None:
        return None if value is None else os.fsencode(value)

    def process_result_value(self, value: bytes | str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return os.fsdecode(value) if isinstance(value, bytes) else value


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


def _image_facts_columns() -> tuple:
    """The columns of an ``ImageFacts``, in its fields' order."""
    c = File.c
    return c.id, c.path, c.size, c.mtime, c.width, c.height, c.taken_at, c.phash


def _shot_prefix(path: str) -> str | None:
    """``folder/IMG_1.`` for ``folder/IMG_1.JPG``: the start of the range its shot's files share."""
    folder, name = os.path.split(path)
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, stem + ".") if stem and ext else None


@functools.lru_cache(maxsize=256)
def _shot_ranges(n: int):
    """The paths of ``ok`` files in ``n`` path ranges (bound as low0, high0, ...). Built once per ``n``:
    building SQLAlchemy's expression for 50 ranges took longer than running it."""
    return union_all(
        *(
            select(File.c.path).where(
                File.c.path >= bindparam(f"low{i}", type_=FsPath()),
                File.c.path < bindparam(f"high{i}", type_=FsPath()),
                File.c.status == "ok",
            )
            for i in range(n)
        )
    )


def _under(column, folder: str):
    """``column`` holds a path inside ``folder``: a range on the bytes, which the unique index serves."""
    prefix = folder_prefix(folder)
    return (column >= prefix) & (column < prefix[:-1] + chr(ord(prefix[-1]) + 1))


#: Below this much free space a "disk I/O error" is the disk being full, not the catalog being damaged.
_FULL_DISK_BYTES = 1 << 20


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _is_damage(exc: DatabaseError) -> bool:
    return any(word in str(exc.orig).lower() for word in _DAMAGE)


def vector_to_blob(v: np.ndarray) -> bytes:
    return np.asarray(v, dtype=np.float16).tobytes()


def blob_to_vectors(blobs: list[bytes], dim: int) -> np.ndarray:
    return np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(-1, dim).astype(np.float32)


class Catalog:
    """The one owner of the catalog's tables: every query the indexer, the GUI and the CLI need."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._prepare_home()
        #: True when the home cannot be written (a read-only mount): reading commands still work.
        self.read_only = not os.access(self.path.parent, os.W_OK)
        if self.read_only:
            if not self.path.is_file():
                raise CatalogError(f"the clifs home {self.path.parent} is read-only and holds no catalog yet")
            self.engine = create_engine("sqlite://", creator=self._connect_read_only)
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

    def _connect_read_only(self) -> sqlite3.Connection:
        """Without a ``-shm`` file SQLite cannot share a WAL on a read-only disk: read the main file
        as immutable then (a clean exit checkpoints everything into it)."""
        uri = self.path.resolve().as_uri()
        shm = self.path.with_name(self.path.name + "-shm")
        return sqlite3.connect(f"{uri}?mode=ro" if shm.exists() else f"{uri}?immutable=1", uri=True, timeout=30)

    @contextlib.contextmanager
    def _readable(self) -> Iterator[None]:
        """SQLite's "malformed" / "not a database" become one readable CatalogError."""
        try:
            yield
        except DatabaseError as exc:
            if not _is_damage(exc):
                raise
            free = _free_bytes(self.path.parent)
            if free is not None and free < _FULL_DISK_BYTES:  # SQLite cannot create its -wal: not damage
                raise CatalogError(
                    f"the disk holding the clifs home {self.path.parent} is full ({free // 1024} KB free): "
                    "free some space and try again; the catalog is intact"
                ) from None
            raise CatalogError(
                f"the catalog {self.path} is damaged ({str(exc.orig).strip()}): move it aside "
                f"(mv {self.path} {self.path}.damaged) and run `clifs index` on your folders again"
            ) from None

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

    def generation(self) -> int:
        with self.session() as s:
            return int(s.execute(select(Meta.c.value).where(Meta.c.key == "generation")).scalar_one())

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

    def counts(self) -> dict[str, int]:
        with self.session() as s:
            return {
                "files": s.execute(select(func.count(File.c.id)).where(File.c.status == "ok")).scalar_one(),
                "failed": s.execute(select(func.count(File.c.id)).where(File.c.status == "failed")).scalar_one(),
                "items": s.execute(select(func.count(Item.c.id))).scalar_one(),
            }

    # -- embeddings -----------------------------------------------------------------------------
    def iter_embeddings(
        self, model_id: str, dim: int, since_generation: int = -1, chunk: int = 50_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) chunks of the embeddings written after ``since_generation``."""
        last = -1
        with self.session() as s:
            while True:
                rows = s.execute(
                    select(Embedding.c.item_id, Embedding.c.vector)
                    .where(
                        Embedding.c.model_id == model_id,
                        Embedding.c.generation > since_generation,
                        Embedding.c.item_id > last,
                    )
                    .order_by(Embedding.c.item_id)
                    .limit(chunk)
                ).all()
                if not rows:
                    return
                ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                yield ids, blob_to_vectors([r[1] for r in rows], dim)
                last = int(ids[-1])

    def count_embeddings(self, model_id: str) -> int:
        with self.session() as s:
            return s.execute(select(func.count()).where(Embedding.c.model_id == model_id)).scalar_one()

    def sample_embeddings(self, model_id: str, dim: int, n: int) -> np.ndarray:
        """Up to ``n`` embeddings spread evenly over the ids (to train an ANN index; deterministic,
        so a rebuild of the same catalog gives the same index)."""
        stride = max(1, -(-self.count_embeddings(model_id) // n))
        with self.session() as s:
            blobs = s.scalars(
                select(Embedding.c.vector)
                .where(Embedding.c.model_id == model_id, Embedding.c.item_id % stride == 0)
                .order_by(Embedding.c.item_id)
                .limit(n)
            ).all()
        return blob_to_vectors(list(blobs), dim)

    def tombstones_since(self, generation: int) -> np.ndarray:
        with self.session() as s:
            ids = s.scalars(select(Tombstone.c.item_id).where(Tombstone.c.generation > generation))
            return np.fromiter(ids, dtype=np.int64)

    def embedding_of(self, item_id: int, model_id: str) -> np.ndarray | None:
        with self.session() as s:
            blob = s.execute(
                select(Embedding.c.vector).where(Embedding.c.item_id == item_id, Embedding.c.model_id == model_id)
            ).scalar_one_or_none()
        return None if blob is None else np.frombuffer(blob, dtype=np.float16).astype(np.float32)

    def vectors_of(self, item_ids: np.ndarray, model_id: str, dim: int) -> np.ndarray:
        """The stored vectors of ``item_ids``, one row each in that order (zeros for an item gone meanwhile)."""
        out = np.zeros((len(item_ids), dim), np.float32)
        row = {int(i): n for n, i in enumerate(item_ids)}
        with self.session() as s:
            for item_id, blob in s.execute(
                select(Embedding.c.item_id, Embedding.c.vector).where(
                    Embedding.c.model_id == model_id, Embedding.c.item_id.in_([int(i) for i in item_ids])
                )
            ):
                out[row[item_id]] = np.frombuffer(blob, dtype=np.float16)
        return out

    def item_ids_of_path(self, path: str, modality: str | None = None) -> list[int]:
        """The items of a file, in order; only its pictures or only its windows of sound with ``modality``."""
        q = select(Item.c.id).join(File, File.c.id == Item.c.file_id).where(File.c.path == path).order_by(Item.c.id)
        if modality is not None:
            q = q.where(Item.c.modality == modality)
        with self.session() as s:
            return list(s.scalars(q))

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

    def item_infos(self, item_ids: list[int]) -> dict[int, ItemInfo]:
        out: dict[int, ItemInfo] = {}
        with self.session() as s:
            for start in range(0, len(item_ids), 900):
                chunk = item_ids[start : start + 900]
                rows = s.execute(
                    select(
                        Item.c.id,
                        File.c.path,
                        File.c.kind,
                        Item.c.timestamp,
                        File.c.size,
                        File.c.mtime,
                        File.c.width,
                        File.c.height,
                        File.c.taken,
                        File.c.taken_at,
                        File.c.taken_from,
                        File.c.camera,
                        File.c.latitude,
                        File.c.longitude,
                        File.c.dup_group,
                        Item.c.modality,
                    )
                    .join(File, File.c.id == Item.c.file_id)
                    .where(Item.c.id.in_(chunk))
                )
                for r in rows:
                    out[r[0]] = ItemInfo(*r)
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
        ``taken_*`` compare the wall-clock seconds of ``File.c.taken_at``; ``camera`` is a
        case-insensitive piece of the camera's name ("iphone", "EOS 5D")."""
        q = select(Item.c.id).join(File, File.c.id == Item.c.file_id)
        if taken_after is not None:
            q = q.where(File.c.taken_at >= taken_after)
        if taken_before is not None:
            q = q.where(File.c.taken_at < taken_before)
        if camera:
            pattern = "%" + camera.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            q = q.where(File.c.camera.ilike(pattern, escape="\\"))
        if folder:
            q = q.where(_under(File.c.path, folder))
        if kind == "audio":
            q = q.where(Item.c.modality == "sound")
        elif kind:
            q = q.where(File.c.kind == kind)
        if modified_after is not None:
            q = q.where(File.c.mtime >= modified_after)
        if modified_before is not None:
            q = q.where(File.c.mtime <= modified_before)
        with self.session() as s:
            return np.fromiter(s.scalars(q), dtype=np.int64)

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

    def same_shots(self, paths: Iterable[str]) -> dict[str, list[str]]:
        """Each path's other files of its shot: same folder, same name before the extension ("IMG_1.CR2"
        for "IMG_1.JPG"), by path. A range on the path index per shot (``folder/IMG_1.`` up to
        ``folder/IMG_1/``), all in one query: a UNION ALL, because SQLite scans the whole table for an OR
        of more than a few ranges."""
        out: dict[str, list[str]] = {}
        by_prefix: dict[str, list[str]] = {}
        for path in paths:
            out[path] = []
            prefix = _shot_prefix(path)
            if prefix:
                by_prefix.setdefault(prefix, []).append(path)
        prefixes = list(by_prefix)
        with self.session() as s:
            for start in range(0, len(prefixes), 200):  # two bound values a range, under SQLite's 999
                lows = prefixes[start : start + 200]
                params = {f"low{i}": low for i, low in enumerate(lows)}
                params.update({f"high{i}": low[:-1] + "/" for i, low in enumerate(lows)})
                for found in s.scalars(_shot_ranges(len(lows)), params):
                    for path in by_prefix.get(_shot_prefix(found) or "", []):
                        if found != path:
                            out[path].append(found)
        for shot in out.values():
            shot.sort()
        return out

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

    def image_facts(self, file_ids: Iterable[int]) -> dict[int, ImageFacts]:
        out: dict[int, ImageFacts] = {}
        ids = [int(i) for i in file_ids]
        with self.session() as s:
            for start in range(0, len(ids), 900):
                rows = s.execute(
                    select(*_image_facts_columns()).where(
                        File.c.id.in_(ids[start : start + 900]), File.c.kind == "image", File.c.status == "ok"
                    )
                )
                out.update((r[0], ImageFacts(*r)) for r in rows)
        return out

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

    def duplicate_members(self, groups: Iterable[int]) -> dict[int, list[ImageFacts]]:
        """The files of each stored group, by group."""
        keys = sorted({int(g) for g in groups})
        out: dict[int, list[ImageFacts]] = {}
        with self.session() as s:
            for start in range(0, len(keys), 900):
                rows = s.execute(
                    select(File.c.dup_group, *_image_facts_columns()).where(
                        File.c.dup_group.in_(keys[start : start + 900]), File.c.status == "ok"
                    )
                )
                for r in rows:
                    out.setdefault(r[0], []).append(ImageFacts(*r[1:]))
        return out

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

    def text_candidates(self, match: str | None, needles: list[str] = (), limit: int = 20_000) -> list[tuple[int, str]]:
        """(item id, normalised text) of the items whose text matches the FTS5 expression ``match``,
        or, without one, holds every one of ``needles`` (a scan: words too short for trigrams)."""
        with self.session() as s:
            if match:
                rows = s.execute(
                    text("SELECT rowid, text FROM ocr_fts WHERE ocr_fts MATCH :q LIMIT :n"), {"q": match, "n": limit}
                )
            elif needles:
                where = " AND ".join(f"instr(text, :w{i}) > 0" for i in range(len(needles)))
                params = {f"w{i}": w for i, w in enumerate(needles)} | {"n": limit}
                rows = s.execute(text(f"SELECT rowid, text FROM ocr_fts WHERE {where} LIMIT :n"), params)
            else:
                return []
            return [(int(r[0]), r[1]) for r in rows]

    def ocr_lines_of(self, item_ids: Iterable[int]) -> dict[int, list[tuple[str, float, list[list[int]]]]]:
        """The recognised lines of these items, in reading order, by item id (items without text absent)."""
        import json

        ids = [int(i) for i in item_ids]
        out: dict[int, list[tuple[str, float, list[list[int]]]]] = {}
        with self.session() as s:
            for start in range(0, len(ids), 900):
                rows = s.execute(
                    select(OcrLine.c.item_id, OcrLine.c.text, OcrLine.c.confidence, OcrLine.c.box)
                    .where(OcrLine.c.item_id.in_(ids[start : start + 900]))
                    .order_by(OcrLine.c.id)
                )
                for item_id, t, c, b in rows:
                    out.setdefault(item_id, []).append((t, c, json.loads(b)))
        return out

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
    def get_meta(self, key: str) -> str | None:
        with self.session() as s:
            return s.execute(select(Meta.c.value).where(Meta.c.key == key)).scalar_one_or_none()

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

    def checkpoint(self) -> None:
        """Copy what the WAL holds into the main file (without waiting for readers), so the main file
        alone has every commit: a deleted ``-wal`` or a copied catalog then loses nothing."""
        if self.read_only:
            return
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except OperationalError as exc:  # busy or a full disk: the WAL still holds it all
            log.info("WAL checkpoint of %s skipped: %s", self.path, exc)

    def close(self) -> None:
        self.checkpoint()
        self.engine.dispose()
