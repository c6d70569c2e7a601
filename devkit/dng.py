"""Minimal DNG files for tests and benchmarks: an RGGB Bayer mosaic of a picture, optionally with an
embedded JPEG preview, EXIF date, camera and orientation, written as the TIFF structure the DNG 1.4
specification describes (so LibRaw reads it like a camera's DNG).

The camera space is linear sRGB (ColorMatrix1 is XYZ -> linear sRGB), so LibRaw's demosaic gives
back roughly the colours of the picture.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image

BYTE, ASCII, SHORT, LONG, RATIONAL, SRATIONAL = 1, 2, 3, 4, 5, 10
_SIZE = {BYTE: 1, ASCII: 1, SHORT: 2, LONG: 4, RATIONAL: 8, SRATIONAL: 8}
XYZ_TO_LINEAR_SRGB = [3.2406, -1.5372, -0.4986, -0.9689, 1.8758, 0.0415, 0.0557, -0.2040, 1.0570]


def _linear(rgb: np.ndarray) -> np.ndarray:
    c = rgb.astype(np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def bayer_rggb(image: Image.Image) -> np.ndarray:
    """The picture as a 16-bit RGGB mosaic of linear light (even width and height)."""
    rgb = _linear(np.asarray(image.convert("RGB")))
    h, w = (rgb.shape[0] // 2) * 2, (rgb.shape[1] // 2) * 2
    rgb = rgb[:h, :w]
    mosaic = np.empty((h, w), np.uint16)
    scale = 65535.0
    mosaic[0::2, 0::2] = rgb[0::2, 0::2, 0] * scale
    mosaic[0::2, 1::2] = rgb[0::2, 1::2, 1] * scale
    mosaic[1::2, 0::2] = rgb[1::2, 0::2, 1] * scale
    mosaic[1::2, 1::2] = rgb[1::2, 1::2, 2] * scale
    return mosaic


class _Tiff:
    """Little-endian TIFF writer: IFDs are laid out after the data blocks they point to."""

    def __init__(self):
        self.buf = bytearray(b"II*\x00\x00\x00\x00\x00")

    def blob(self, data: bytes) -> int:
        if len(self.buf) % 2:
            self.buf += b"\x00"
        offset = len(self.buf)
        self.buf += data
        return offset

    def ifd(self, entries: list[tuple[int, int, list]], next_ifd: int = 0) -> int:
        """Write an IFD of (tag, type, values); returns its offset."""
        entries = sorted(entries)
        # values that do not fit in 4 bytes go first
        packed = []
        for tag, kind, values in entries:
            raw = _pack(kind, values)
            count = len(raw) // _SIZE[kind] if kind != ASCII else len(raw)
            if len(raw) <= 4:
                packed.append((tag, kind, count, raw.ljust(4, b"\x00")))
            else:
                packed.append((tag, kind, count, struct.pack("<I", self.blob(raw))))
        offset = self.blob(struct.pack("<H", len(packed)))
        for tag, kind, count, value in packed:
            self.buf += struct.pack("<HHI", tag, kind, count) + value
        self.buf += struct.pack("<I", next_ifd)
        return offset

    def finish(self, first_ifd: int) -> bytes:
        self.buf[4:8] = struct.pack("<I", first_ifd)
        return bytes(self.buf)


def _pack(kind: int, values) -> bytes:
    if kind == ASCII:
        return values.encode() + b"\x00"
    if kind == BYTE:
        return bytes(values)
    if kind == SHORT:
        return struct.pack(f"<{len(values)}H", *values)
    if kind == LONG:
        return struct.pack(f"<{len(values)}I", *values)
    if kind in (RATIONAL, SRATIONAL):
        fmt = "<ii" if kind == SRATIONAL else "<II"
        out = b""
        for v in values:
            num, den = v if isinstance(v, tuple) else (round(v * 10000), 10000)
            out += struct.pack(fmt, num, den)
        return out
    raise ValueError(kind)


def write_dng(
    path: str | Path,
    image: Image.Image,
    *,
    preview: Image.Image | None = None,
    orientation: int = 1,
    make: str | None = "clifs",
    model: str | None = "Test DNG",
    taken: str | None = None,  # "2019:07:14 15:30:00"
    offset: str | None = None,  # "+02:00"
) -> Path:
    """Write ``image`` as a DNG; ``preview`` (RGB) is embedded as a baseline JPEG when given."""
    mosaic = bayer_rggb(image)
    h, w = mosaic.shape
    t = _Tiff()
    raw_data = t.blob(mosaic.tobytes())
    exif_ifd = None
    if taken:
        exif_entries = [(0x9003, ASCII, taken), (0x9004, ASCII, taken)]
        if offset:
            exif_entries.append((0x9011, ASCII, offset))
        exif_ifd = t.ifd(exif_entries)
    raw_entries = [
        (254, LONG, [0]),
        (256, LONG, [w]),
        (257, LONG, [h]),
        (258, SHORT, [16]),
        (259, SHORT, [1]),
        (262, SHORT, [32803]),
        (273, LONG, [raw_data]),
        (277, SHORT, [1]),
        (278, LONG, [h]),
        (279, LONG, [mosaic.nbytes]),
        (284, SHORT, [1]),
        (33421, SHORT, [2, 2]),
        (33422, BYTE, [0, 1, 1, 2]),
        (50714, LONG, [0]),
        (50717, LONG, [65535]),
    ]
    common = [
        (274, SHORT, [orientation]),
        (50706, BYTE, [1, 4, 0, 0]),
        (50707, BYTE, [1, 1, 0, 0]),
        (50708, ASCII, f"{make or ''} {model or ''}".strip() or "clifs"),
        (50721, SRATIONAL, XYZ_TO_LINEAR_SRGB),
        (50728, RATIONAL, [1.0, 1.0, 1.0]),
        (50778, SHORT, [21]),
    ]
    if make:
        common.append((271, ASCII, make))
    if model:
        common.append((272, ASCII, model))
    if taken:
        common.append((306, ASCII, taken))
    if exif_ifd is not None:
        common.append((34665, LONG, [exif_ifd]))
    if preview is None:
        first = t.ifd(raw_entries + common)
        return _write(path, t.finish(first))
    buf = io.BytesIO()
    preview.convert("RGB").save(buf, "JPEG", quality=90)
    jpeg = buf.getvalue()
    jpeg_at = t.blob(jpeg)
    raw_ifd = t.ifd(raw_entries)
    pw, ph = preview.size
    preview_entries = [
        (254, LONG, [1]),
        (256, LONG, [pw]),
        (257, LONG, [ph]),
        (258, SHORT, [8, 8, 8]),
        (259, SHORT, [7]),
        (262, SHORT, [6]),
        (273, LONG, [jpeg_at]),
        (277, SHORT, [3]),
        (278, LONG, [ph]),
        (279, LONG, [len(jpeg)]),
        (330, LONG, [raw_ifd]),
    ]
    first = t.ifd(preview_entries + common)
    return _write(path, t.finish(first))


def _write(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.write_bytes(data)
    return path
