"""Near-duplicate copies of a picture, and look-alikes that are not copies, for tests and the calibration bench.

Copies: resized, recompressed, lightly cropped, blurred (and combinations a phone or a messenger makes).
Not copies: two photos of a plain wall (one wall, different light), two views of one place (overlapping
crops of a wider picture).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def crop(image: Image.Image, share: float) -> Image.Image:
    """``share`` of the width and height cut off, half from each side."""
    w, h = image.size
    dx, dy = int(w * share / 2), int(h * share / 2)
    return image.crop((dx, dy, w - dx, h - dy))


def copies(image: Image.Image) -> dict[str, Image.Image]:
    """What happens to a photo on its way around: each is a copy of ``image``."""
    w, h = image.size
    return {
        "resized": image.resize((w // 2, h // 2), Image.Resampling.LANCZOS),
        "recompressed": _jpeg(image, 35),
        "cropped": crop(image, 0.08),
        "cropped_side": image.crop((int(w * 0.06), 0, w, h)),  # 6% off the left edge only
        "blurred": image.filter(ImageFilter.GaussianBlur(radius=max(1.0, w / 256))),
        "shared": _jpeg(crop(image, 0.04).resize((w * 3 // 4, h * 3 // 4), Image.Resampling.BILINEAR), 60),
    }


def plain_walls(size: int = 384, seed: int = 0) -> tuple[Image.Image, Image.Image]:
    """Two different photos of one plain painted wall: the same paint, different light and plaster."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    paint = np.array([196.0, 186.0, 168.0])
    out = []
    for light in ((0.85, 1.1, 0.0), (1.08, 0.9, 0.6)):
        left, right, tilt = light
        fall = left + (right - left) * xx + 0.08 * tilt * np.sin(np.pi * yy)
        plaster = rng.normal(0, 3.0, (size // 8, size // 8))
        plaster = np.asarray(Image.fromarray(plaster.astype(np.float32)).resize((size, size), Image.Resampling.BICUBIC))
        pixels = paint[None, None, :] * fall[..., None] + plaster[..., None] + rng.normal(0, 1.5, (size, size, 1))
        out.append(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB"))
    return out[0], out[1]


def two_views(place: Image.Image, overlap: float = 0.5) -> tuple[Image.Image, Image.Image]:
    """Two photos of one place: side-by-side windows of ``place`` that share ``overlap`` of their width."""
    w, h = place.size
    width = int(w / (2 - overlap))
    return place.crop((0, 0, width, h)), place.crop((w - width, 0, w, h))
