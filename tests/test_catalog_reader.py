"""A search reads the catalog on a plain sqlite3 connection (clifs.engine.catalog_reads), without
SQLAlchemy: the reader answers as the whole Catalog does, follows commits another process makes after
it opened, reads from other threads, and leaves a catalog that must be created or upgraded to the Catalog."""

from __future__ import annotations

import json
import shutil
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clifs.engine.catalog import Catalog
from clifs.engine.catalog_reads import SCHEMA_VERSION, CatalogReader
from clifs.engine.config import Settings
from clifs.engine.errors import CatalogError
from clifs.engine.library import Library
from tests.conftest import run_clifs, write_single_objects


@pytest.fixture
def indexed(clifs_home: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A home over single-object pictures, and one shot kept as a PNG and a JPEG in a subfolder."""
    photos = tmp_path / "photos"
    paths = write_single_objects(photos)
    (photos / "sub").mkdir()
    shutil.copy(paths["red circle"], photos / "sub" / "IMG_1.png")
    Image.open(paths["red circle"]).convert("RGB").save(photos / "sub" / "IMG_1.jpg")
    done = run_clifs(clifs_home, "index", "--no-progress", "--no-ocr", str(photos))
    assert done.returncode == 0, done.stderr
    return clifs_home, photos


def _model_and_dim(catalog_path: Path) -> tuple[str, int]:
    with sqlite3.connect(catalog_path) as db:
        model_id, blob = db.execute("SELECT model_id, vector FROM embeddings LIMIT 1").fetchone()
    return model_id, len(blob) // 2  # float16


def test_the_reader_answers_every_search_read_as_the_catalog_does(indexed):
    home, photos = indexed
    path = Settings.load(home).catalog_path
    model_id, dim = _model_and_dim(path)
    catalog, reader = Catalog(path), CatalogReader.open(path)
    assert reader is not None
    try:
        for source in (catalog, reader):
            assert source.counts() == {"files": 26, "failed": 0, "items": 26}
        assert reader.generation() == catalog.generation() > 0
        ids = sorted(int(i) for i in catalog.item_ids_matching())
        infos = reader.item_infos(ids)
        assert infos == catalog.item_infos(ids)
        assert {Path(i.path).name for i in infos.values()} >= {"red_circle.png", "IMG_1.png", "IMG_1.jpg"}
        in_sub = reader.item_ids_matching(folder=str(photos / "sub"), kind="image")
        assert sorted(Path(infos[int(i)].path).name for i in in_sub) == ["IMG_1.jpg", "IMG_1.png"]
        assert len(reader.item_ids_matching(kind="video")) == 0
        shot = str(photos / "sub" / "IMG_1.jpg")
        assert reader.same_shots([shot]) == catalog.same_shots([shot]) == {shot: [str(photos / "sub" / "IMG_1.png")]}
        np.testing.assert_array_equal(
            reader.vectors_of(np.array(ids), model_id, dim), catalog.vectors_of(ids, model_id, dim)
        )
        (read_ids, read_vectors), (core_ids, core_vectors) = (
            next(s.iter_embeddings(model_id, dim)) for s in (reader, catalog)
        )
        np.testing.assert_array_equal(read_ids, core_ids)
        np.testing.assert_array_equal(read_vectors, core_vectors)
        assert read_ids.tolist() == ids
        assert reader.item_ids_of_path(shot) == catalog.item_ids_of_path(shot) != []
        np.testing.assert_array_equal(reader.embedding_of(ids[0], model_id), catalog.embedding_of(ids[0], model_id))
        assert reader.embedding_of(ids[0], "another model") is None
    finally:
        catalog.close()
        reader.close()


def test_a_search_follows_commits_another_process_makes_after_it_opened(indexed, tmp_path):
    home, photos = indexed
    library = Library(Settings.load(home), load_model=False)
    try:
        assert isinstance(library.reads, CatalogReader)
        assert library.search("a blue square", top=1)[0].path.endswith("blue_square.png")
        later = tmp_path / "later"
        later.mkdir()
        shutil.copy(photos / "blue_square.png", later / "late_blue_square.png")
        assert run_clifs(home, "index", "--no-progress", "--no-ocr", str(later)).returncode == 0
        names = [Path(h.path).name for h in library.search("a blue square", top=2, all_copies=True)]
        assert "late_blue_square.png" in names
        (later / "late_blue_square.png").unlink()
        assert run_clifs(home, "index", "--no-progress", "--no-ocr", str(later)).returncode == 0
        names = [Path(h.path).name for h in library.search("a blue square", top=30, all_copies=True)]
        assert "late_blue_square.png" not in names and "blue_square.png" in names
        assert library._catalog is None  # all of it read without opening the whole Catalog
    finally:
        library.close()


def test_the_reader_reads_from_other_threads_on_a_pool_of_connections(indexed):
    """The window searches on worker threads, which a thread pool ends and starts again: the reader's
    connections are pooled, not one per thread, so short-lived threads leave none behind."""
    home, _ = indexed
    library = Library(Settings.load(home), load_model=False)
    try:
        here = [h.path for h in library.search("a green triangle", top=3)]
        for _ in range(3):  # new threads each round
            with ThreadPoolExecutor(2) as pool:
                there = list(pool.map(lambda q: [h.path for h in library.search(q, top=3)], ["a green triangle"] * 4))
            assert there == [here] * 4
        assert 1 <= len(library.reads._idle) <= 2  # at most one a thread reading at once
    finally:
        library.close()
    assert library.reads._idle == []


def test_a_catalog_to_create_or_upgrade_is_left_to_the_whole_catalog(indexed, tmp_path):
    home, _ = indexed
    path = Settings.load(home).catalog_path
    assert CatalogReader.open(tmp_path / "none.sqlite3") is None
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"not a database at all" * 100)
    assert CatalogReader.open(garbage) is None
    for version in (SCHEMA_VERSION - 1, SCHEMA_VERSION + 1):
        copy = tmp_path / f"v{version}.sqlite3"
        with sqlite3.connect(path) as db, sqlite3.connect(copy) as out:
            db.backup(out)
            out.execute("UPDATE schema_version SET version = ?", (version,))
        assert CatalogReader.open(copy) is None
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    newer = run_clifs(home, "search", "a red circle", "--json")
    assert newer.returncode == 2 and "newer than this clifs understands" in newer.stderr
    assert "Traceback" not in newer.stderr


def test_damage_found_while_reading_is_one_line(tmp_path):
    garbage = tmp_path / "catalog.sqlite3"
    garbage.write_bytes(json.dumps({"not": "a database"}).encode() * 200)
    reader = CatalogReader(garbage, read_only=False)
    with pytest.raises(CatalogError, match=r"is damaged \(file is not a database\): move it aside"):
        reader.counts()
    reader.close()
