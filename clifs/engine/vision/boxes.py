"""Open-vocabulary boxes: proposals from the dense masks, each scored by CLIP on its crop.

ViLD's inference idea (Gu et al. 2022) without ViLD's trained detector: a region is
embedded by the image tower and compared with the label texts. Proposals are the
connected components of the language-driven masks: per label, of all labels
together (a region whose pixels were split between labels), and of each label's
probability above half its peak (an object whose pixels the background narrowly
won, boxed as class-activation maps are). Each crop is embedded at 1× and 1.5× context and the two are averaged (the
object alone, and the object with its surroundings, as ViLD ensembles them).

Calibration: a crop's score for a label is its softmax probability against the
queries, a contrast vocabulary (other things it could be) and the background terms.
Without the contrast terms the best query wins even when it is absent; with them
an absent label has to beat every other plausible name, and does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from clifs.engine.models.base import Encoder
from clifs.engine.models.numpy_ops import l2_normalise
from clifs.engine.vision.dense import DenseOptions, Segmentation, segment
from clifs.engine.vision.labels import embed_labels, probabilities
from clifs.engine.vision.vocabulary import background_labels, contrast_labels

Box = tuple[int, int, int, int]  # x, y, w, h in image pixels
#: A label's "maximum" for relative thresholds: a high quantile, so one stray bright pixel does not set it.
_PEAK_QUANTILE = 0.99
#: Components thinner than this share of the image's short side are edge artefacts, not objects.
_MIN_SIDE = 0.03


@dataclass(frozen=True)
class BoxOptions:
    #: Boxes scoring below this are not reported.
    threshold: float = 0.5
    #: Crop sizes relative to the box; the crop embeddings are averaged.
    contexts: tuple[float, ...] = (1.0, 1.5)
    nms_iou: float = 0.5
    #: Components smaller than this share of the image are not proposals.
    min_area: float = 0.002
    #: At most this many proposals are embedded (most label-like first): each costs an image pass per context.
    max_proposals: int = 8
    dense: DenseOptions = field(default_factory=DenseOptions)


@dataclass(frozen=True)
class Detection:
    label: str
    score: float
    box: Box

    def as_dict(self) -> dict:
        return {"label": self.label, "score": self.score, "box": list(self.box)}


def detect(
    encoder: Encoder,
    image: Image.Image,
    labels: Sequence[str],
    options: BoxOptions = BoxOptions(),
    contrast: Sequence[str] | None = None,
    background: Sequence[str] | None = None,
) -> list[Detection]:
    """Boxes for ``labels`` in ``image``, best first, each with a calibrated score ≥ ``options.threshold``."""
    labels = list(dict.fromkeys(labels))
    background = list(background_labels(encoder) if background is None else background)
    seg = segment(encoder, image, labels, background, options.dense)
    boxes = proposals(seg, image.size, options.min_area)[: options.max_proposals]
    if not boxes:
        return []
    scores = score_boxes(encoder, image, boxes, labels, contrast, background, options)
    return _select(boxes, scores, labels, options)


def proposals(seg: Segmentation, image_size: tuple[int, int], min_area: float, relative: float = 0.5) -> list[Box]:
    """Boxes around connected components, in image pixels, without duplicates, most label-like first.

    Components of each label's pixels, of all labels' pixels together (one region split
    between labels), and of each label's probability above ``relative`` × its peak (as
    class-activation maps are boxed): that last one still finds an object whose pixels
    the background terms narrowly won. A component ranks by the highest mean probability
    any label has over it, so a cap on proposals drops background blobs, not small objects.
    """
    sx, sy = image_size[0] / seg.label_map.shape[1], image_size[1] / seg.label_map.shape[0]
    masks = [seg.label_map == i for i in range(len(seg.labels))] + [seg.label_map >= 0]
    peaks = [float(np.quantile(p, _PEAK_QUANTILE)) for p in seg.probabilities]
    masks += [p >= relative * peak for p, peak in zip(seg.probabilities, peaks, strict=True) if peak > 0]
    found: list[tuple[float, Box]] = []
    for mask in masks:
        n, components, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        for k in range(1, n):
            x, y, w, h, area = stats[k]
            if area >= min_area * mask.size and min(w, h) >= _MIN_SIDE * min(mask.shape):
                inside = components == k
                confidence = max(float(p[inside].mean()) for p in seg.probabilities)
                found.append((confidence, (round(x * sx), round(y * sy), max(1, round(w * sx)), max(1, round(h * sy)))))
    found.sort(key=lambda t: -t[0])
    unique: list[Box] = []
    for _, box in found:
        if all(box_iou(box, other) < 0.9 for other in unique):
            unique.append(box)
    return unique


def score_boxes(
    encoder: Encoder,
    image: Image.Image,
    boxes: Sequence[Box],
    labels: Sequence[str],
    contrast: Sequence[str] | None,
    background: Sequence[str],
    options: BoxOptions,
) -> np.ndarray:
    """(n_boxes, n_labels): each crop's probability of each label against labels + contrast + background."""
    taken = {label.lower() for label in labels}
    others = [c for c in (contrast_labels(encoder) if contrast is None else contrast) if c.lower() not in taken]
    others = list(dict.fromkeys(others + [b for b in background if b.lower() not in taken]))
    texts = embed_labels(encoder, list(labels) + others, options.dense.template_set)
    image = image.convert("RGB")
    fill = tuple(int(c) for c in np.asarray(image).reshape(-1, 3).mean(0))
    crops = [_crop(image, box, c, fill) for box in boxes for c in options.contexts]
    emb = encoder.encode_pil(crops).reshape(len(boxes), len(options.contexts), -1)
    emb = l2_normalise(emb.mean(axis=1))
    return probabilities(emb, texts, encoder.logit_scale)[:, : len(labels)]


def box_iou(a: Box, b: Box) -> float:
    inter = _intersection(a, b)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter) if inter else 0.0


def _intersection(a: Box, b: Box) -> int:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return max(0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0, min(ay + ah, by + bh) - max(ay, by))


def _crop(image: Image.Image, box: Box, context: float, fill: tuple[int, ...]) -> Image.Image:
    """A square around the box, ``context`` times its longer side; outside the image is the image's mean colour.

    Square, so the encoder's centre crop cuts nothing off; padded rather than clamped, so the
    object stays centred, as in the single-object images CLIP learned names from.
    """
    x, y, w, h = box
    side = max(2, round(max(w, h) * context))
    left, top = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
    canvas = Image.new("RGB", (side, side), fill)
    region = image.crop((max(0, left), max(0, top), min(image.width, left + side), min(image.height, top + side)))
    canvas.paste(region, (max(0, -left), max(0, -top)))
    return canvas


def _select(boxes: Sequence[Box], scores: np.ndarray, labels: Sequence[str], options: BoxOptions) -> list[Detection]:
    """Every (box, label) pair scoring at least the threshold, best first, minus any box that
    overlaps a better one of its label by IoU ≥ ``nms_iou`` (greedy non-maximum suppression)."""
    pairs = sorted((tuple(p) for p in np.argwhere(scores >= options.threshold)), key=lambda p: -scores[p])
    kept: list[Detection] = []
    for b, i in pairs:
        if all(d.label != labels[i] or box_iou(boxes[b], d.box) < options.nms_iou for d in kept):
            kept.append(Detection(labels[i], float(scores[b, i]), boxes[b]))
    return kept
