"""Held-out measures of an audio tower bound to the test model: text -> sound recall, zero-shot sound
labels, and sound -> the matching moment of a shapes video. Seeds at or above HELD_OUT_SEED_BASE.

    python -m devkit.evaluate_audio
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clifs.engine.models.audio_base import AudioEncoder
from clifs.engine.models.base import Encoder
from devkit.shapes import HELD_OUT_SEED_BASE, all_object_names, scene_rng
from devkit.sounds import sound_for


@dataclass
class SoundGallery:
    names: list[str]
    embeddings: np.ndarray  # (n, dim)


def sound_gallery(tower: AudioEncoder, per_object: int = 10, seed: int = HELD_OUT_SEED_BASE + 500) -> SoundGallery:
    """``per_object`` held-out one-window sounds of every object, embedded."""
    rng = scene_rng(seed)
    names = [name for name in all_object_names() for _ in range(per_object)]
    windows = np.stack([sound_for(*n.split(" "), tower.window_seconds, tower.sample_rate, rng) for n in names])
    return SoundGallery(names, tower.encode_audio(windows))


def text_to_sound_recall_at_1(encoder: Encoder, gallery: SoundGallery) -> float:
    """Fraction of the queries "a {colour} {shape}" whose best sound in the gallery is that object's."""
    objects = all_object_names()
    texts = encoder.encode_texts([f"a {name}" for name in objects])
    best = (texts @ gallery.embeddings.T).argmax(axis=1)
    return float(np.mean([gallery.names[b] == name for b, name in zip(best, objects)]))


def text_to_sound_precision_at_k(encoder: Encoder, gallery: SoundGallery, k: int = 10) -> float:
    """Mean over the object queries of the fraction of the top ``k`` sounds that are that object's."""
    objects = all_object_names()
    texts = encoder.encode_texts([f"a {name}" for name in objects])
    top = np.argsort(-(texts @ gallery.embeddings.T), axis=1)[:, :k]
    return float(np.mean([[gallery.names[i] == name for i in row] for row, name in zip(top, objects)]))


def zero_shot_sound_accuracy(
    encoder: Encoder, gallery: SoundGallery, template_set: str = "ensemble"
) -> dict[str, float]:
    """Accuracy of labelling each sound with the best of the 24 object names (the picture labels' prompt
    ensembles, clifs.engine.vision.labels), and of its colour and its shape alone."""
    from clifs.engine.vision.labels import embed_labels

    objects = all_object_names()
    labels = embed_labels(encoder, objects, template_set)
    guessed = [objects[i] for i in (gallery.embeddings @ labels.T).argmax(axis=1)]
    pairs = [(g.split(" "), t.split(" ")) for g, t in zip(guessed, gallery.names)]
    return {
        "object": float(np.mean([g == t for g, t in pairs])),
        "colour": float(np.mean([g[0] == t[0] for g, t in pairs])),
        "shape": float(np.mean([g[1] == t[1] for g, t in pairs])),
    }


def main() -> None:
    from clifs.engine.models.audio_registry import load_audio_encoder
    from clifs.engine.models.testmodel import load

    encoder = load(device="cpu")
    tower = load_audio_encoder(encoder)
    gallery = sound_gallery(tower)
    print(f"{tower.display_name}: {len(gallery.names)} held-out sounds")
    print(f"text -> sound R@1 {text_to_sound_recall_at_1(encoder, gallery):.3f}, "
          f"P@10 {text_to_sound_precision_at_k(encoder, gallery):.3f}")  # fmt: skip
    for template_set in ("ensemble", "single"):
        acc = zero_shot_sound_accuracy(encoder, gallery, template_set)
        print(f"zero-shot labels ({template_set}): " + ", ".join(f"{k} {v:.3f}" for k, v in acc.items()))


if __name__ == "__main__":
    main()
