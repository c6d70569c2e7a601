"""Perceptual hashes (the DCT "pHash"): near-identical pictures differ in a few bits.

Used to confirm that two photos whose embeddings are nearly equal are copies of one picture, not
two pictures of the same kind of thing: two photos of a plain wall embed alike, but the faint
gradients and texture the hash records differ. Resizing, recompression and light blur change only
the finest detail, which a hash (the 8x8 lowest frequencies of a 32x32 grey copy) does not see.

A crop moves everything, so one hash per picture is not enough: a picture's signature is the hash of
the whole and of centred crops of 4, 8 and 12 %, and two signatures are compared whole against each
crop both ways, so a copy cropped by up to ~15 % still lies within a few bits (bench/duplicates_calibration.py).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

SIDE = 32
BITS = 8  # an 8x8 block of frequencies: 64 bits per hash
CROPS = (0.0, 0.04, 0.08, 0.12)  # share of width and height cut off, half from each side
SIGNATURE_BYTES = 8 * len(CROPS)


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m.astype(np.float32)


_DCT = _dct_matrix(SIDE)[:BITS]


def _hash(grey: Image.Image) -> bytes:
    small = np.asarray(grey.resize((SIDE, SIDE), Image.Resampling.LANCZOS), dtype=np.float32)
    low = (_DCT @ small @ _DCT.T).ravel()  # (8, 8) lowest frequencies
    bits = low > np.median(low[1:])  # the DC term (overall brightness) does not set the median
    return np.packbits(bits).tobytes()


def perceptual_signature(image: Image.Image) -> bytes:
    """The hashes of the whole picture and of its centred crops (``CROPS``), ``SIGNATURE_BYTES`` long."""
    grey = image.convert("L")
    if min(grey.size) > 8 * SIDE:
        grey = grey.reduce(max(1, min(grey.size) // (8 * SIDE)))  # cheap box pre-shrink; Lanczos finishes
    w, h = grey.size
    out = b""
    for share in CROPS:
        dx, dy = int(w * share / 2), int(h * share / 2)
        out += _hash(grey.crop((dx, dy, w - dx, h - dy)) if share else grey)
    return out


def _words(signature: bytes) -> list[int]:
    return [int.from_bytes(signature[i : i + 8], "big") for i in range(0, len(signature), 8)]


def distance(a: bytes, b: bytes) -> int:
    """Bits (of 64) between two signatures: each whole picture against every crop of the other."""
    wa, wb = _words(a), _words(b)
    return min(min((wa[0] ^ y).bit_count() for y in wb), min((x ^ wb[0]).bit_count() for x in wa))


def is_signature(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == SIGNATURE_BYTES
