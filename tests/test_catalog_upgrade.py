"""A catalog made by the previous release (schema 1, paths as text) is upgraded in place: paths
become the OS's bytes, every row and vector is kept, nothing is re-embedded."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

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


#: clifs/engine/catalog.py at schema 2 (commit c7ed7ac, the release before photo metadata), kept as text.
RELEASE_2 = Path(__file__).parent / "data" / "catalog_schema2.py.txt"


def _release_2_catalog_module():
    loader = importlib.machinery.SourceFileLoader("catalog_schema2", str(RELEASE_2))
    spec = importlib.util.spec_from_loader("catalog_schema2", loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    loader.exec_module(module)
    return module


def test_a_schema_2_catalog_gains_metadata_on_the_next_scan_without_re_embedding(tmp_path, test_encoder):
    """Files indexed by the schema-2 release (real JPEGs with EXIF dates, real vectors) are upgraded in
    place; the next `clifs index` reads their dates and cameras and encodes nothing."""
    import json

    from PIL import Image

    from clifs.engine.config import Settings
    from clifs.engine.media import content_hash, open_image
    from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes
    from tests.conftest import run_clifs

    photos = tmp_path / "photos"
    photos.mkdir()
    scenes = [s.image for s in iter_scenes(HELD_OUT_SEED_BASE + 90, 4, 96, n_objects=2)]
    for i, scene in enumerate(scenes):
        exif = Image.Exif()
        exif[0x010F], exif[0x0110] = "Apple", f"iPhone {10 + i}"
        exif.get_ifd(0x8769)[0x9003] = f"201{i}:07:14 12:00:00"
        scene.save(photos / f"p{i}.jpg", exif=exif, quality=92)
    scenes[0].resize((80, 80)).save(photos / "p0_copy.jpg", quality=80)  # a near-duplicate, no EXIF

    old = _release_2_catalog_module()
    home = tmp_path / "home"
    settings = Settings.load(home)
    catalog = old.Catalog(settings.catalog_path)
    catalog.add_folder(str(photos))
    files = []
    for path in sorted(photos.iterdir()):
        st = path.stat()
        vector = test_encoder.encode_pil([open_image(path)])[0]
        files.append(
            old.IndexedFile(
                str(path), "image", st.st_size, st.st_mtime, content_hash(path, st.st_size), [old.NewItem(None, vector)]
            )
        )
    catalog.commit_indexed(files, test_encoder.model_id)
    catalog.close()
    with sqlite3.connect(settings.catalog_path) as db:
        assert db.execute("SELECT MAX(version) FROM schema_version").fetchone() == (2,)
        before = db.execute("SELECT item_id, vector FROM embeddings ORDER BY item_id").fetchall()

    upgraded = Catalog(settings.catalog_path)
    try:
        with sqlite3.connect(settings.catalog_path) as db:
            assert db.execute("SELECT MAX(version) FROM schema_version").fetchone() == (SCHEMA_VERSION,)
        assert SCHEMA_VERSION >= 3
        assert len(upgraded.undescribed_under(str(photos))) == 5
    finally:
        upgraded.close()

    proc = run_clifs(home, "index", str(photos), "--json", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)[0]
    assert (summary["indexed"], summary["encoded_images"], summary["unchanged"], summary["described"]) == (0, 0, 5, 5)
    with sqlite3.connect(settings.catalog_path) as db:
        assert db.execute("SELECT item_id, vector FROM embeddings ORDER BY item_id").fetchall() == before
    listed = {Path(e["path"]).name: e for e in json.loads(run_clifs(home, "list", "--json").stdout)}
    assert listed["p2.jpg"]["taken"] == "2012-07-14T12:00:00" and listed["p2.jpg"]["camera"] == "Apple iPhone 12"
    assert listed["p0_copy.jpg"]["taken_from"] == "mtime"
    found = run_clifs(home, "search", "a shape", "--taken-after", "2011", "--taken-before", "2013", "--json")
    assert {Path(h["path"]).name for h in json.loads(found.stdout)} == {"p1.jpg", "p2.jpg"}
    # the near-duplicate groups were made from the stored vectors (hashes computed from the files)
    dupes = run_clifs(home, "duplicates", "--json")
    assert dupes.returncode == 0, dupes.stderr
    assert json.loads(dupes.stdout) == [[str(photos / "p0.jpg"), str(photos / "p0_copy.jpg")]]
    again = json.loads(run_clifs(home, "index", str(photos), "--json", "--no-progress").stdout)[0]
    assert again["described"] == 0 and again["encoded_images"] == 0


#: clifs/engine/catalog.py at schema 4 (commit 4fec53f, the release before sound), kept as text.
RELEASE_4 = Path(__file__).parent / "data" / "catalog_schema4.py.txt"


@pytest.mark.slow  # two `clifs` runs on a fresh home (the test model is exported to ONNX on the first)
def test_a_schema_4_catalog_gains_sound_columns_in_place_without_re_embedding(tmp_path, test_encoder):
    """A photo and a video indexed by the schema-4 release are upgraded in place: their items are
    pictures, nothing is re-embedded, and sounds added afterwards share their index."""
    import json

    from clifs.engine.config import Settings
    from clifs.engine.media import content_hash, open_image
    from clifs.engine.video import sample_frames
    from devkit.shapes_av import write_object_sound, write_shapes_video
    from tests.conftest import run_clifs, write_single_objects

    folder = tmp_path / "media"
    picture = write_single_objects(folder)["red circle"]
    for other in folder.glob("*.png"):
        if other != picture:
            other.unlink()
    video = write_shapes_video(folder / "clip.mp4", [("blue", "square", 2.0)])

    loader = importlib.machinery.SourceFileLoader("catalog_schema4", str(RELEASE_4))
    spec = importlib.util.spec_from_loader("catalog_schema4", loader)
    old = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = old
    loader.exec_module(old)
    home = tmp_path / "home"
    settings = Settings.load(home)
    catalog = old.Catalog(settings.catalog_path)
    catalog.add_folder(str(folder))
    frames = sample_frames(video).frames
    files = []
    for path, kind, items in (
        (picture, "image", [old.NewItem(None, test_encoder.encode_pil([open_image(picture)])[0])]),
        (
            video,
            "video",
            [old.NewItem(t, v) for (t, _), v in zip(frames, test_encoder.encode_pil([f for _, f in frames]))],
        ),
    ):
        st = path.stat()
        files.append(old.IndexedFile(str(path), kind, st.st_size, st.st_mtime, content_hash(path, st.st_size), items))
    catalog.commit_indexed(files, test_encoder.model_id)
    catalog.close()
    with sqlite3.connect(settings.catalog_path) as db:
        assert db.execute("SELECT MAX(version) FROM schema_version").fetchone() == (4,)
        before = db.execute("SELECT item_id, vector FROM embeddings ORDER BY item_id").fetchall()

    upgraded = Catalog(settings.catalog_path)
    try:
        with sqlite3.connect(settings.catalog_path) as db:
            assert db.execute("SELECT MAX(version) FROM schema_version").fetchone() == (SCHEMA_VERSION,)
            assert {m for (m,) in db.execute("SELECT DISTINCT modality FROM items")} == {"picture"}
            assert db.execute("SELECT COUNT(*) FROM files WHERE sound_note IS NOT NULL").fetchone() == (0,)
        assert len(upgraded.item_ids_matching(kind="audio")) == 0
    finally:
        upgraded.close()

    write_object_sound(folder / "red_circle.flac", "red", "circle", seconds=2.0)
    proc = run_clifs(home, "index", str(folder), "--json", "--no-progress", "--no-ocr")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)[0]
    assert (summary["indexed"], summary["unchanged"], summary["encoded_images"]) == (1, 2, 0)  # only the new sound
    with sqlite3.connect(settings.catalog_path) as db:
        assert (
            db.execute(
                "SELECT item_id, vector FROM embeddings WHERE item_id <= ? ORDER BY item_id", (before[-1][0],)
            ).fetchall()
            == before
        )
    hits = json.loads(run_clifs(home, "search", "a red circle", "--json").stdout)
    assert {Path(h["path"]).name for h in hits[:2]} == {"red_circle.png", "red_circle.flac"}  # one space, one index
