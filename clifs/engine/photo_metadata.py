"""When a photo was taken, with what camera, and where: from EXIF, RAW headers and video containers.

Dates are kept the way the camera wrote them: the wall-clock time where the photo was taken, with its
UTC offset when the file records one (EXIF's OffsetTime* tags). ``taken_at`` is that wall-clock time
as seconds since 1970-01-01 read as if it were UTC, so "taken on 2019-07-14" means the 14th where the
photo was taken, wherever the person searching is. A file with no recorded date falls back to its
modification time, marked ``taken_from="mtime"``.

No decoding here: EXIF comes from the already opened PIL image or from the first bytes of the file.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import re
import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Pillow is imported where a picture is read: a text search never needs it
    from PIL import Image


log = logging.getLogger(__name__)

_EPOCH = dt.datetime(1970, 1, 1)
#: EXIF IFD pointers and tags (EXIF 2.32).
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
MAKE, MODEL, DATETIME = 0x010F, 0x0110, 0x0132
DATETIME_ORIGINAL, DATETIME_DIGITIZED = 0x9003, 0x9004
OFFSET_TIME, OFFSET_TIME_ORIGINAL, OFFSET_TIME_DIGITIZED = 0x9010, 0x9011, 0x9012
#: (date tag, its offset tag, the IFD it lives in), best first.
DATE_TAGS = (
    (DATETIME_ORIGINAL, OFFSET_TIME_ORIGINAL, EXIF_IFD),
    (DATETIME_DIGITIZED, OFFSET_TIME_DIGITIZED, EXIF_IFD),
    (DATETIME, OFFSET_TIME, None),
)
_DATE = re.compile(r"^\s*(\d{4})[:\-/](\d{2})[:\-/](\d{2})[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?")
_OFFSET = re.compile(r"^\s*([+-])(\d{2}):?(\d{2})\s*$")
#: Where a date came from: the photo's own EXIF, LibRaw's reading of a RAW file, a video container, mtime.
SOURCES = ("exif", "raw", "video", "mtime")


@dataclass(frozen=True)
class PhotoMeta:
    """What a file says about itself; every field may be unknown (None)."""

    taken: str | None = None  # ISO 8601, the wall-clock time where it was taken, with "+hh:mm" when known
    taken_from: str | None = None  # one of SOURCES
    camera_make: str | None = None
    camera_model: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    phash: bytes | None = None  # perceptual signature of the picture (clifs.engine.image_hash)

    @property
    def taken_at(self) -> float | None:
        """The wall-clock time of ``taken`` as seconds since 1970 read as UTC (for filters and sorting)."""
        return wall_clock_seconds(self.taken) if self.taken else None

    @property
    def camera(self) -> str | None:
        return camera_name(self.camera_make, self.camera_model)

    def with_mtime_fallback(self, mtime: float) -> PhotoMeta:
        if self.taken:
            return self
        return replace(self, taken=mtime_iso(mtime), taken_from="mtime")


def wall_clock_seconds(iso: str) -> float | None:
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        return None
    return (moment.replace(tzinfo=None) - _EPOCH).total_seconds()


def mtime_iso(mtime: float) -> str:
    """A modification time as this machine's local wall clock, with its offset."""
    try:
        return dt.datetime.fromtimestamp(mtime).astimezone().replace(microsecond=0).isoformat()
    except (OverflowError, OSError, ValueError):
        return _EPOCH.isoformat()


def camera_name(make: str | None, model: str | None) -> str | None:
    """ "Canon" + "Canon EOS 5D" is "Canon EOS 5D"; "NIKON CORPORATION" + "NIKON D750" is "NIKON D750"."""
    make, model = (make or "").strip(), (model or "").strip()
    if not model:
        return make or None
    first = make.split()[0].lower() if make else ""
    if not make or model.lower().startswith(first):
        return model
    return f"{make} {model}"


def _text(value) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value or None


def parse_exif_date(value, offset=None) -> str | None:
    """ "2019:07:14 15:30:00" (+ "+02:00") as ISO 8601; None for blanks and impossible dates."""
    text = _text(value)
    m = _DATE.match(text or "")
    if not m:
        return None
    year, month, day, hour, minute = (int(g) for g in m.groups()[:5])
    second = int(m.group(6) or 0)
    try:
        moment = dt.datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError:
        return None
    if year < 1900 or moment == _EPOCH:  # "0000:00:00" fails above; 1970-01-01 00:00 is a zero time_t
        return None
    iso = moment.isoformat()
    om = _OFFSET.match(_text(offset) or "")
    if om and int(om.group(2)) <= 14 and int(om.group(3)) < 60:
        iso += f"{om.group(1)}{om.group(2)}:{om.group(3)}"
    return iso


def _degrees(value, ref) -> float | None:
    try:
        d, m, s = (float(x) for x in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    deg = d + m / 60.0 + s / 3600.0
    if (_text(ref) or "").upper() in ("S", "W"):
        deg = -deg
    return deg


def from_exif(exif: Image.Exif | None) -> PhotoMeta:
    """Date, camera and position from a parsed EXIF block (empty when there is none)."""
    if exif is None or len(exif) == 0:
        return PhotoMeta()
    try:
        sub = exif.get_ifd(EXIF_IFD)
    except Exception:  # a damaged sub-IFD pointer: use what IFD0 has
        sub = {}
    taken = None
    for tag, offset_tag, ifd in DATE_TAGS:
        source = sub if ifd == EXIF_IFD else exif
        value = source.get(tag) or (exif.get(tag) if ifd == EXIF_IFD else sub.get(tag))
        offset = sub.get(offset_tag) or exif.get(offset_tag)
        taken = parse_exif_date(value, offset)
        if taken:
            break
    lat = lon = None
    try:
        gps = exif.get_ifd(GPS_IFD)
    except Exception:
        gps = {}
    if gps:
        lat, lon = _degrees(gps.get(2), gps.get(1)), _degrees(gps.get(4), gps.get(3))
        if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
            lat = lon = None
    return PhotoMeta(
        taken=taken,
        taken_from="exif" if taken else None,
        camera_make=_text(exif.get(MAKE)),
        camera_model=_text(exif.get(MODEL)),
        latitude=lat,
        longitude=lon,
    )


def from_tiff_header(head: bytes) -> PhotoMeta:
    """EXIF of a TIFF-based RAW (DNG, CR2, NEF, ARW, PEF, ...) from the file's first bytes."""
    if head[:4] not in (b"II*\x00", b"MM\x00*"):
        return PhotoMeta()
    from PIL import Image

    exif = Image.Exif()
    try:
        exif.load(head)
    except Exception:
        return PhotoMeta()
    return from_exif(exif)


def from_raw(raw, path: str | Path | None = None) -> PhotoMeta:
    """A RAW file's metadata: its TIFF EXIF when it has one, else the embedded preview's, else LibRaw's date."""
    meta = PhotoMeta()
    if path is not None:
        with open(path, "rb") as f:
            meta = from_tiff_header(f.read(1 << 20))
    if not meta.taken or not meta.camera_model:
        try:
            thumb = raw.extract_thumb()
            data = thumb.data if isinstance(thumb.data, bytes) else None
        except Exception:
            data = None
        if data:
            from PIL import Image

            try:
                with Image.open(io.BytesIO(data)) as im:
                    preview = from_exif(im.getexif())
            except Exception:
                preview = PhotoMeta()
            meta = _merge(meta, preview)
    if not meta.taken:
        try:
            stamp = raw.other.timestamp
        except Exception:
            stamp = None
        if isinstance(stamp, dt.datetime) and stamp.year > 1970:
            meta = replace(meta, taken=stamp.replace(tzinfo=None, microsecond=0).isoformat(), taken_from="raw")
    return meta


def _merge(first: PhotoMeta, second: PhotoMeta) -> PhotoMeta:
    """``first``'s fields, the unknown ones filled from ``second``."""
    out = {}
    for name in PhotoMeta.__dataclass_fields__:
        a = getattr(first, name)
        out[name] = a if a is not None else getattr(second, name)
    if first.taken is None and second.taken is not None:
        out["taken_from"] = second.taken_from
    return PhotoMeta(**out)


# -- videos ---------------------------------------------------------------------------------------
_MP4_EPOCH = dt.datetime(1904, 1, 1, tzinfo=dt.timezone.utc)
_CONTAINERS = {b"moov", b"trak", b"udta", b"meta", b"mdia"}
_XYZ = re.compile(r"^([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)")


def _atoms(f, start: int, end: int):
    """(type, payload start, payload end) of the ISO BMFF boxes in [start, end)."""
    pos = start
    while pos + 8 <= end:
        f.seek(pos)
        header = f.read(16)
        if len(header) < 8:
            return
        size, kind = struct.unpack(">I4s", header[:8])
        body = pos + 8
        if size == 1:
            if len(header) < 16:
                return
            size = struct.unpack(">Q", header[8:16])[0]
            body = pos + 16
        elif size == 0:
            size = end - pos
        if size < 8 or pos + size > end:
            return
        yield kind, body, pos + size
        pos += size


def video_metadata(path: str | Path) -> PhotoMeta:
    """An MP4/MOV's creation time (``mvhd``, UTC, shown in this machine's zone) and ``©xyz`` position."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            moov = next(((b, e) for k, b, e in _atoms(f, 0, size) if k == b"moov"), None)
            if moov is None:
                return PhotoMeta()
            taken = lat = lon = None
            for kind, body, end in _atoms(f, *moov):
                if kind == b"mvhd":
                    f.seek(body)
                    version = f.read(4)[0]
                    raw = f.read(8 if version == 1 else 4)
                    seconds = int.from_bytes(raw, "big")
                    if seconds > 0:
                        when = _MP4_EPOCH + dt.timedelta(seconds=seconds)
                        if when.year > 1970:
                            taken = when.astimezone().replace(microsecond=0).isoformat()
                elif kind == b"udta":
                    for sub, sbody, send in _atoms(f, body, end):
                        if sub == b"\xa9xyz" and send - sbody < 256:
                            f.seek(sbody + 4)  # 2-byte length, 2-byte language
                            m = _XYZ.match(f.read(send - sbody - 4).decode("latin-1"))
                            if m:
                                lat, lon = float(m.group(1)), float(m.group(2))
            if lat is not None and not (-90 <= lat <= 90 and -180 <= (lon or 0) <= 180):
                lat = lon = None
            return PhotoMeta(taken=taken, taken_from="video" if taken else None, latitude=lat, longitude=lon)
    except (OSError, IndexError, ValueError, OverflowError, struct.error):
        return PhotoMeta()


def read_metadata(path: str | Path, kind: str, mtime: float) -> PhotoMeta:
    """A file's metadata without decoding it (for files indexed before clifs read metadata); mtime fallback."""
    from clifs.engine.media import is_raw

    meta = PhotoMeta()
    try:
        if kind == "video":
            meta = video_metadata(path)
        elif is_raw(path):
            import rawpy

            with rawpy.imread(str(path)) as raw:
                meta = from_raw(raw, path)
        else:
            from PIL import Image

            with Image.open(path) as im:
                meta = from_exif(im.getexif())
    except Exception as exc:  # unreadable now: the date falls back to mtime, the next change re-reads
        log.info("no metadata from %s: %s", path, exc)
    return meta.with_mtime_fallback(mtime)


# -- dates a person types ---------------------------------------------------------------------------
_BOUND = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2}))?)?)?)?$")


def date_bound(value: str | float | dt.date | None, end: bool = False) -> float | None:
    """A filter bound as wall-clock seconds: the start of the period ``value`` names, or with ``end``
    the start of the next one (a range that includes the whole of its last day, as a date picker means).

    ``value`` is "2019", "2019-07", "2019-07-14", "2019-07-14T15:30[:00]", a ``date``/``datetime``,
    or already wall-clock seconds (used as is). Raises ``ValueError`` saying what is accepted.
    """
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, dt.datetime):
        start = value.replace(tzinfo=None)
        return ((start + dt.timedelta(seconds=1) if end else start) - _EPOCH).total_seconds()
    if isinstance(value, dt.date):
        value = value.isoformat()
    m = _BOUND.match(str(value).strip())
    if not m:
        raise ValueError(f"{value!r} is not a date: use YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH:MM")
    year, month, day, hour, minute, second = m.groups()
    try:
        if month is None:
            start = dt.datetime(int(year), 1, 1)
            after = dt.datetime(int(year) + 1, 1, 1)
        elif day is None:
            start = dt.datetime(int(year), int(month), 1)
            after = dt.datetime(int(year) + int(month) // 12, int(month) % 12 + 1, 1)
        elif hour is None:
            start = dt.datetime(int(year), int(month), int(day))
            after = start + dt.timedelta(days=1)
        else:
            start = dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
            after = start + (dt.timedelta(seconds=1) if second else dt.timedelta(minutes=1))
    except ValueError:
        raise ValueError(f"{value!r} is not a real date") from None
    return ((after if end else start) - _EPOCH).total_seconds()
