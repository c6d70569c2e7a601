"""The one L2 normalisation of embedding vectors the searches and vision tools share."""

from __future__ import annotations

import numpy as np


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Every vector along the last axis scaled to unit length, as float32 (a zero vector stays zero)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
