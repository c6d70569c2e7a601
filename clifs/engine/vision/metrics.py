"""Scores against exact ground truth: mask IoU accumulated over a data set, box AP50.

Shared by the evaluation (bench/vision_eval.py) and the tests, so both measure the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from clifs.engine.vision.boxes import Box, box_iou


class MaskIoU:
    """Per-class intersection and union summed over all images (the PASCAL VOC convention), class -1 = background."""

    def __init__(self, n_classes: int) -> None:
        self.n = n_classes
        self.inter = np.zeros(n_classes + 1)
        self.union = np.zeros(n_classes + 1)
        self.seen = np.zeros(n_classes + 1, dtype=bool)

    def add(self, predicted: np.ndarray, truth: np.ndarray) -> None:
        """Two (H, W) int maps of class indices, -1 for background."""
        p, t = predicted.astype(np.int64).ravel() + 1, truth.astype(np.int64).ravel() + 1
        k = self.n + 1
        confusion = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
        diag = np.diag(confusion)
        self.inter[np.r_[self.n, : self.n]] += diag
        self.union[np.r_[self.n, : self.n]] += confusion.sum(0) + confusion.sum(1) - diag
        self.seen[np.r_[self.n, : self.n]] |= confusion.sum(1) > 0

    def per_class(self) -> np.ndarray:
        """IoU of each class that occurs in the ground truth (NaN for the others); the last entry is background."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.seen, self.inter / self.union, np.nan)

    def miou(self, with_background: bool = False) -> float:
        ious = self.per_class() if with_background else self.per_class()[: self.n]
        return float(np.nanmean(ious))


@dataclass
class BoxAP:
    """Average precision at an IoU threshold per class (all-point interpolation, as in PASCAL VOC 2010+)."""

    iou_threshold: float = 0.5
    _dets: dict[str, list[tuple[float, int, Box]]] = field(default_factory=dict)
    _truth: dict[str, dict[int, list[Box]]] = field(default_factory=dict)
    _images: int = 0

    def add(self, detections: Sequence[tuple[str, float, Box]], truth: Sequence[tuple[str, Box]]) -> None:
        """One image's (label, score, box) detections and (label, box) ground truth."""
        image = self._images
        self._images += 1
        for label, score, box in detections:
            self._dets.setdefault(label, []).append((score, image, box))
        for label, box in truth:
            self._truth.setdefault(label, {}).setdefault(image, []).append(box)

    def per_class(self) -> dict[str, float]:
        return {label: self._ap(label) for label in self._truth}

    def mean(self) -> float:
        aps = list(self.per_class().values())
        return float(np.mean(aps)) if aps else float("nan")

    def _ap(self, label: str) -> float:
        truth = self._truth.get(label, {})
        n_truth = sum(len(b) for b in truth.values())
        used = {image: [False] * len(b) for image, b in truth.items()}
        hits = []
        for _score, image, box in sorted(self._dets.get(label, []), key=lambda d: -d[0]):
            candidates = truth.get(image, [])
            ious = [box_iou(box, t) for t in candidates]
            best = int(np.argmax(ious)) if ious else -1
            ok = best >= 0 and ious[best] >= self.iou_threshold and not used[image][best]
            if ok:
                used[image][best] = True
            hits.append(ok)
        if not n_truth:
            return float("nan")
        tp = np.cumsum(hits)
        recall = np.r_[0.0, tp / n_truth, 1.0]
        precision = np.r_[1.0, tp / np.arange(1, len(hits) + 1), 0.0] if hits else np.array([1.0, 0.0])
        if not hits:
            recall = np.array([0.0, 1.0])
        precision = np.maximum.accumulate(precision[::-1])[::-1]
        steps = np.nonzero(recall[1:] != recall[:-1])[0]
        return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))
