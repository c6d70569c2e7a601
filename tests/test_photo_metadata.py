"""When a photo was taken, with what, and where (issue 13): read from real EXIF in JPEG, HEIC, AVIF and DNG
files and from an MP4's header, stored in the catalog, and used by filters and sorting that combine with
any search, although every file's mtime is today."""

from __future__ import annotations

import datetime as dt
import json
import struct
from pathlib import Path

import cv2
import numpy as np
import pillow_heif
import pytest
from PIL import Image

from clifs.engine.library import Library
from clifs.engine.photo_metadata import (
    PhotoMeta,
    camera_name,
    date_bound,
    from_exif,
    parse_exif_date,
    video_metadata,
    wall_clock_seconds,
)
from devkit.dng import write_dng
from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes
from tests.conftest import run_clifs

pillow_heif.register_heif_opener()


def _exif(
    original: str | None = None,
    digitized: str | None = None,
    plain: str | None = None,
    offset: str | None = None,
    make: str | None = None,
    model: str | None = None,
    gps: tuple[float, float] | None = None,
) -> Image.Exif:
    exif = Image.Exif()
    sub = exif.get_ifd(0x8769)
    if original:
        sub[0x9003] = original
    if digitized:
        sub[0x9004] = digitized
    if offset:
        sub[0x9011] = offset
    if plain:
        exif[0x0132] = plain
    if make:
        exif[0x010F] = make
    if model:
        exif[0x0110] = model
    if gps:
        lat, lon = gps
        g = exif.get_ifd(0x8825)

        def dms(x: float):
            x = abs(x)
            d = int(x)
            m = int((x - d) * 60)
            s = round(((x - d) * 60 - m) * 60, 4)
            return (d, m, s)

        g[1], g[2] = ("N" if lat >= 0 else "S"), dms(lat)
        g[3], g[4] = ("E" if lon >= 0 else "W"), dms(lon)
    return exif


def _mp4_created(path: Path, when: dt.datetime) -> None:
    """A real MP4 (OpenCV's writer) whose movie header says it was created at ``when`` (UTC)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5, (64, 64))
    for i in range(10):
        writer.write(np.full((64, 64, 3), 20 * i, np.uint8))
    writer.release()
    data = bytearray(path.read_bytes())
    at = data.index(b"mvhd") + 4
    assert data[at] == 0  # version 0: 32-bit times
    seconds = int((when - dt.datetime(1904, 1, 1, tzinfo=dt.timezone.utc)).total_seconds())
    data[at + 4 : at + 8] = struct.pack(">I", seconds)  # creation_time
    data[at + 8 : at + 12] = struct.pack(">I", seconds)  # modification_time
    path.write_bytes(bytes(data))


# -- unit: what is read from a tag ------------------------------------------------------------------
def test_dates_prefer_original_then_digitized_then_datetime_with_their_offsets():
    assert from_exif(_exif("2019:07:14 15:30:00", "2019:07:15 10:00:00", "2020:01:01 00:00:00", "+02:00")).taken == (
        "2019-07-14T15:30:00+02:00"
    )
    assert from_exif(_exif(None, "2019:07:15 10:00:00", "2020:01:01 00:00:00")).taken == "2019-07-15T10:00:00"
    assert from_exif(_exif(None, None, "2020:01:01 00:00:00")).taken == "2020-01-01T00:00:00"
    blank = from_exif(_exif("    :  :     :  :  ", "0000:00:00 00:00:00", "2021:02:03 04:05:06"))
    assert blank.taken == "2021-02-03T04:05:06" and blank.taken_from == "exif"
    assert from_exif(Image.Exif()) == PhotoMeta()


def test_exif_date_text_forms():
    assert parse_exif_date("2019:07:14 15:30:00") == "2019-07-14T15:30:00"
    assert parse_exif_date(b"2019:07:14 15:30:00\x00", "-05:30") == "2019-07-14T15:30:00-05:30"
    assert parse_exif_date("2019-07-14T15:30") == "2019-07-14T15:30:00"
    assert parse_exif_date("2019:02:30 10:00:00") is None  # no such day
    assert parse_exif_date("1970:01:01 00:00:00") is None  # a zero clock
    assert parse_exif_date("garbage") is None


def test_wall_clock_is_where_the_photo_was_taken():
    # 23:30 in Tokyo on the 14th is on the 14th, whatever the offset says about UTC
    at = wall_clock_seconds("2019-07-14T23:30:00+09:00")
    assert date_bound("2019-07-14") <= at < date_bound("2019-07-14", end=True)


def test_gps_and_camera_names():
    meta = from_exif(_exif("2019:07:14 15:30:00", make="Apple", model="iPhone 12", gps=(48.8584, -2.2945)))
    assert meta.latitude == pytest.approx(48.8584, abs=1e-4) and meta.longitude == pytest.approx(-2.2945, abs=1e-4)
    assert meta.camera == "Apple iPhone 12"
    assert camera_name("Canon", "Canon EOS 5D Mark IV") == "Canon EOS 5D Mark IV"
    assert camera_name("NIKON CORPORATION", "NIKON D750") == "NIKON D750"
    assert camera_name(None, None) is None and camera_name("Leica", None) == "Leica"
    assert from_exif(_exif(gps=(0.0, 0.0))).latitude is None  # no fix


def test_date_bounds_include_both_ends():
    assert date_bound("2019-07") == wall_clock_seconds("2019-07-01T00:00:00")
    assert date_bound("2019-07", end=True) == wall_clock_seconds("2019-08-01T00:00:00")
    assert date_bound("2019-12", end=True) == wall_clock_seconds("2020-01-01T00:00:00")
    assert date_bound("2019", end=True) == wall_clock_seconds("2020-01-01T00:00:00")
    assert date_bound(dt.date(2019, 7, 14), end=True) == wall_clock_seconds("2019-07-15T00:00:00")
    for bad in ("2019-13", "july", "2019-02-30"):
        with pytest.raises(ValueError):
            date_bound(bad)


def test_an_mp4s_creation_time_is_its_date(tmp_path):
    _mp4_created(tmp_path / "clip.mp4", dt.datetime(2015, 8, 20, 12, 0, tzinfo=dt.timezone.utc))
    meta = video_metadata(tmp_path / "clip.mp4")
    assert meta.taken_from == "video"
    assert dt.datetime.fromisoformat(meta.taken) == dt.datetime(2015, 8, 20, 12, 0, tzinfo=dt.timezone.utc)


# -- end to end -------------------------------------------------------------------------------------
FILES = {
    # name: (EXIF date, the camera clifs names)
    "paris.jpg": ("2019-07-14", "Apple iPhone 12"),
    "ski.heic": ("2018-03-02", "Apple iPhone 8"),
    "newyear.avif": ("2017-12-31", "Google Pixel 2"),
    "camera.dng": ("2016-05-05", "Canon EOS 5D Mark IV"),
    "beach.mp4": ("2015-08-20", None),
    "today.png": (None, None),
}


@pytest.fixture(scope="module")
def dated(tmp_path_factory):
    root = tmp_path_factory.mktemp("dated")
    photos = root / "photos"
    photos.mkdir()
    scenes = [s.image for s in iter_scenes(HELD_OUT_SEED_BASE + 60, 6, 96, n_objects=2)]
    scenes[0].save(
        photos / "paris.jpg",
        exif=_exif("2019:07:14 23:30:00", offset="+02:00", make="Apple", model="iPhone 12", gps=(48.8584, 2.2945)),
        quality=92,
    )
    scenes[1].save(photos / "ski.heic", exif=_exif("2018:03:02 09:15:00", make="Apple", model="iPhone 8").tobytes())
    scenes[2].save(
        photos / "newyear.avif", exif=_exif(plain="2017:12:31 23:59:00", make="Google", model="Pixel 2").tobytes()
    )
    write_dng(
        photos / "camera.dng",
        scenes[3],
        preview=scenes[3],
        make="Canon",
        model="Canon EOS 5D Mark IV",
        taken="2016:05:05 08:00:00",
        offset="-04:00",
    )
    _mp4_created(photos / "beach.mp4", dt.datetime(2015, 8, 20, 12, 0, tzinfo=dt.timezone.utc))
    scenes[5].save(photos / "today.png")
    home = root / "home"
    proc = run_clifs(home, "index", str(photos), "--json", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    listed = run_clifs(home, "list", "--json")
    return home, photos, {Path(e["path"]).name: e for e in json.loads(listed.stdout)}


def _search(home: Path, *args: str) -> list[dict]:
    proc = run_clifs(home, "search", "a shape", "--top", "20", "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _names(hits: list[dict]) -> list[str]:
    return [Path(h["path"]).name for h in hits]


def test_list_carries_the_date_and_camera_of_every_file(dated):
    _, _, listed = dated
    assert set(listed) == set(FILES)
    for name, (day, camera) in FILES.items():
        entry = listed[name]
        assert entry["status"] == "ok", entry.get("error")
        assert entry["camera"] == camera
        if day:
            assert entry["taken"].startswith(day if name != "beach.mp4" else "2015-08-2"), (name, entry)
            assert entry["taken_from"] == ("video" if name == "beach.mp4" else "exif")
        else:
            assert entry["taken_from"] == "mtime"  # the marked fallback: today
            assert entry["taken"].startswith(dt.date.fromtimestamp(Path(dated[1] / name).stat().st_mtime).isoformat())
    assert listed["paris.jpg"]["taken"] == "2019-07-14T23:30:00+02:00"
    assert listed["camera.dng"]["taken"] == "2016-05-05T08:00:00-04:00"


def test_search_hits_carry_taken_camera_and_position(dated):
    hits = {Path(h["path"]).name: h for h in _search(dated[0])}
    paris = hits["paris.jpg"]
    assert paris["taken"] == "2019-07-14T23:30:00+02:00" and paris["camera"] == "Apple iPhone 12"
    assert paris["latitude"] == pytest.approx(48.8584, abs=1e-3) and paris["longitude"] == pytest.approx(
        2.2945, abs=1e-3
    )
    assert hits["today.png"]["taken_from"] == "mtime" and hits["today.png"]["camera"] is None


@pytest.mark.parametrize(
    "args,expected",
    [
        (("--taken-after", "2019-07", "--taken-before", "2019-08"), {"paris.jpg"}),
        (("--taken-after", "2019-07-14", "--taken-before", "2019-07-15"), {"paris.jpg"}),  # 23:30 local, +02:00
        (("--taken-after", "2019-07-15", "--taken-before", "2019-12"), set()),
        (("--taken-before", "2017"), {"camera.dng", "beach.mp4"}),
        (("--taken-before", "2018"), {"camera.dng", "beach.mp4", "newyear.avif"}),  # 2017-12-31 23:59
        (("--taken-after", "2017-12-31", "--taken-before", "2018-03-03"), {"newyear.avif", "ski.heic"}),
        (("--taken-after", "2018-03-02T09:15", "--taken-before", "2018-03-02T09:16"), {"ski.heic"}),
        (("--taken-after", "2016", "--taken-before", "2019"), {"camera.dng", "newyear.avif", "ski.heic"}),
        (("--camera", "iphone"), {"paris.jpg", "ski.heic"}),
        (("--camera", "EOS 5D"), {"camera.dng"}),
        (("--camera", "iphone", "--taken-before", "2018-12"), {"ski.heic"}),
        (("--camera", "iphone", "--kind", "video"), set()),
    ],
)
def test_date_and_camera_filters_combine_with_a_search(dated, args, expected):
    assert set(_names(_search(dated[0], *args))) == expected


def test_sort_taken_orders_by_date_with_the_fallback_last_dated_today(dated):
    names = _names(_search(dated[0], "--sort", "taken"))
    assert names == ["beach.mp4", "camera.dng", "newyear.avif", "ski.heic", "paris.jpg", "today.png"]


def test_sort_taken_stays_within_the_cut_offs(dated):
    by_score = _search(dated[0], "--top", "3")
    by_date = _search(dated[0], "--top", "3", "--sort", "taken")
    assert set(_names(by_date)) == set(_names(by_score))
    dates = [h["taken"] for h in by_date]
    assert [wall_clock_seconds(d) for d in dates] == sorted(wall_clock_seconds(d) for d in dates)


@pytest.mark.parametrize(
    "args,message",
    [
        (("--taken-after", "2019-13"), "is not a real date"),
        (("--taken-before", "last week"), "is not a date"),
        (("--taken-after", "2020", "--taken-before", "2019"), "is not earlier than --taken-before"),
        (("--taken-after", "2019-07", "--taken-before", "2019-07"), "no date lies between them"),
        (("--camera", "  "), "--camera needs some text"),
    ],
)
def test_bad_filters_are_usage_errors(dated, args, message):
    proc = run_clifs(dated[0], "search", "a shape", *args)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_no_results_names_the_date_and_camera_filters(dated):
    proc = run_clifs(dated[0], "search", "a shape", "--camera", "hasselblad", "--taken-after", "2019")
    assert proc.returncode == 0 and proc.stdout == ""
    assert "from a camera named like 'hasselblad'" in proc.stderr and "taken on or after 2019" in proc.stderr


def test_the_python_api_filters_and_sorts_the_same(dated, test_encoder):
    home = dated[0]
    library = Library(home, encoder=test_encoder)
    try:
        hits = library.search(text="a shape", top=20, taken_after="2019-07", taken_before=dt.date(2019, 8, 1))
        assert _names([h.to_json() for h in hits]) == ["paris.jpg"]
        iphone = library.search(text="a shape", top=20, camera="IPHONE", sort="taken")
        assert [Path(h.path).name for h in iphone] == ["ski.heic", "paris.jpg"]
        assert iphone[1].camera == "Apple iPhone 12" and iphone[1].taken_from == "exif"
        with pytest.raises(ValueError):
            library.search(text="a shape", sort="size")
        assert dict(library.catalog.cameras())["Apple iPhone 12"] == 1
    finally:
        library.close()
