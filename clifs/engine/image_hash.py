"""A 64-bit perceptual hash (the DCT "pHash"): near-identical pictures differ in a few bits.

Used to confirm that two photos whose embeddings are nearly equal are copies of one picture, not
two pictures of the same kind of thing: two photos of a plain wall embed alike, but the faint
gradients and texture the hash records differ. Resizing, recompression and light blur change only
the finest detail, which the hash (the 8x8 lowest frequencies of a 32x32 grey copy) does not see.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

SIDE = 32
BITS = 8  # an 8x8 block of frequencies: 64 bits


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m.astype(np.float32)


_DCT = _dct_matrix(SIDE)[:BITS]


def perceptual_hash(image: Image.Image) -> int:
    """The hash as a signed 64-bit integer (what SQLite stores)."""
    grey = image.convert("L")
    if min(grey.size) > 4 * SIDE:
        grey = grey.reduce(max(1, min(grey.size) // (4 * SIDE)))  # cheap box pre-shrink; Lanczos finishes
    small = np.asarray(grey.resize((SIDE, SIDE), Image.Resampling.LANCZOS), dtype=np.float32)
    low = _DCT @ small @ _DCT.T  # (8, 8) lowest frequencies
    flat = low.ravel()
    bits = flat > np.median(flat[1:])  # the DC term (overall brightness) does not set the median
    value = int.from_bytes(np.packbits(bits).tobytes(), "big")
    return value - (1 << 64) if value >= 1 << 63 else value


def hamming(a: int, b: int) -> int:
    return ((a ^ b) & 0xFFFF_FFFF_FFFF_FFFF).bit_count()
