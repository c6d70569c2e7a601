"""Bad input is recorded as failed with a readable reason; awkward but valid files index."""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clifs.engine.library import Library
from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes
from indexer.pipeline import Pipeline
from tests.conftest import run_clifs


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge image, with a tiny body: a decompression bomb's shape."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _jpeg_claiming(jpeg: bytes, width: int, height: int) -> bytes:
    """A real JPEG whose frame header (SOF0) is rewritten to promise ``width`` x ``height`` pixels."""
    data = bytearray(jpeg)
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _scene(seed: int, n_objects: int = 2) -> Image.Image:
    return next(iter_scenes(HELD_OUT_SEED_BASE + seed, 1, 96, n_objects=n_objects)).image


def _jpeg_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    d = root / "photos"
    d.mkdir()
    jpeg = _jpeg_bytes(_scene(1))
    rng = np.random.default_rng(0)
    # -- must fail, each with its reason
    (d / "corrupt.jpg").write_bytes(jpeg[: len(jpeg) // 2] + rng.bytes(len(jpeg) // 2))
    png = io.BytesIO()
    _scene(2).save(png, "PNG")
    (d / "truncated.png").write_bytes(png.getvalue()[: len(png.getvalue()) // 2])
    (d / "empty.jpg").write_bytes(b"")
    (d / "text.jpg").write_text("this is not an image\n")
    (d / "bomb.png").write_bytes(_png_claiming(40000, 40000))
    (d / "forged.jpg").write_bytes(_jpeg_claiming(jpeg, 10000, 9000))  # decodes as flat grey if trusted
    os.mkfifo(d / "fifo.jpg")
    os.symlink(d / "nowhere.jpg", d / "broken_link.jpg")
    os.symlink(d / "loop_b.jpg", d / "loop_a.jpg")
    os.symlink(d / "loop_a.jpg", d / "loop_b.jpg")
    os.symlink(d, d / "folder_loop")  # a symlinked folder pointing at its parent
    # -- awkward but valid
    _scene(3).convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).save(d / "grey16.png")
    _scene(4).convert("P", palette=Image.Palette.ADAPTIVE).save(d / "palette.png")
    upright = _scene(5, n_objects=3)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    upright.transpose(Image.Transpose.ROTATE_90).save(d / "rotated.jpg", exif=exif, quality=95)
    Image.new("RGB", (1, 1), (200, 30, 30)).save(d / "one_pixel.png")
    Image.new("RGB", (6000, 60), (30, 30, 200)).save(d / "very_wide.png")
    _scene(6).save(d / "café 日本 ünïcödé.png")
    _scene(7).save(d / ("long_" + "x" * 200 + ".png"))
    _scene(8).save(d / 'it\'s a "quoted" name with spaces.png')
    (d / "UPPER.JPG").write_bytes(_jpeg_bytes(_scene(9)))
    # -- excluded: in neither list
    (d / ".hidden.png").write_bytes(png.getvalue())
    for sub in (".git", "node_modules", "@eaDir"):
        (d / sub).mkdir()
        (d / sub / "inside.png").write_bytes(png.getvalue())
    (d / "._resource_fork.png").write_bytes(png.getvalue())

    query = root / "upright.png"
    upright.save(query)
    home = root / "home"
    proc = run_clifs(home, "index", str(d), "--json", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    listed = run_clifs(home, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return home, d, query, json.loads(proc.stdout)[0], {Path(e["path"]).name: e for e in json.loads(listed.stdout)}


FAILURES = {
    "corrupt.jpg": "corrupt",
    "truncated.png": "truncated",
    "empty.jpg": "empty file",
    "text.jpg": "not an image",
    "bomb.png": "too large",
    "forged.jpg": "truncated image: its header promises 10000x9000 pixels",
    "fifo.jpg": "not a regular file",
    "broken_link.jpg": "broken symbolic link",
    "loop_a.jpg": "symbolic link loop",
    "loop_b.jpg": "symbolic link loop",
}
VALID = [
    "cmyk.jpg",
    "grey16.png",
    "palette.png",
    "rotated.jpg",
    "one_pixel.png",
    "very_wide.png",
    "café 日本 ünïcödé.png",
    "long_" + "x" * 200 + ".png",
    'it\'s a "quoted" name with spaces.png',
    "UPPER.JPG",
]


@pytest.mark.parametrize("name,reason", FAILURES.items())
def test_bad_file_is_recorded_with_reason(indexed, name, reason):
    _, _, _, summary, listed = indexed
    entry = listed[name]
    assert entry["status"] == "failed"
    assert reason in entry["error"].lower()
    assert entry["items"] == 0
    assert name in {Path(f["path"]).name for f in summary["failed"]}


@pytest.mark.parametrize("name", VALID)
def test_awkward_valid_file_is_indexed(indexed, name):
    entry = indexed[4][name]
    assert entry["status"] == "ok", entry.get("error")
    assert entry["items"] == 1


def test_excluded_paths_appear_nowhere(indexed):
    _, _, _, summary, listed = indexed
    assert set(listed) == set(FAILURES) | set(VALID)
    assert summary["indexed"] == len(VALID)
    assert not any("inside.png" in f["path"] or ".hidden" in f["path"] for f in summary["failed"])


def test_exif_rotated_file_matches_its_upright_copy(indexed):
    home, _, query, _, _ = indexed
    proc = run_clifs(home, "search", "--image", str(query), "--top", "1", "--json")
    hit = json.loads(proc.stdout)[0]
    assert Path(hit["path"]).name == "rotated.jpg"
    assert hit["score"] > 0.97
    assert (hit["width"], hit["height"]) == (96, 96)


def test_failed_files_are_not_retried_until_they_change(indexed):
    home, d, _, _, _ = indexed
    proc = run_clifs(home, "index", str(d), "--json", "--no-progress")
    again = json.loads(proc.stdout)[0]
    assert again["indexed"] == 0 and again["failed"] == [] and again["encoded_images"] == 0
    assert again["unchanged"] == len(FAILURES) + len(VALID)


def test_file_deleted_between_scan_and_read(tmp_path, test_encoder):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, scene in enumerate(iter_scenes(HELD_OUT_SEED_BASE + 40, 3, 64)):
        scene.image.save(photos / f"{i}.png")
    library = Library(tmp_path / "home", encoder=test_encoder)
    pipeline = Pipeline(library)
    scan = pipeline.scan([str(photos)])
    (photos / "1.png").unlink()
    report = pipeline.index_folders([str(photos)], scan)
    assert report.added == 2
    assert report.failed == [(str(photos / "1.png"), "file disappeared before it could be read")]
    library.close()
