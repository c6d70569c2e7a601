"""Language-driven masks without training: per-pixel CLIP features dotted with label embeddings.

LSeg's idea (pixel features · text embeddings, H·W·C × C·N → H·W·N) needs pixel
features in CLIP's joint space. A plain CLIP ViT's last-block patch tokens are
poor at that ("vanilla", kept as the baseline): the residual stream and the
attention to global tokens wash out locality. ClearCLIP (Lan et al. 2024) and
NACLIP (Hajimiri et al. 2025) fix it without training by changing only the last
block: q, k, v from ``ln_1(x)``; attention softmax(q·qᵀ/√d) (ClearCLIP) or
softmax(k·kᵀ/√d + a Gaussian neighbourhood bias) (NACLIP); ``out_proj``; no
residual, no MLP; then ``ln_post`` and ``proj`` on every patch token.

Around that: the positional embedding is interpolated for sizes the model was not
trained at (open_clip does not), large images go through sliding windows at the
native size, queries compete with a background vocabulary, and PAMR can snap the
patch-level masks to colour edges. Encoders that expose ``dense_features`` (the
starter model's class-activation features) take a coarse path with the same output.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from clifs.engine.models.base import Encoder
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
    return _open_clip_vit(encoder) is not None or hasattr(encoder, "dense_features")


def patch_features(encoder: Encoder, pixels: torch.Tensor, method: str = "naclip", sigma: float = 5.0) -> torch.Tensor:
    """Normalised pixels (B, 3, H, W) -> (B, H/p, W/p, dim) L2-normalised patch features in the text space."""
    visual = _open_clip_vit(encoder)
    if visual is None:
        raise _unsupported(encoder)
    with torch.inference_mode():
        return _DenseViT.of(visual).patch_features(pixels, method, sigma)


def similarity_maps(
    encoder: Encoder, image: Image.Image, text_embeddings: np.ndarray, options: DenseOptions = DenseOptions()
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine of every location with every text: ((n_texts, h, w), the image as a (3, h, w) tensor in [0, 1]).

    Both are at the working resolution (the resized image for a ViT, the image scaled to
    the feature grid's aspect for coarse encoders); callers resize to what they need.
    """
    texts = torch.from_numpy(np.asarray(text_embeddings, dtype=np.float32))
    image = image.convert("RGB")
    visual = _open_clip_vit(encoder)
    if visual is not None:
        return _DenseViT.of(visual).similarity(image, texts, options)
    if hasattr(encoder, "dense_features"):
        feats = torch.from_numpy(np.asarray(encoder.dense_features(image), dtype=np.float32))
        cos = torch.einsum("hwc,nc->nhw", F.normalize(feats, dim=-1), texts)
        scale = min(1.0, _COARSE_WORKING_SIDE / min(image.size))
        small = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.BICUBIC)
        return cos, _to_unit_tensor(small)
    raise _unsupported(encoder)


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
    visual = _open_clip_vit(encoder)
    patch = visual.patch_size[0] if visual is not None else max(1, unit_image.shape[-1] // maps.shape[-1])
    maps = F.interpolate(maps[None], size=unit_image.shape[-2:], mode="bilinear", align_corners=False)
    return pamr(unit_image[None], maps, dilations=(max(1, patch // 2), patch))[0]


def _output_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    w, h = size
    scale = min(1.0, max_side / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def _to_unit_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)


def _open_clip_vit(encoder: Encoder):
    """The encoder's open_clip VisionTransformer if the dense recipe applies to it, else None."""
    from open_clip.transformer import ResidualAttentionBlock, VisionTransformer

    visual = getattr(getattr(encoder, "model", None), "visual", None)
    if not isinstance(visual, VisionTransformer) or visual.attn_pool is not None or visual.proj is None:
        return None
    last = visual.transformer.resblocks[-1]
    if not isinstance(last, ResidualAttentionBlock) or hasattr(last, "ln_1_kv"):
        return None  # qk-norm / scaled-cosine blocks and cross-attention use other attention modules
    return visual


class _DenseViT:
    """Patch features of one open_clip VisionTransformer, with its per-size caches."""

    _instances: weakref.WeakKeyDictionary[torch.nn.Module, _DenseViT] = weakref.WeakKeyDictionary()

    def __init__(self, visual) -> None:
        import open_clip

        self.visual = weakref.proxy(visual)  # the cache must not keep a dropped model alive
        self.patch = visual.patch_size[0]
        self.native = visual.image_size[0]
        cfg = open_clip.get_model_preprocess_cfg(visual)
        mean = cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)
        std = cfg.get("std", open_clip.OPENAI_DATASET_STD)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.device = next(visual.parameters()).device
        self._pos: dict[tuple[int, int], torch.Tensor] = {}
        self._bias: dict[tuple[int, int, float], torch.Tensor] = {}

    @classmethod
    def of(cls, visual) -> _DenseViT:
        if visual not in cls._instances:
            cls._instances[visual] = cls(visual)
        return cls._instances[visual]

    @torch.inference_mode()
    def similarity(
        self, image: Image.Image, texts: torch.Tensor, options: DenseOptions
    ) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.patch
        short = options.short_side or round(1.5 * self.native)
        scale = short / min(image.size)
        w, h = (max(p, round(side * scale / p) * p) for side in image.size)
        resized = image.resize((w, h), Image.BICUBIC)
        unit = _to_unit_tensor(resized)
        x = (unit - self.mean) / self.std
        win = options.window if options.window is not None else self.native
        win = win if win == 0 else max(p, win // p * p)
        win_h, win_w = (h, w) if win == 0 else (min(win, h), min(win, w))
        stride = max(p, round((options.stride or max(win_h, win_w) / 2) / p) * p)
        ys, xs = _starts(h, win_h, stride, p), _starts(w, win_w, stride, p)
        texts = texts.to(self.device)
        total = torch.zeros(len(texts), h // p, w // p)
        count = torch.zeros(1, h // p, w // p)
        boxes = [(y, x0) for y in ys for x0 in xs]
        for i in range(0, len(boxes), 8):  # a few windows per batch: faster than one by one, bounded memory
            chunk = boxes[i : i + 8]
            batch = torch.stack([x[:, y : y + win_h, x0 : x0 + win_w] for y, x0 in chunk]).to(self.device)
            feats = self.patch_features(batch, options.method, options.sigma)
            cos = torch.einsum("bhwc,nc->bnhw", feats, texts).float().cpu()
            for (y, x0), c in zip(chunk, cos, strict=True):
                total[:, y // p : y // p + c.shape[1], x0 // p : x0 // p + c.shape[2]] += c
                count[:, y // p : y // p + c.shape[1], x0 // p : x0 // p + c.shape[2]] += 1
        return total / count, unit

    def patch_features(self, x: torch.Tensor, method: str, sigma: float = 5.0) -> torch.Tensor:
        """(B, 3, H, W) normalised pixels -> (B, H/p, W/p, dim) L2-normalised features in the text space."""
        v = self.visual
        tokens = v.conv1(x)
        b, _, gh, gw = tokens.shape
        tokens = tokens.flatten(2).transpose(1, 2)
        cls = v.class_embedding.view(1, 1, -1).expand(b, -1, -1).to(tokens.dtype)
        tokens = torch.cat([cls, tokens], dim=1) + self._positional(gh, gw).to(tokens.dtype)
        tokens = v.ln_pre(tokens)
        blocks = v.transformer.resblocks
        batch_first = getattr(v.transformer, "batch_first", True)
        tokens = tokens if batch_first else tokens.transpose(0, 1)
        for block in blocks[:-1]:
            tokens = block(tokens)
        if method == "vanilla":
            tokens = blocks[-1](tokens)
            tokens = tokens if batch_first else tokens.transpose(0, 1)
        else:
            tokens = tokens if batch_first else tokens.transpose(0, 1)
            tokens = self._last_block(tokens, method, gh, gw, sigma)
        out = v.ln_post(tokens[:, 1:]) @ v.proj
        return F.normalize(out.float(), dim=-1).view(b, gh, gw, -1)

    def _last_block(self, x: torch.Tensor, method: str, gh: int, gw: int, sigma: float) -> torch.Tensor:
        """The modified last block on (B, L, D) tokens: self-similarity attention, no residual, no MLP."""
        block = self.visual.transformer.resblocks[-1]
        attn = block.attn
        b, n, d = x.shape
        heads = attn.num_heads
        q, k, v = F.linear(block.ln_1(x), attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.reshape(b, n, heads, d // heads).transpose(1, 2) for t in (q, k, v))
        if method == "clearclip":
            out = F.scaled_dot_product_attention(q, q, v)
        elif method == "naclip":
            out = F.scaled_dot_product_attention(k, k, v, attn_mask=self._gaussian_bias(gh, gw, sigma).to(x.dtype))
        else:
            raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        out = attn.out_proj(out.transpose(1, 2).reshape(b, n, d))
        return block.ls_1(out)

    def _positional(self, gh: int, gw: int) -> torch.Tensor:
        """The positional embedding for a gh × gw grid, bicubically interpolated from the trained grid."""
        if (gh, gw) not in self._pos:
            pos = self.visual.positional_embedding
            n0 = pos.shape[0] - 1
            g0h, g0w = self.visual.grid_size
            if (gh, gw) == (g0h, g0w) or n0 != g0h * g0w:
                self._pos[(gh, gw)] = pos
            else:
                grid = pos[1:].reshape(1, g0h, g0w, -1).permute(0, 3, 1, 2).float()
                grid = F.interpolate(grid, size=(gh, gw), mode="bicubic", align_corners=False)
                grid = grid.permute(0, 2, 3, 1).reshape(gh * gw, -1).to(pos.dtype)
                self._pos[(gh, gw)] = torch.cat([pos[:1], grid])
        return self._pos[(gh, gw)]

    def _gaussian_bias(self, gh: int, gw: int, sigma: float) -> torch.Tensor:
        """NACLIP's additive attention bias exp(-dist²/2σ²) between patches; 0 to and from the class token."""
        key = (gh, gw, sigma)
        if key not in self._bias:
            yy, xx = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
            pts = torch.stack([yy.flatten(), xx.flatten()], dim=1).float()
            gauss = torch.exp(-torch.cdist(pts, pts).pow(2) / (2 * sigma**2))
            bias = torch.zeros(gh * gw + 1, gh * gw + 1)
            bias[1:, 1:] = gauss
            self._bias[key] = bias.to(self.device)
        return self._bias[key]


def _starts(length: int, window: int, stride: int, patch: int) -> list[int]:
    """Window offsets covering [0, length) at most ``stride`` apart, spread evenly on the patch grid."""
    if length <= window:
        return [0]
    n = math.ceil((length - window) / stride) + 1
    return [round(i * (length - window) / (n - 1) / patch) * patch for i in range(n)]
