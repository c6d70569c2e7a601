"""Real photo formats (issue 13): HEIC and AVIF written by pillow-heif and Pillow, DNGs with and without an
embedded preview, a RAW beside its JPEG, animated GIF/WebP, transparent PNG; corrupt files are failures
with a reason, files of other types are passed over and counted."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
from PIL import Image

from clifs.engine.media import ALPHA_BACKGROUND, IMAGE_EXTENSIONS, RAW_EXTENSIONS, MediaError, kind_of, open_image
from devkit.dng import write_dng
from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes
from tests.conftest import run_clifs

pillow_heif.register_heif_opener()

ORIENTATION = 0x0112


def _scenes(seed: int, n: int, size: int = 128) -> list[Image.Image]:
    return [s.image for s in iter_scenes(HELD_OUT_SEED_BASE + seed, n, size, n_objects=2)]


def _rotated_with_exif(upright: Image.Image) -> tuple[Image.Image, bytes]:
    """The picture as a camera held sideways stores it, with the EXIF tag that turns it upright."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # rotate 90 degrees clockwise to display
    return upright.transpose(Image.Transpose.ROTATE_90), exif.tobytes()


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    photos = root / "photos"
    photos.mkdir()
    queries = root / "queries"
    queries.mkdir()
    scenes = _scenes(1, 10)
    for i, scene in enumerate(scenes):
        scene.save(queries / f"q{i}.png")

    stored, exif = _rotated_with_exif(scenes[0])
    stored.save(photos / "phone.heic", exif=exif, quality=90)  # pillow-heif turns the tag into an irot box
    stored, exif = _rotated_with_exif(scenes[1])
    stored.save(photos / "phone.avif", exif=exif, quality=90)  # Pillow's AVIF keeps the EXIF tag
    # A DNG from a camera held sideways: sensor data and preview both stored sideways, orientation 6.
    sideways = scenes[2].transpose(Image.Transpose.ROTATE_90)
    write_dng(photos / "with_preview.dng", sideways, preview=sideways, orientation=6)
    write_dng(photos / "no_preview.dng", scenes[3])
    # One shot as RAW + JPEG (same stem, same folder).
    write_dng(photos / "IMG_0001.DNG", scenes[4], preview=scenes[4])
    scenes[4].save(photos / "IMG_0001.JPG", quality=92)
    # Animated: the first frame is the picture.
    scenes[5].save(photos / "anim.gif", save_all=True, append_images=[scenes[9]], duration=100, loop=0)
    scenes[6].save(photos / "anim.webp", save_all=True, append_images=[scenes[9]], duration=100, loop=0)
    scenes[7].save(photos / "plain.jpg", quality=92)

    # -- corrupt files of supported types
    good = io.BytesIO()
    scenes[8].save(good, "HEIF", quality=90)
    (photos / "truncated.heic").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    (photos / "garbage.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + np.random.default_rng(1).bytes(4000))
    avif = io.BytesIO()
    scenes[8].save(avif, "AVIF")
    (photos / "truncated.avif").write_bytes(avif.getvalue()[: len(avif.getvalue()) // 2])
    (photos / "not_a_raw.cr2").write_bytes(np.random.default_rng(2).bytes(5000))
    # -- types clifs does not read
    (photos / "notes.txt").write_text("shopping list\n")
    (photos / "IMG_0001.xmp").write_text("<x:xmpmeta/>\n")
    (photos / "README").write_text("no extension\n")
    (photos / "report.pdf").write_bytes(b"%PDF-1.4" + bytes(100))  # sounds are read now (issue 15); a PDF is not

    home = root / "home"
    proc = run_clifs(home, "index", str(photos), "--json", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    text = run_clifs(home, "index", str(photos), "--no-progress")
    listed = run_clifs(home, "list", "--json")
    return {
        "home": home,
        "photos": photos,
        "queries": queries,
        "summary": json.loads(proc.stdout)[0],
        "second_run": text.stdout,
        "listed": {Path(e["path"]).name: e for e in json.loads(listed.stdout)},
    }


def _search_image(lib, query: str, *extra: str) -> list[dict]:
    proc = run_clifs(lib["home"], "search", "--image", str(lib["queries"] / query), "--json", *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_every_listed_raw_extension_is_an_image():
    for ext in (".cr2", ".cr3", ".nef", ".arw", ".dng", ".raf", ".orf", ".rw2", ".pef"):
        assert ext in RAW_EXTENSIONS and ext in IMAGE_EXTENSIONS
        assert kind_of(f"x{ext.upper()}") == "image"
    assert kind_of("x.heic") == kind_of("x.HEIF") == kind_of("x.avif") == "image"
    assert kind_of("x.txt") is None and kind_of("x.xmp") is None


@pytest.mark.parametrize(
    "name,query",
    [
        ("phone.heic", "q0.png"),
        ("phone.avif", "q1.png"),
        ("with_preview.dng", "q2.png"),
        ("no_preview.dng", "q3.png"),
        ("anim.gif", "q5.png"),
        ("anim.webp", "q6.png"),
    ],
)
def test_each_format_is_found_upright_by_its_picture(library, name, query):
    entry = library["listed"][name]
    assert entry["status"] == "ok", entry.get("error")
    hit = _search_image(library, query, "--top", "1")[0]
    assert Path(hit["path"]).name == name
    # A demosaic goes through LibRaw's auto-brightening (right for a camera's raw data, which is darker
    # than its JPEG) and so scores lower against the original picture than a decoded file: 0.91 measured.
    assert hit["score"] > (0.88 if name == "no_preview.dng" else 0.95)
    assert (hit["width"], hit["height"]) == (128, 128)  # upright size: sideways files report it turned


def test_a_raw_and_its_jpeg_are_one_photo_with_both_files(library):
    hits = _search_image(library, "q4.png", "--top", "5")
    shot = [h for h in hits if Path(h["path"]).stem == "IMG_0001"]
    assert len(shot) == 1
    assert hits[0] is shot[0] and hits[0]["score"] > 0.95
    files = {Path(hits[0]["path"]).name, *(Path(p).name for p in hits[0]["same_shot"])}
    assert files == {"IMG_0001.DNG", "IMG_0001.JPG"}
    # both are indexed (either one alone still finds the photo)
    assert library["listed"]["IMG_0001.DNG"]["status"] == library["listed"]["IMG_0001.JPG"]["status"] == "ok"


def test_a_shot_stays_one_hit_with_all_copies(library):
    hits = _search_image(library, "q4.png", "--top", "5", "--all-copies")
    assert sum(Path(h["path"]).stem == "IMG_0001" for h in hits) == 1


CORRUPT = {
    "truncated.heic": "corrupt or truncated",
    "garbage.heic": "corrupt or truncated heic",
    "truncated.avif": "corrupt or truncated avif",
    "not_a_raw.cr2": "not a raw file",
}


@pytest.mark.parametrize("name,reason", CORRUPT.items())
def test_a_corrupt_file_of_a_supported_type_is_a_failure_with_its_reason(library, name, reason):
    entry = library["listed"][name]
    assert entry["status"] == "failed" and entry["items"] == 0
    assert reason in entry["error"].lower()
    assert "\n" not in entry["error"]
    assert name in {Path(f["path"]).name for f in library["summary"]["failed"]}


def test_other_types_are_passed_over_and_counted(library):
    listed = library["listed"]
    assert not {"notes.txt", "IMG_0001.xmp", "README", "report.pdf"} & set(listed)
    assert library["summary"]["skipped"] == {".txt": 1, ".xmp": 1, "": 1, ".pdf": 1}
    assert "4 files passed over (types clifs does not read)" in library["second_run"]
    assert ".txt 1" in library["second_run"] and "(no extension) 1" in library["second_run"]
    proc = run_clifs(library["home"], "list", "--skipped", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    folder = os.path.realpath(library["photos"])
    assert {(r["folder"], r["extension"], r["files"]) for r in rows} == {
        (folder, ".txt", 1),
        (folder, ".xmp", 1),
        (folder, "", 1),
        (folder, ".pdf", 1),
    }
    text = run_clifs(library["home"], "list", "--skipped")
    assert text.stdout.startswith(f"{folder}: 4 files passed over")


def test_raw_uses_the_embedded_preview_when_large_enough_and_demosaics_otherwise(tmp_path):
    picture = _scenes(30, 1, 512)[0]
    write_dng(tmp_path / "big.dng", picture, preview=picture.resize((384, 384)))
    write_dng(tmp_path / "tiny.dng", picture, preview=picture.resize((160, 160)))
    write_dng(tmp_path / "none.dng", picture)
    big, tiny, none = (open_image(tmp_path / f"{n}.dng") for n in ("big", "tiny", "none"))
    assert big.info["raw_decode"] == "preview" and big.size == (384, 384)
    assert tiny.info["raw_decode"] == "demosaic" and none.info["raw_decode"] == "demosaic"
    assert none.size == (256, 256)  # LibRaw's half-size demosaic
    for im in (big, tiny, none):
        assert im.info["original_size"] == (512, 512)
        assert _likeness(im, picture) > 0.9


def _likeness(a: Image.Image, b: Image.Image) -> float:
    """Correlation of two pictures' 32x32 grey copies: the same picture, whatever the brightness (LibRaw
    auto-brightens a demosaic)."""
    x, y = (np.asarray(im.convert("L").resize((32, 32)), np.float64).ravel() for im in (a, b))
    return float(np.corrcoef(x, y)[0, 1])


def test_a_sideways_raw_preview_and_demosaic_agree(tmp_path):
    picture = _scenes(31, 1, 256)[0]
    sideways = picture.transpose(Image.Transpose.ROTATE_90)
    write_dng(tmp_path / "p.dng", sideways, preview=sideways, orientation=6)
    write_dng(tmp_path / "d.dng", sideways, orientation=6)
    p, d = open_image(tmp_path / "p.dng"), open_image(tmp_path / "d.dng")
    assert p.info["raw_decode"] == "preview" and d.info["raw_decode"] == "demosaic"
    for im in (p, d):
        assert im.size[0] == im.size[1] and _likeness(im, picture) > 0.9
        assert _likeness(im, sideways) < 0.7  # upright, not as stored


def test_transparent_png_is_composited_on_neutral_grey(tmp_path):
    rgba = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    rgba.paste((255, 255, 255, 255), (0, 0, 32, 64))  # white left half, transparent right half
    rgba.save(tmp_path / "logo.png")
    im = open_image(tmp_path / "logo.png")
    assert im.mode == "RGB"
    assert im.getpixel((10, 10)) == (255, 255, 255)
    assert im.getpixel((50, 10)) == ALPHA_BACKGROUND[:3]


def test_heic_orientation_matches_the_jpeg_rule(tmp_path):
    upright = _scenes(32, 1, 96)[0]
    stored, exif = _rotated_with_exif(upright)
    for ext in ("heic", "avif", "jpg"):
        stored.save(tmp_path / f"x.{ext}", exif=exif, quality=95)
        im = open_image(tmp_path / f"x.{ext}")
        assert im.size == (96, 96) and im.info["original_size"] == (96, 96)
        assert np.abs(np.asarray(im, np.float32) - np.asarray(upright, np.float32)).mean() < 12, ext


def test_a_raw_too_large_for_the_pixel_cap_is_refused(tmp_path):
    write_dng(tmp_path / "x.dng", _scenes(33, 1, 128)[0])
    with pytest.raises(MediaError, match="too large"):
        open_image(tmp_path / "x.dng", max_pixels=100 * 100)


def test_a_heic_thumbnail_large_enough_for_the_model_is_used(tmp_path):
    picture = _scenes(34, 1, 640)[0].resize((640, 480))
    picture.save(tmp_path / "phone.heic", quality=90, thumbnails=[320])  # a phone's 320x240 thumbnail
    small = open_image(tmp_path / "phone.heic")  # as the indexer asks (min side 256)
    assert small.size == (320, 240) and small.info["original_size"] == (640, 480)
    assert _likeness(small, picture) > 0.95
    assert open_image(tmp_path / "phone.heic", min_side=400).size == (640, 480)  # a preview wants more


def test_the_shots_of_many_photos_come_from_one_query_with_the_same_answers(tmp_path):
    """``Catalog.same_shots`` (one UNION ALL for every candidate of a search) gives each photo exactly the
    other files of its own shot: not a longer stem, a double extension, a folder named like the shot, or a
    failed file."""
    from clifs.engine.catalog import Catalog, IndexedFile, NewItem

    catalog = Catalog(tmp_path / "catalog.sqlite3")
    folder = str(tmp_path / "photos")

    def photo(name: str) -> IndexedFile:
        item = NewItem(None, np.ones(4, np.float32))
        return IndexedFile(os.path.join(folder, name), "image", 1, 0.0, name, [item])

    names = ["IMG_1.JPG", "IMG_1.CR2", "IMG_1.xmp.JPG", "IMG_10.JPG", "IMG_1.d/IMG_1.JPG", "IMG_2.JPG", "IMG_2.DNG"]
    names += [f"other_{i}.jpg" for i in range(30)]  # enough ranges that an OR would scan the whole table
    catalog.commit_indexed([photo(n) for n in names], "m")
    catalog.record_failure(os.path.join(folder, "IMG_2.HEIC"), "image", 1, 0.0, "corrupt")

    asked = [os.path.join(folder, n) for n in ["IMG_1.JPG", "IMG_2.DNG", "IMG_10.JPG", "other_3.jpg", "noext"]]
    shots = catalog.same_shots(asked)
    named = {os.path.basename(p): [os.path.relpath(s, folder) for s in shot] for p, shot in shots.items()}
    assert named == {
        "IMG_1.JPG": ["IMG_1.CR2"],
        "IMG_2.DNG": ["IMG_2.JPG"],
        "IMG_10.JPG": [],
        "other_3.jpg": [],
        "noext": [],
    }
    catalog.close()
