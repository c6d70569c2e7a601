"""Measurements of a model on the shapes world, on held-out seeds (the test model's report card)."""

from __future__ import annotations

import numpy as np

from clifs.engine.models.base import Encoder
from devkit.shapes import COLOURS, HELD_OUT_SEED_BASE, SHAPES, iter_scenes

OBJECT_NAMES = [f"{c} {s}" for c in COLOURS for s in SHAPES]


def zero_shot_accuracy(encoder: Encoder, n_images: int = 480, template_set: str = "ensemble", seed: int = 1) -> float:
    """Top-1 accuracy of "a photo of a {colour} {shape}" over all 24 names, on single-object scenes."""
    from clifs.engine.vision.labels import embed_labels

    scenes = list(iter_scenes(HELD_OUT_SEED_BASE + seed, n_images, _image_size(encoder), n_objects=1))
    labels = embed_labels(encoder, OBJECT_NAMES, template_set)
    images = encoder.encode_pil([s.image for s in scenes])
    predicted = (images @ labels.T).argmax(axis=1)
    truth = np.array([OBJECT_NAMES.index(s.objects[0].name) for s in scenes])
    return float((predicted == truth).mean())


def text_to_image_recall_at_1(encoder: Encoder, gallery_size: int = 500, seed: int = 2, language: str = "en") -> float:
    """For each "a {colour} {shape}" present in a gallery of mixed scenes (0-3 objects),
    whether the top-ranked image contains that object; averaged over the queries.
    ``language`` "zh" asks the same in Chinese ("一个红色的圆", devkit/shapes_zh.py)."""
    from devkit.shapes_zh import query_zh

    scenes = list(iter_scenes(HELD_OUT_SEED_BASE + seed, gallery_size, _image_size(encoder)))
    images = encoder.encode_pil([s.image for s in scenes])
    present = [n for n in OBJECT_NAMES if any(o.name == n for s in scenes for o in s.objects)]
    queries = [query_zh(*n.split()) if language == "zh" else f"a {n}" for n in present]
    texts = encoder.encode_texts(queries)
    top = (texts @ images.T).argmax(axis=1)
    return float(np.mean([any(o.name == n for o in scenes[i].objects) for n, i in zip(present, top)]))


def _image_size(encoder: Encoder) -> int:
    size = getattr(getattr(getattr(encoder, "model", None), "visual", None), "image_size", (96, 96))
    return int(size[0] if isinstance(size, tuple | list) else size)
