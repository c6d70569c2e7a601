"""The interfaces every model backend implements: the text side alone, the whole encoder, and its
optional capabilities (towers to export for ONNX Runtime, features at every image location).

Importing this module does not import torch: on a CPU, indexing and searching run the exported
towers (clifs.engine.models.model_cache, onnx_runtime) and never need it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
from PIL import Image

from clifs.engine.errors import ModelUnavailable

if TYPE_CHECKING:
    import torch

__all__ = [
    "DenseFeatures",
    "Encoder",
    "FeatureMap",
    "ModelUnavailable",
    "OnnxParts",
    "PatchFeatures",
    "TextEncoder",
    "pick_device",
]


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


@dataclass
class OnnxParts:
    """A model's towers as torch modules to export to ONNX, with what runs them without torch: see
    ``Encoder.onnx_parts`` and clifs.engine.models.onnx_export."""

    #: (B, 3, S, S) float32 pixels -> (B, dim) L2-normalised; None when the image side cannot be exported.
    image: torch.nn.Module | None
    #: clifs.engine.models.onnx_runtime.ImagePrep as JSON: what turns an image into those pixels.
    prep: dict | None
    #: (B, L) int64 token ids [and attention mask] -> (B, dim) L2-normalised; None when it cannot be exported.
    text: torch.nn.Module | None
    #: A ``tokenizers`` JSON that gives the model's token ids, and the onnx_runtime.Tokenizer spec around it.
    tokenizer_json: str | None
    tokenizer: dict | None
    #: The files the model was loaded from; the export is valid while they are unchanged.
    sources: list[Path]
    #: "patch" or "map" when ``dense()`` gives features (the torch model is loaded for them), else None.
    dense: str | None = None
    #: The towers an int8 graph is made for. Not a CNN's image tower: int8 leaves convolutions fp32
    #: (onnx_export.INT8_SKIPPED_OPS), so it runs no faster (the starter's: 133-137 against 139-152 img/s fp32).
    quantize: tuple[str, ...] = ("image", "text")


class PatchFeatures(ABC):
    """A ViT's patch tokens as features in the text space, for any window of pixels.

    Masks resize an image to whole patches and slide windows of ``native`` pixels over it.
    """

    #: Pixels per patch side.
    patch: int
    #: The input size the model was trained at.
    native: int
    #: Where ``patch_features`` wants its pixels.
    device: torch.device

    @abstractmethod
    def normalise_pixels(self, unit: torch.Tensor) -> torch.Tensor:
        """A (3, H, W) image in [0, 1] -> the model's normalised pixels."""

    @abstractmethod
    def patch_features(self, pixels: torch.Tensor, method: str, sigma: float = 5.0) -> torch.Tensor:
        """(B, 3, H, W) normalised pixels -> (B, H/p, W/p, dim) L2-normalised features in the text space.

        ``method`` is the last block's attention (clifs.engine.vision.METHODS); ``sigma`` NACLIP's
        neighbourhood in patches.
        """


class FeatureMap(ABC):
    """One coarse feature map of a whole image, computed at the model's own scale."""

    @abstractmethod
    def dense_features(self, image: Image.Image) -> np.ndarray:
        """An image -> (h, w, dim) features in the text space, one per cell of the model's grid."""


#: What masks and boxes are computed from: per-window patch tokens, or one map per image.
DenseFeatures: TypeAlias = PatchFeatures | FeatureMap


class Encoder(TextEncoder):
    """Maps images and texts into one space (the whole model, on torch)."""

    #: Counts images passed through the image tower (tests use it to prove vectors were reused).
    images_encoded: int = 0

    @abstractmethod
    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """An RGB PIL image -> a (C, H, W) tensor ready for ``encode_images``. Thread-safe."""

    @abstractmethod
    def _encode_images(self, batch: torch.Tensor) -> np.ndarray: ...

    def onnx_parts(self) -> OnnxParts | None:
        """The towers to export for ONNX Runtime (the CPU runtime); None when this model has none."""
        return None

    def dense(self) -> DenseFeatures | None:
        """Features at every image location, for masks and boxes; None when this model has none."""
        return None

    def stack(self, items: list) -> torch.Tensor:
        """Items from ``preprocess`` -> one batch for ``encode_images``."""
        import torch

        return torch.stack(items)

    def encode_images(self, batch: torch.Tensor) -> np.ndarray:
        """A stacked batch from ``preprocess`` -> (n, dim) float32, L2-normalised."""
        out = self._encode_images(batch)
        self.images_encoded += len(batch)
        return out

    def encode_pil(self, images: list[Image.Image]) -> np.ndarray:
        return self.encode_images(self.stack([self.preprocess(im) for im in images]))


def pick_device(requested: str = "auto") -> str:
    import torch

    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"
