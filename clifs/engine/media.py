"""Safe media opening: regular files only, EXIF orientation, JPEG draft decoding, a pixel cap.

HEIC/HEIF through pillow-heif's Pillow opener, AVIF through Pillow's own plugin, RAW (CR2, CR3, NEF,
ARW, DNG, RAF, ORF, RW2, PEF) through rawpy (LibRaw): the embedded JPEG preview when it is large
enough, a half-size demosaic only when there is none. Every failure becomes a ``MediaError`` whose
message a person can read.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from clifs.engine.errors import MediaError
from clifs.engine.photo_metadata import PhotoMeta, from_exif, from_raw

pillow_heif.register_heif_opener()

HEIF_EXTENSIONS = frozenset({".heic", ".heif", ".hif"})
RAW_EXTENSIONS = frozenset({".cr2", ".cr3", ".nef", ".arw", ".dng", ".raf", ".orf", ".rw2", ".pef"})
IMAGE_EXTENSIONS = (
    frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".avif"})
    | HEIF_EXTENSIONS
    | RAW_EXTENSIONS
)
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg"})
#: Sound files (clifs.engine.audio decodes them with PyAV), indexed when the model has an audio tower.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aiff", ".aif"})

# A truncated JPEG must fail, not decode as grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False
#: A real JPEG spends at least one bit on every 8x8 block (a DC code and an end-of-block), so fewer
#: bytes than pixels / 512 means the scan data stops early and libjpeg would pad it with flat grey.
JPEG_MIN_BYTES_PER_PIXEL = 1 / 512
#: The smallest side the indexer (and the thumbnail cache) asks for.
INDEX_SIDE = 256
#: For those, a HEIC's embedded thumbnail serves when its short side is at least this (the models' 224-px input).
HEIF_THUMBNAIL_SIDE = 224
#: Transparent pixels are shown over this mid grey: neither a white nor a black subject vanishes.
ALPHA_BACKGROUND = (128, 128, 128, 255)
#: LibRaw's ``sizes.flip`` as the PIL transpose that shows the picture upright.
_RAW_FLIP = {3: Image.Transpose.ROTATE_180, 5: Image.Transpose.ROTATE_90, 6: Image.Transpose.ROTATE_270}


def kind_of(path: str | Path) -> str | None:
    """'image', 'video', 'audio' or None, by extension (case-insensitive)."""
    ext = os.path.splitext(str(path))[1].lower()
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    if ext in AUDIO_EXTENSIONS:
        return "audio"
    return None


def is_raw(path: str | Path) -> bool:
    return os.path.splitext(str(path))[1].lower() in RAW_EXTENSIONS


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
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, ALPHA_BACKGROUND)
        return Image.alpha_composite(background, im).convert("RGB")
    return im.convert("RGB")


def _check_jpeg_size(width: int, height: int, size: int) -> None:
    """Refuse a JPEG whose header promises far more pixels than its bytes can hold (truncated or forged)."""
    if size < width * height * JPEG_MIN_BYTES_PER_PIXEL:
        raise MediaError(
            f"truncated image: its header promises {width}x{height} pixels but the file holds only {size} bytes"
        )


def open_image(
    path: str | Path, max_pixels: int = 120_000_000, min_side: int = INDEX_SIDE, describe: bool = False
) -> Image.Image:
    """Decode an image upright in RGB, as small as ``min_side`` allows for JPEGs, HEICs and RAWs.

    ``draft`` lets libjpeg downscale in the DCT (a 12 MP photo decodes ~5x faster) and pillow-heif
    pick an embedded thumbnail that is large enough; the pixel cap turns PIL's decompression-bomb
    warning into an error. The file's own upright (width, height), before any draft scaling, is in
    ``info["original_size"]``. With ``describe``, ``info["photo_meta"]`` holds the file's
    ``PhotoMeta`` (EXIF date, camera, position, and the perceptual hash of the picture).
    """
    st = check_regular_file(path)
    if is_raw(path):
        return _open_raw(path, max_pixels, min_side, describe)
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
                elif im.format == "HEIF":
                    # An embedded thumbnail at least this large: a phone's 320x240 one is enough for the
                    # model's 224-px input, and HEVC has no cheap reduced decode (12 MP: ~1.5 s here).
                    side = min(min_side, HEIF_THUMBNAIL_SIDE) if min_side <= INDEX_SIDE else min_side
                    im.draft("RGB", (side, side))
                im.seek(0)  # first frame of a GIF or an animated WebP
                im.load()
                exif = im.getexif()
                turned = exif.get(0x0112, 1) in (5, 6, 7, 8)
                rgb = _to_rgb(ImageOps.exif_transpose(im))
                rgb.info["original_size"] = (h, w) if turned else (w, h)
                if describe:
                    rgb.info["photo_meta"] = _described(from_exif(exif), rgb)
                return rgb
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaError(
            f"image too large: refused as a possible decompression bomb (limit {max_pixels} pixels)"
        ) from None
    except UnidentifiedImageError:
        ext = os.path.splitext(str(path))[1].lower()
        if ext in HEIF_EXTENSIONS or ext == ".avif":
            raise MediaError(f"corrupt or truncated {ext[1:].upper()} image (its header cannot be read)") from None
        raise MediaError("not an image PIL can read (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError, EOFError, RuntimeError) as exc:
        # pillow-heif reports a damaged HEIC as a ValueError or RuntimeError from libheif
        raise MediaError(f"corrupt or truncated image: {str(exc).strip()}") from None


def _described(meta: PhotoMeta, image: Image.Image) -> PhotoMeta:
    from dataclasses import replace

    from clifs.engine.image_hash import perceptual_signature

    return replace(meta, phash=perceptual_signature(image))


def _open_raw(path: str | Path, max_pixels: int, min_side: int, describe: bool) -> Image.Image:
    """A RAW photo upright: its embedded JPEG preview when at least ``min_side`` on its short side
    (``info["raw_decode"] = "preview"``), else LibRaw's half-size demosaic (``"demosaic"``)."""
    import rawpy

    try:
        with rawpy.imread(str(path)) as raw:
            sizes = raw.sizes
            if sizes.width * sizes.height > max_pixels:
                raise MediaError(f"image too large ({sizes.width}x{sizes.height} pixels; the limit is {max_pixels})")
            turned = sizes.flip in (5, 6)
            image, how = _raw_preview(raw, min_side, sizes.flip), "preview"
            if image is None:
                rgb = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)
                image, how = Image.fromarray(rgb, "RGB"), "demosaic"
            image.info["original_size"] = (sizes.height, sizes.width) if turned else (sizes.width, sizes.height)
            image.info["raw_decode"] = how
            if describe:
                image.info["photo_meta"] = _described(from_raw(raw, path), image)
            return image
    except MediaError:
        raise
    except rawpy.LibRawFileUnsupportedError:
        raise MediaError("not a RAW file LibRaw can read (unsupported camera or corrupt file)") from None
    except (rawpy.LibRawError, rawpy.NotSupportedError) as exc:
        raise MediaError(f"corrupt or truncated RAW file: {exc}") from None
    except MemoryError:
        raise MediaError("RAW file too large to decode in memory") from None


def _raw_preview(raw, min_side: int, flip: int) -> Image.Image | None:
    """The embedded preview, upright, when it is large enough; None when it is missing or too small."""
    import rawpy

    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawError, rawpy.NotSupportedError):
        return None
    try:
        if thumb.format == rawpy.ThumbFormat.JPEG:
            im = Image.open(io.BytesIO(thumb.data))
            if min(im.size) < min_side:
                return None
            im.draft("RGB", (min_side, min_side))
            im.load()
            own = im.getexif().get(0x0112, 1)
            upright = ImageOps.exif_transpose(im) if own != 1 else _flipped(im, flip)
            return _to_rgb(upright)
        im = Image.fromarray(thumb.data)
        return _to_rgb(_flipped(im, flip)) if min(im.size) >= min_side else None
    except (OSError, SyntaxError, ValueError, EOFError):
        return None  # a damaged preview: demosaic the sensor data instead


def _flipped(im: Image.Image, flip: int) -> Image.Image:
    return im.transpose(_RAW_FLIP[flip]) if flip in _RAW_FLIP else im
