"""A catalog made by the previous release (schema 1, paths as text) is upgraded in place: paths
become the OS's bytes, every row and vector is kept, nothing is re-embedded."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sqlite3
import sys
from pathlib import Path

import numpy as np

from clifs.engine.catalog import SCHEMA_VERSION, Catalog

#: clifs/catalog.py as released at schema 1 (commit e2306fd), kept as text so no tool lints or collects it.
RELEASE_1 = Path(__file__).parent / "data" / "catalog_schema1.py.txt"


def _release_1_catalog_module():
    loader = importlib.machinery.SourceFileLoader("catalog_schema1", str(RELEASE_1))
    spec = importlib.util.spec_from_loader("catalog_schema1", loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # SQLAlchemy resolves the Mapped[...] annotations there
    loader.exec_module(module)
    return module


def test_a_schema_1_catalog_is_upgraded_without_re_embedding(tmp_path):
    old = _release_1_catalog_module()
    path = tmp_path / "catalog.sqlite3"
    catalog = old.Catalog(path)
    folder = str(tmp_path / "photos")
    catalog.add_folder(folder)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3, 8)).astype(np.float32)
    files = [
        old.IndexedFile(f"{folder}/{name}", "image", 100 + i, 1.5 + i, f"hash{i}", [old.NewItem(None, vectors[i])])
        for i, name in enumerate(["a.jpg", "café 日本.png", "sub/c.jpg"])
    ]
    catalog.commit_indexed(files, "model-x")
    catalog.record_failure(f"{folder}/broken.jpg", "image", 5, 1.0, "corrupt")
    catalog.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT typeof(path) FROM files LIMIT 1").fetchone() == ("text",)

    upgraded = Catalog(path)
    try:
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT MAX(version) FROM schema_version").fetchone() == (SCHEMA_VERSION,)
            assert {t for (t,) in db.execute("SELECT DISTINCT typeof(path) FROM files")} == {"blob"}
        assert [f.path for f in upgraded.folders()] == [folder]
        states = upgraded.file_states_under(folder)
        assert set(states) == {f.path for f in files} | {f"{folder}/broken.jpg"}
        assert upgraded.paths_under(f"{folder}/sub") == [f"{folder}/sub/c.jpg"]
        ids, stored = next(upgraded.iter_embeddings("model-x", 8))
        assert len(ids) == 3
        np.testing.assert_allclose(stored, vectors.astype(np.float16).astype(np.float32))
        assert upgraded.missing_embeddings("model-x") == []
        assert len(upgraded.item_ids_matching(folder=folder)) == 3
    finally:
        upgraded.close()
