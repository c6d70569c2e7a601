"""What is in this picture, without a query: group the dense features into regions and name each one.

GroupViT's idea (Xu et al. 2022: patches grouped bottom-up by what they look like, each group
then matched to text) without GroupViT's trained grouping tokens: the patch features that the
masks already compute (clifs.engine.vision.dense) are merged bottom-up, and only between
neighbouring regions (the spatial prior), always the pair whose merge costs least (Ward's
criterion on the L2-normalised features). The number of groups comes from the picture: merging
stops when the cheapest merge would join regions whose mean features are less alike than
``RegionOptions.merge_cosine``. The patch-level groups are refined to pixels along colour edges
(PAMR), and each region is named by embedding it (its pixels on the image's mean colour, a
square crop around it) and labelling that embedding against a vocabulary plus background terms,
with the "none fits" rule (clifs.engine.vision.labels.FitRule): a region that is background, or
that no name fits, is left unnamed; its best guess is kept as a guess.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from clifs.engine.models.base import Encoder, PatchFeatures
from clifs.engine.models.numpy_ops import l2_normalise
from clifs.engine.vision.boxes import Box
from clifs.engine.vision.dense import DenseOptions, _output_size, dense_features
from clifs.engine.vision.labels import embed_labels, fit_rule, probabilities
from clifs.engine.vision.pamr import pamr
from clifs.engine.vision.vocabulary import background_labels, default_labels


@dataclass(frozen=True)
class RegionOptions:
    #: Neighbouring regions merge while their mean features' cosine is at least this (the picture's own
    #: number of groups follows); chosen on shapes-world scenes (bench/auto_segment.py --sweep).
    merge_cosine: float = 0.88
    #: Regions smaller than this share of the image are merged into their most alike neighbour.
    min_fraction: float = 0.01
    #: At most this many regions (the cheapest merges continue past ``merge_cosine`` to get there).
    max_regions: int = 12
    #: The dense pass sees at least this many patches across the image's short side (unless
    #: ``dense.short_side`` is set): 12 (the masks' default for the test model) lets small objects
    #: melt into the background; 24 localises 0.99 of the objects on the shapes world.
    patches_across: int = 24
    #: A region's crop: a square this many times its box's longer side, centred on the box; the other
    #: regions are painted over, so the context is plain. 1.2-1.5 names crosses "square" on the test
    #: model (the object fills more of the crop than any training picture's); 2.5 names 0.99 right.
    context: float = 2.5
    dense: DenseOptions = field(default_factory=lambda: DenseOptions(pamr=False))
    #: Refine the patch-level groups to pixels along colour edges.
    pamr: bool = True
    template_set: str = "compact"


@dataclass
class Region:
    #: The name that fits this region, or None (background, or nothing in the vocabulary fits).
    label: str | None
    #: The best name from the vocabulary, fitting or not (for an unnamed region: a guess); for a
    #: background region, the background term that won.
    guess: str
    #: The guess's probability against the vocabulary and the background terms.
    probability: float
    #: The guess's cosine with the region's embedding.
    cosine: float
    #: True when a background term beat every name.
    background: bool
    #: Share of the image this region covers.
    fraction: float
    box: Box  # x, y, w, h in image pixels
    mask: np.ndarray = field(repr=False)  # (h, w) bool at the segmentation's size

    def as_dict(self) -> dict:
        return {
            "label": self.label,
            "guess": self.guess,
            "probability": self.probability,
            "cosine": self.cosine,
            "background": self.background,
            "fraction": self.fraction,
            "box": list(self.box),
        }


@dataclass
class AutoSegmentation:
    regions: list[Region]
    #: (h, w) int16: index into ``regions`` for every pixel (every pixel belongs to one region).
    region_map: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        return self.region_map.shape[1], self.region_map.shape[0]

    def named(self) -> list[Region]:
        return [r for r in self.regions if r.label is not None]

    def label_map(self) -> tuple[np.ndarray, list[str]]:
        """(h, w) int16 index into the returned names (the named regions' labels, in order), -1 elsewhere."""
        names = list(dict.fromkeys(r.label for r in self.named()))
        out = np.full(self.region_map.shape, -1, np.int16)
        for i, region in enumerate(self.regions):
            if region.label is not None:
                out[self.region_map == i] = names.index(region.label)
        return out, names


def auto_segment(
    encoder: Encoder,
    image: Image.Image,
    vocabulary: Sequence[str] | None = None,
    background: Sequence[str] | None = None,
    options: RegionOptions = RegionOptions(),
) -> AutoSegmentation:
    """The regions of ``image``, largest first, each named from ``vocabulary`` (default: the model's labels)
    when a name fits, against ``background`` terms (default: the model's background vocabulary)."""
    image = image.convert("RGB")
    vocabulary = list(dict.fromkeys(default_labels(encoder) if vocabulary is None else vocabulary))
    if not vocabulary:
        raise ValueError("no labels to name regions with")
    taken = {v.lower() for v in vocabulary}
    background = [
        b for b in (background_labels(encoder) if background is None else background) if b.lower() not in taken
    ]
    feats, unit = dense_features(encoder, image, _dense_options(encoder, options))
    groups = group_patches(feats.numpy(), options)
    maps = _pixel_maps(groups, unit, encoder, options)
    out_w, out_h = _output_size(image.size, options.dense.max_output_side)
    maps = F.interpolate(maps[None], size=(out_h, out_w), mode="bilinear", align_corners=False)[0]
    region_map = maps.argmax(0)
    while len(maps) > 1:  # slivers the refinement left (a group that lost its pixels to its neighbours) go
        shares = torch.bincount(region_map.flatten(), minlength=len(maps)) / region_map.numel()
        sliver = (shares > 0) & (shares < options.min_fraction / 2)
        if not sliver.any():
            break
        maps[sliver] = -1.0
        region_map = maps.argmax(0)
    region_map = region_map.numpy().astype(np.int16)
    kept = sorted((k for k in range(len(maps)) if (region_map == k).any()), key=lambda k: -int((region_map == k).sum()))
    masks = [region_map == k for k in kept]
    regions = _name(encoder, image, masks, vocabulary, background, options)
    final = np.zeros(region_map.shape, np.int16)
    for i, region in enumerate(regions):
        final[region.mask] = i
    return AutoSegmentation(regions, final)


def _dense_options(encoder: Encoder, options: RegionOptions) -> DenseOptions:
    features = encoder.dense()
    if options.dense.short_side is not None or not isinstance(features, PatchFeatures):
        return options.dense
    short = max(round(1.5 * features.native), options.patches_across * features.patch)
    return replace(options.dense, short_side=short)


def group_patches(features: np.ndarray, options: RegionOptions = RegionOptions()) -> np.ndarray:
    """(h, w, dim) features -> (h, w) int group ids 0..k-1, by merging neighbouring regions bottom-up.

    Every patch starts as a region; the neighbouring pair that costs least to merge (Ward's criterion:
    sizes · |mean difference|²) merges first, while the pair's mean features have a cosine of at least
    ``merge_cosine`` (past it a pair merges only to honour ``max_regions``). Then each region smaller than
    ``min_fraction`` of the image joins its most alike neighbour.
    """
    h, w, _ = features.shape
    n = h * w
    x = l2_normalise(features.reshape(n, -1).astype(np.float64))
    sums, sizes = x.copy(), np.ones(n)
    owner = np.arange(n)  # patch -> its region (a region is named by one of its patches)
    neighbours: dict[int, set[int]] = {i: set() for i in range(n)}
    for i in range(n):
        r, c = divmod(i, w)
        for j in ([i + 1] if c + 1 < w else []) + ([i + w] if r + 1 < h else []):
            neighbours[i].add(j)
            neighbours[j].add(i)

    def cosine(a: int, b: int) -> float:
        return float(sums[a] @ sums[b] / (np.linalg.norm(sums[a]) * np.linalg.norm(sums[b]) + 1e-12))

    def ward(a: int, b: int) -> float:
        d = sums[a] / sizes[a] - sums[b] / sizes[b]
        return float(sizes[a] * sizes[b] / (sizes[a] + sizes[b]) * (d @ d))

    version = np.zeros(n, np.int64)
    heap = [(ward(a, b), a, b, 0, 0) for a in range(n) for b in neighbours[a] if a < b]
    heapq.heapify(heap)

    def merge(a: int, b: int) -> None:
        sums[a] += sums[b]
        sizes[a] += sizes[b]
        owner[owner == b] = a
        for o in neighbours.pop(b):
            neighbours[o].discard(b)
            if o != a:
                neighbours[o].add(a)
                neighbours[a].add(o)
        version[a] += 1
        for o in neighbours[a]:
            heapq.heappush(heap, (ward(a, o), min(a, o), max(a, o), version[min(a, o)], version[max(a, o)]))

    deferred = []  # pairs too unalike to merge now; they merge only if there are too many regions
    while heap:
        cost, a, b, va, vb = heapq.heappop(heap)
        if a not in neighbours or b not in neighbours or (va, vb) != (version[a], version[b]):
            continue  # stale: one side has merged since
        if cosine(a, b) < options.merge_cosine:
            deferred.append((cost, a, b))
            continue
        merge(a, b)
    while len(neighbours) > options.max_regions:
        pairs = [(ward(a, b), a, b) for a in neighbours for b in neighbours[a] if a < b]
        if not pairs:
            break
        merge(*min(pairs)[1:])
    min_size = options.min_fraction * n
    while True:
        small = [r for r in neighbours if sizes[r] < min_size and neighbours[r]]
        if not small:
            break
        r = min(small, key=lambda s: sizes[s])
        other = max(neighbours[r], key=lambda o: cosine(r, o))
        merge(other, r)
    ids = {root: k for k, root in enumerate(sorted(neighbours))}
    return np.array([ids[o] for o in owner]).reshape(h, w)


def _pixel_maps(groups: np.ndarray, unit: torch.Tensor, encoder: Encoder, options: RegionOptions) -> torch.Tensor:
    """Patch groups -> (k, H, W) soft maps at the working resolution, refined along colour edges."""
    k = int(groups.max()) + 1
    onehot = torch.from_numpy(np.eye(k, dtype=np.float32)[groups]).permute(2, 0, 1)
    maps = F.interpolate(onehot[None], size=unit.shape[-2:], mode="bilinear", align_corners=False)
    if options.pamr and k > 1:
        features = encoder.dense()
        patch = features.patch if isinstance(features, PatchFeatures) else max(1, unit.shape[-1] // groups.shape[1])
        maps = pamr(unit[None], maps, dilations=(max(1, patch // 2), patch))
    return maps[0]


def _name(
    encoder: Encoder,
    image: Image.Image,
    masks: list[np.ndarray],
    vocabulary: list[str],
    background: list[str],
    options: RegionOptions,
) -> list[Region]:
    """Embed each region alone (its pixels on the image's mean colour) and label it with the fit rule."""
    h, w = masks[0].shape
    sx, sy = image.width / w, image.height / h
    pixels = np.asarray(image, dtype=np.uint8)
    full_masks = [m if m.shape == pixels.shape[:2] else _resize_mask(m, image.size) for m in masks]
    means = [pixels[m].reshape(-1, 3).mean(0) if m.any() else pixels.reshape(-1, 3).mean(0) for m in full_masks]
    crops, boxes = [], []
    for mask, full in zip(masks, full_masks, strict=True):
        # Shown alone: on the plain colour of the largest other region (an object on its backdrop, without
        # the other objects), or, for the largest region itself, with its holes filled by its own colour.
        fill = np.round(means[0]).astype(np.uint8)
        ys, xs = np.nonzero(mask)
        box = (
            round(xs.min() * sx),
            round(ys.min() * sy),
            max(1, round((xs.max() - xs.min() + 1) * sx)),
            max(1, round((ys.max() - ys.min() + 1) * sy)),
        )
        boxes.append(box)
        alone = np.where(full[..., None], pixels, fill)
        crops.append(_square_crop(Image.fromarray(alone), box, options.context, tuple(int(c) for c in fill)))
    texts = embed_labels(encoder, vocabulary + background, options.template_set)
    emb = encoder.encode_pil(crops)
    probs = probabilities(emb, texts, encoder.logit_scale)
    cosines = l2_normalise(emb) @ texts.T
    rule = fit_rule(encoder)
    n = len(vocabulary)
    regions = []
    for mask, box, p, c in zip(masks, boxes, probs, cosines, strict=True):
        best = int(np.argmax(p[:n]))
        bg = bool(background) and float(p[n:].max()) > float(p[best])
        # The names are judged among themselves (the rule was calibrated so); the background terms
        # only decide whether the region is background, which is then never named.
        fits = bool(rule.fits(c[:n], p[:n] / p[:n].sum())[best]) and not bg
        guess = n + int(np.argmax(p[n:])) if bg else best
        regions.append(
            Region(
                label=vocabulary[best] if fits else None,
                guess=(vocabulary + background)[guess],
                probability=float(p[guess]),
                cosine=float(c[guess]),
                background=bg,
                fraction=float(mask.mean()),
                box=box,
                mask=mask,
            )
        )
    return regions


def _resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.NEAREST)) > 0


def _square_crop(image: Image.Image, box: Box, context: float, fill: tuple[int, ...]) -> Image.Image:
    x, y, w, h = box
    side = max(2, round(max(w, h) * context))
    left, top = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
    canvas = Image.new("RGB", (side, side), fill)
    region = image.crop((max(0, left), max(0, top), min(image.width, left + side), min(image.height, top + side)))
    canvas.paste(region, (max(0, -left), max(0, -top)))
    return canvas
