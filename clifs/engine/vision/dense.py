"""Language-driven masks without training: per-pixel CLIP features dotted with label embeddings.

LSeg's idea (pixel features · text embeddings, H·W·C × C·N → H·W·N) needs pixel
features in CLIP's joint space. The model provides them (``Encoder.dense()``): a ViT's
patch tokens with its last block changed as ClearCLIP and NACLIP do
(clifs.engine.models.openclip_dense), or a coarse map of the whole image (the starter
model's class-activation features), which takes a coarse path with the same output.

Around that: large images go through sliding windows at the model's native size,
queries compete with a background vocabulary, and PAMR can snap the patch-level masks
to colour edges.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from clifs.engine.models.base import Encoder, FeatureMap, PatchFeatures
from clifs.engine.vision import METHODS
from clifs.engine.vision.labels import embed_labels
from clifs.engine.vision.pamr import pamr
from clifs.engine.vision.vocabulary import background_labels

#: Short side of the working resolution (PAMR, the image tensor) for encoders with coarse dense features.
_COARSE_WORKING_SIDE = 384


class UnsupportedModel(ValueError):
    """The model has no dense path: masks and boxes are not supported for it."""


@dataclass(frozen=True)
class DenseOptions:
    #: "naclip" (k·kᵀ + neighbourhood), "clearclip" (q·qᵀ) or "vanilla" (the unmodified last block).
    #: NACLIP scores best on the shapes world (bench/vision_eval.py), as in its paper on real benchmarks.
    method: str = "naclip"
    #: Softmax scale over labels and background terms (ClearCLIP and NACLIP use 40-50).
    scale: float = 40.0
    #: The image is resized so its short side is this many pixels; None: 1.5 × the model's input size.
    short_side: int | None = None
    #: Sliding-window size in pixels; None: the model's input size; 0: the whole image in one pass.
    window: int | None = None
    #: Window stride; None: half a window. Windows are spread evenly, on whole patches.
    stride: int | None = None
    #: NACLIP's Gaussian neighbourhood, in patches.
    sigma: float = 5.0
    #: Edge-aware refinement: +0.05-0.09 mIoU on the shapes world, for a fraction of the dense pass's time.
    pamr: bool = True
    template_set: str = "ensemble"
    #: Maps larger than this on their long side are computed at this size (bounded memory on big photos).
    max_output_side: int = 1024


@dataclass
class Segmentation:
    """Per-label probability maps and a hard label map, at ``size`` (the image's own size unless capped)."""

    labels: list[str]
    #: (n_labels, h, w) float32: each pixel's probability of each label; the rest is background.
    probabilities: np.ndarray
    #: (h, w) float32: the summed probability of the background terms.
    background: np.ndarray
    #: (h, w) int16: index into ``labels``, -1 for background.
    label_map: np.ndarray
    background_labels: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the maps."""
        return self.label_map.shape[1], self.label_map.shape[0]

    def mask(self, label: str) -> np.ndarray:
        return self.label_map == self.labels.index(label)

    def fractions(self) -> dict[str, float]:
        """Share of the image each label covers."""
        total = self.label_map.size
        return {label: float((self.label_map == i).sum()) / total for i, label in enumerate(self.labels)}


def supports_masks(encoder: Encoder) -> bool:
    return encoder.dense() is not None


def patch_features(encoder: Encoder, pixels: torch.Tensor, method: str = "naclip", sigma: float = 5.0) -> torch.Tensor:
    """Normalised pixels (B, 3, H, W) -> (B, H/p, W/p, dim) L2-normalised patch features in the text space."""
    features = encoder.dense()
    if not isinstance(features, PatchFeatures):
        raise _unsupported(encoder)
    with torch.inference_mode():
        return features.patch_features(pixels, method, sigma)


def similarity_maps(
    encoder: Encoder, image: Image.Image, text_embeddings: np.ndarray, options: DenseOptions = DenseOptions()
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine of every location with every text: ((n_texts, h, w), the image as a (3, h, w) tensor in [0, 1]).

    Both are at the working resolution (the resized image for a ViT, the image scaled to
    the feature grid's aspect for coarse encoders); callers resize to what they need.
    """
    texts = torch.from_numpy(np.asarray(text_embeddings, dtype=np.float32))
    image = image.convert("RGB")
    features = encoder.dense()
    if isinstance(features, PatchFeatures):
        return _windowed_similarity(features, image, texts, options)
    if isinstance(features, FeatureMap):
        return _coarse_similarity(features, image, texts)
    raise _unsupported(encoder)


def dense_features(
    encoder: Encoder, image: Image.Image, options: DenseOptions = DenseOptions()
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features in the text space at every location: ((h, w, dim), the image as a (3, H, W) tensor in [0, 1]).

    A ViT's patch features averaged where sliding windows overlap (not renormalised, so that dotting
    them with a text gives exactly the averaged cosines ``similarity_maps`` returns), or a coarse
    encoder's one feature map, L2-normalised. The image tensor is at the working resolution.
    """
    image = image.convert("RGB")
    features = encoder.dense()
    if isinstance(features, PatchFeatures):
        return _windowed_features(features, image, options)
    if isinstance(features, FeatureMap):
        feats = torch.from_numpy(np.asarray(features.dense_features(image), dtype=np.float32))
        return F.normalize(feats, dim=-1), _coarse_unit_image(image)
    raise _unsupported(encoder)


@torch.inference_mode()
def _windowed_similarity(
    features: PatchFeatures, image: Image.Image, texts: torch.Tensor, options: DenseOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    """Patch features of overlapping windows, their cosines averaged where windows overlap."""
    feats, unit = _windowed_features(features, image, options)
    return torch.einsum("hwc,nc->nhw", feats, texts.to(feats.dtype)), unit


@torch.inference_mode()
def _windowed_features(
    features: PatchFeatures, image: Image.Image, options: DenseOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    """(h/p, w/p, dim) patch features, averaged over the overlapping windows; the resized image in [0, 1]."""
    p = features.patch
    short = options.short_side or round(1.5 * features.native)
    scale = short / min(image.size)
    w, h = (max(p, round(side * scale / p) * p) for side in image.size)
    resized = image.resize((w, h), Image.BICUBIC)
    unit = _to_unit_tensor(resized)
    x = features.normalise_pixels(unit)
    win = options.window if options.window is not None else features.native
    win = win if win == 0 else max(p, win // p * p)
    win_h, win_w = (h, w) if win == 0 else (min(win, h), min(win, w))
    stride = max(p, round((options.stride or max(win_h, win_w) / 2) / p) * p)
    ys, xs = _starts(h, win_h, stride, p), _starts(w, win_w, stride, p)
    total: torch.Tensor | None = None
    count = torch.zeros(h // p, w // p, 1)
    boxes = [(y, x0) for y in ys for x0 in xs]
    for i in range(0, len(boxes), 8):  # a few windows per batch: faster than one by one, bounded memory
        chunk = boxes[i : i + 8]
        batch = torch.stack([x[:, y : y + win_h, x0 : x0 + win_w] for y, x0 in chunk]).to(features.device)
        feats = features.patch_features(batch, options.method, options.sigma).float().cpu()
        if total is None:
            total = torch.zeros(h // p, w // p, feats.shape[-1])
        for (y, x0), f in zip(chunk, feats, strict=True):
            total[y // p : y // p + f.shape[0], x0 // p : x0 // p + f.shape[1]] += f
            count[y // p : y // p + f.shape[0], x0 // p : x0 // p + f.shape[1]] += 1
    assert total is not None
    return total / count, unit


def _coarse_similarity(
    features: FeatureMap, image: Image.Image, texts: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One feature map of the whole image; the working image is at most _COARSE_WORKING_SIDE on its short side."""
    feats = torch.from_numpy(np.asarray(features.dense_features(image), dtype=np.float32))
    cos = torch.einsum("hwc,nc->nhw", F.normalize(feats, dim=-1), texts)
    return cos, _coarse_unit_image(image)


def _coarse_unit_image(image: Image.Image) -> torch.Tensor:
    scale = min(1.0, _COARSE_WORKING_SIDE / min(image.size))
    small = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.BICUBIC)
    return _to_unit_tensor(small)


def _unsupported(encoder: Encoder) -> UnsupportedModel:
    return UnsupportedModel(
        f"Masks are not supported for this model ({encoder.display_name}): they need an open_clip ViT "
        "without attention pooling, or a model with dense features. Try --model ViT-B-16."
    )


def segment(
    encoder: Encoder,
    image: Image.Image,
    labels: Sequence[str],
    background: Sequence[str] | None = None,
    options: DenseOptions = DenseOptions(),
) -> Segmentation:
    """Where is each label? Queries compete with ``background`` terms (default: the model's stuff vocabulary)."""
    labels = list(dict.fromkeys(labels))
    if not labels:
        raise ValueError("no labels to segment")
    if options.method not in METHODS:
        raise ValueError(f"unknown method {options.method!r}; choose from {', '.join(METHODS)}")
    taken = {label.lower() for label in labels}
    bg_labels = [
        b for b in (background_labels(encoder) if background is None else background) if b.lower() not in taken
    ]
    texts = embed_labels(encoder, labels + bg_labels, options.template_set)
    cos, unit_image = similarity_maps(encoder, image, texts, options)
    n = len(labels)
    probs = torch.softmax(options.scale * cos, dim=0)
    # Each background term is a class of its own, as in ClearCLIP and NACLIP: a pixel is background
    # when one term beats every label (the strongest term decides); its reported probability is
    # what all the terms share. Summing the terms before the argmax instead hands the background
    # pixels it did not win (-0.03 to -0.07 mIoU on the shapes world).
    bg = probs[n:]
    zero = torch.zeros_like(probs[:1])
    maps = torch.cat([probs[:n], bg.sum(0, keepdim=True), bg.max(0, keepdim=True).values if len(bg) else zero])
    if options.pamr:
        maps = _refine(maps, unit_image, encoder)
    out_w, out_h = _output_size(image.size, options.max_output_side)
    maps = F.interpolate(maps[None], size=(out_h, out_w), mode="bilinear", align_corners=False)[0].clamp_(0, 1)
    best = torch.cat([maps[:n], maps[n + 1 :]]).argmax(0)
    label_map = torch.where(best == n, -1, best).to(torch.int16)
    return Segmentation(labels, maps[:n].numpy(), maps[n].numpy(), label_map.numpy(), bg_labels)


def _refine(maps: torch.Tensor, unit_image: torch.Tensor, encoder: Encoder) -> torch.Tensor:
    """PAMR on the probability maps at the working resolution.

    Dilations of half a patch and a patch (NACLIP's 8 and 16 at patch 16). Refining the
    probabilities (PAMR's own use) rather than every text's logits lets the background
    terms travel as two maps (their sum and their maximum) instead of one per term.
    """
    features = encoder.dense()
    patch = features.patch if isinstance(features, PatchFeatures) else max(1, unit_image.shape[-1] // maps.shape[-1])
    maps = F.interpolate(maps[None], size=unit_image.shape[-2:], mode="bilinear", align_corners=False)
    return pamr(unit_image[None], maps, dilations=(max(1, patch // 2), patch))[0]


def _output_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    w, h = size
    scale = min(1.0, max_side / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def _to_unit_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)


def _starts(length: int, window: int, stride: int, patch: int) -> list[int]:
    """Window offsets covering [0, length) at most ``stride`` apart, spread evenly on the patch grid."""
    if length <= window:
        return [0]
    n = math.ceil((length - window) / stride) + 1
    return [round(i * (length - window) / (n - 1) / patch) * patch for i in range(n)]
