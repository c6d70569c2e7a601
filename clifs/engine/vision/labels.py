"""Zero-shot labels with prompt ensembling, as in the CLIP paper (Radford et al. 2021, §3.1.4).

Each label is embedded through many templates ("a photo of a {}.", "a blurry photo
of a {}.", ...), the embeddings are averaged and renormalised; an image's label
probabilities are softmax(logit_scale · image · labelsᵀ). The image embedding of an
indexed file is already stored, so labelling a hit costs one matmul once the label
embeddings are cached (in memory per encoder, and optionally on disk per model id).
"""

from __future__ import annotations

import hashlib
import os
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clifs.engine.models.base import Encoder
from clifs.engine.models.numpy_ops import l2_normalise
from clifs.engine.vision import TEMPLATE_SETS

_TEXT_BATCH = 256

# encoder -> {(template set, label): embedding}; dies with the encoder.
_cache: weakref.WeakKeyDictionary[Encoder, dict[tuple[str, str], np.ndarray]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class LabelScore:
    label: str
    probability: float

    def as_dict(self) -> dict[str, float | str]:
        return {"label": self.label, "probability": self.probability}


def templates(name: str) -> tuple[Callable[[str], str], ...]:
    if name == "single":
        return (lambda c: f"a photo of a {c}.",)
    import open_clip

    sets = {"ensemble": open_clip.OPENAI_IMAGENET_TEMPLATES, "compact": open_clip.SIMPLE_IMAGENET_TEMPLATES}
    if name not in sets:
        raise ValueError(f"unknown template set {name!r}; choose from {', '.join(TEMPLATE_SETS)}")
    return tuple(sets[name])


def embed_labels(
    encoder: Encoder,
    labels: Sequence[str],
    template_set: str = "ensemble",
    cache_dir: Path | None = None,
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """(n_labels, dim) float32, each row the renormalised mean over the template set (see TEMPLATE_SETS).

    ``cache_dir`` keeps the embeddings across runs, keyed by ``encoder.model_id``: pass it
    only for encoders whose model id names their weights. ``on_progress(done, total)`` is
    called with (0, total) before the text model runs and after each batch, counting the
    prompts (label × template) of the labels not cached yet; never when all are cached.
    """
    cache = _cache.setdefault(encoder, {})
    disk = _disk_path(cache_dir, encoder, template_set) if cache_dir else None
    if disk is not None and not all((template_set, label) in cache for label in labels):
        cache.update(_read_disk(disk, template_set))
    missing = [label for label in dict.fromkeys(labels) if (template_set, label) not in cache]
    if missing:
        encoded = _encode(encoder, missing, template_set, on_progress)
        cache.update(zip(((template_set, m) for m in missing), encoded, strict=True))
    if disk is not None and (missing or not disk.exists()):  # labels known in memory may not be on disk yet
        _write_disk(disk, {label: e for (ts, label), e in cache.items() if ts == template_set})
    if not labels:
        return np.zeros((0, encoder.dim), np.float32)
    return np.stack([cache[(template_set, label)] for label in labels])


def probabilities(image_embeddings: np.ndarray, label_embeddings: np.ndarray, logit_scale: float) -> np.ndarray:
    """softmax(logit_scale · images · labelsᵀ) over the labels: (n_images, n_labels), rows sum to 1."""
    logits = logit_scale * np.atleast_2d(image_embeddings) @ label_embeddings.T
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def label_embedding(
    encoder: Encoder,
    embedding: np.ndarray,
    labels: Sequence[str],
    top: int | None = None,
    template_set: str = "ensemble",
    cache_dir: Path | None = None,
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[LabelScore]:
    """Label one stored image embedding: the given labels with probabilities summing to 1, best first.

    ``top`` cuts the list after ranking; the probabilities are still over all ``labels``.
    ``on_progress`` reports the label embedding, as in embed_labels.
    """
    labels = list(dict.fromkeys(labels))
    if not labels:
        raise ValueError("no labels to choose from")
    probs = probabilities(
        l2_normalise(embedding),
        embed_labels(encoder, labels, template_set, cache_dir, on_progress=on_progress),
        encoder.logit_scale,
    )[0]
    order = np.argsort(-probs, kind="stable")[: top or len(labels)]
    return [LabelScore(labels[i], float(probs[i])) for i in order]


def _encode(
    encoder: Encoder, labels: list[str], template_set: str, on_progress: Callable[[int, int], None] | None = None
) -> np.ndarray:
    temps = templates(template_set)
    texts = [t(label) for label in labels for t in temps]
    parts = []
    if on_progress is not None:
        on_progress(0, len(texts))
    for i in range(0, len(texts), _TEXT_BATCH):
        parts.append(encoder.encode_texts(texts[i : i + _TEXT_BATCH]))
        if on_progress is not None:
            on_progress(min(i + _TEXT_BATCH, len(texts)), len(texts))
    per_template = np.concatenate(parts).reshape(len(labels), len(temps), -1)
    return l2_normalise(per_template.mean(axis=1))


def _disk_path(cache_dir: Path, encoder: Encoder, template_set: str) -> Path:
    key = hashlib.sha1(f"{encoder.model_id}\n{template_set}".encode()).hexdigest()[:20]
    return Path(cache_dir) / "labels" / f"{key}.npz"


def _read_disk(path: Path, template_set: str) -> dict[tuple[str, str], np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {(template_set, str(label)): e for label, e in zip(data["labels"], data["embeddings"], strict=True)}
    except (OSError, KeyError, ValueError):
        return {}  # a missing or damaged cache is rebuilt, never an error


def _write_disk(path: Path, entries: dict[str, np.ndarray]) -> None:
    """Atomic replace, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        np.savez(f, labels=np.array(list(entries)), embeddings=np.stack(list(entries.values())).astype(np.float32))
    os.replace(tmp, path)
