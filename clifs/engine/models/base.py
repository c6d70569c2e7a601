"""The interfaces every model backend implements: the text side alone, and the whole encoder.

Importing this module does not import torch: a text search runs on the text side only
(clifs.engine.models.text_towers) and never needs it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from clifs.engine.errors import ModelUnavailable

if TYPE_CHECKING:
    import torch

    from clifs.engine.models.text_towers import TextTowerExport

__all__ = ["Encoder", "ModelUnavailable", "TextEncoder", "normalise", "pick_device"]


class TextEncoder(ABC):
    """Maps texts into a model's embedding space; every embedding is L2-normalised float32.

    ``model_id`` names the space: architecture + weights tag + checksum. Vectors of
    different model ids are never mixed.
    """

    #: Stable identity of the embedding space (architecture, weights, checksum).
    model_id: str
    #: What to show a person ("CLIP ViT-B-32 (laion2b_s34b_b79k)").
    display_name: str
    #: Embedding width.
    dim: int
    #: True for a real CLIP-style contrastive model; False for the offline starter model.
    is_clip: bool = True
    #: Multiplier for zero-shot softmax (CLIP's exponentiated logit scale).
    logit_scale: float = 100.0

    @abstractmethod
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Texts -> (n, dim) float32, L2-normalised."""


class Encoder(TextEncoder):
    """Maps images and texts into one space (the whole model, on torch)."""

    #: Counts images passed through the image tower (tests use it to prove vectors were reused).
    images_encoded: int = 0

    @abstractmethod
    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """An RGB PIL image -> a (C, H, W) tensor ready for ``encode_images``. Thread-safe."""

    @abstractmethod
    def _encode_images(self, batch: torch.Tensor) -> np.ndarray: ...

    def export_text_tower(self) -> TextTowerExport | None:
        """The text side as plain arrays, for searches that skip torch; None when this model has no such export."""
        return None

    def encode_images(self, batch: torch.Tensor) -> np.ndarray:
        """A stacked batch from ``preprocess`` -> (n, dim) float32, L2-normalised."""
        out = self._encode_images(batch)
        self.images_encoded += len(batch)
        return out

    def encode_pil(self, images: list[Image.Image]) -> np.ndarray:
        import torch

        return self.encode_images(torch.stack([self.preprocess(im) for im in images]))


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def pick_device(requested: str = "auto") -> str:
    import torch

    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"
