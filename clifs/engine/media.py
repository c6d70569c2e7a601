"""Safe media opening: regular files only, EXIF orientation, JPEG draft decoding, a pixel cap.

Every failure becomes a ``MediaError`` whose message a person can read.
"""

from __future__ import annotations

import hashlib
import os
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg"})

# A truncated JPEG must fail, not decode as grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False
#: A real JPEG spends at least one bit on every 8x8 block (a DC code and an end-of-block), so fewer
#: bytes than pixels / 512 means the scan data stops early and libjpeg would pad it with flat grey.
JPEG_MIN_BYTES_PER_PIXEL = 1 / 512


class MediaError(Exception):
    """A file that cannot be indexed; the message is the reason shown to the user."""


def kind_of(path: str | Path) -> str | None:
    """'image', 'video' or None, by extension (case-insensitive)."""
    ext = os.path.splitext(str(path))[1].lower()
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    return None


def check_regular_file(path: str | Path) -> os.stat_result:
    """stat() that refuses anything but a non-empty regular file (FIFOs would block a reader forever)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise MediaError("broken symbolic link") from None
        raise MediaError("file disappeared before it could be read") from None
    except OSError as exc:
        raise MediaError(f"cannot access file: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise MediaError("not a regular file (a FIFO, device or socket)")
    if st.st_size == 0:
        raise MediaError("empty file (0 bytes)")
    return st


def content_hash(path: str | Path, size: int) -> str:
    """A cheap identity for move detection: size + first MiB + last KiB (as rclip does)."""
    h = hashlib.sha1(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        if size > (1 << 20) + 1024:
            f.seek(-1024, os.SEEK_END)
            h.update(f.read())
    return h.hexdigest()


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: PIL's convert("RGB") clips at 255, so scale to 8 bits first.
        arr = np.asarray(im, dtype=np.float32)
        peak = 65535.0 if im.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        im = Image.fromarray(np.clip(arr / peak * 255.0, 0, 255).astype(np.uint8), "L")
    if im.mode == "RGB":
        return im
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, im).convert("RGB")
    return im.convert("RGB")


def _check_jpeg_size(width: int, height: int, size: int) -> None:
    """Refuse a JPEG whose header promises far more pixels than its bytes can hold (truncated or forged)."""
    if size < width * height * JPEG_MIN_BYTES_PER_PIXEL:
        raise MediaError(
            f"truncated image: its header promises {width}x{height} pixels but the file holds only {size} bytes"
        )


def open_image(path: str | Path, max_pixels: int = 120_000_000, min_side: int = 256) -> Image.Image:
    """Decode an image upright in RGB, as small as ``min_side`` allows for JPEGs.

    ``draft`` lets libjpeg downscale in the DCT (a 12 MP photo decodes ~5x faster);
    the pixel cap turns PIL's decompression-bomb warning into an error. The file's own
    upright (width, height), before any draft scaling, is in ``info["original_size"]``.
    """
    st = check_regular_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = max_pixels
            with Image.open(path) as im:
                if im.width * im.height > max_pixels:
                    raise MediaError(f"image too large ({im.width}x{im.height} pixels; the limit is {max_pixels})")
                w, h = im.size  # before draft() shrinks it
                if im.format == "JPEG":
                    _check_jpeg_size(w, h, st.st_size)
                    im.draft("RGB", (min_side, min_side))
                im.seek(0)  # first frame of a GIF
                im.load()
                turned = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)
                rgb = _to_rgb(ImageOps.exif_transpose(im))
                rgb.info["original_size"] = (h, w) if turned else (w, h)
                return rgb
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaError(
            f"image too large: refused as a possible decompression bomb (limit {max_pixels} pixels)"
        ) from None
    except UnidentifiedImageError:
        raise MediaError("not an image PIL can read (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise MediaError(f"corrupt or truncated image: {exc}") from None
