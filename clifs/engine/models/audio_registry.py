"""Which audio tower shares which image model's space: image encoder -> its bound audio tower, or None.

A tower is bound to one image model and only ever used with it: ``load_audio_encoder`` looks the
active image encoder's ``model_id`` up in ``_BINDINGS`` (by the prefix that names its architecture
and weights) and loads the tower bound there. Models with no binding (the starter model, any other
CLIP) get None: their indexes hold no sound. Loaders are imported only when used, so asking costs
no torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from clifs.engine.models.audio_base import AudioEncoder, ModelUnavailable
from clifs.engine.models.base import Encoder, TextEncoder

__all__ = ["AudioBinding", "ModelUnavailable", "audio_binding", "load_audio_encoder"]


@dataclass(frozen=True)
class AudioBinding:
    #: The start of the bound image encoder's model_id ("openclip:ViT-B-32:openai:").
    image_model_prefix: str
    #: "package.module:factory", factory(image: Encoder, device: str, cache_dir: Path | None) -> AudioEncoder.
    loader: str
    #: One line for a person: the tower and the image model it is bound to.
    description: str


_BINDINGS: tuple[AudioBinding, ...] = (
    AudioBinding(
        "openclip:shapes-vit-tiny:",
        "clifs.engine.models.audio_registry:_load_shapes",
        "shapes-audio-tiny: the trained shapes-world test audio tower, bound to shapes-vit-tiny",
    ),
    *(
        AudioBinding(
            f"openclip:{prefix}",
            "clifs.engine.models.audio_registry:_load_wav2clip",
            f"Wav2CLIP (MIT): distilled from OpenAI CLIP ViT-B/32, bound to {spec}",
        )
        # open_clip names OpenAI's weights both ways, and both build them with the QuickGELU they were
        # trained with (clifs.engine.models.openclip marks the forced one "quickgelu:" in the model id).
        # Vectors made before that (plain GELU: "openclip:ViT-B-32:openai:") are another space: no binding.
        for spec, prefix in (
            ("ViT-B-32:openai", "ViT-B-32:quickgelu:openai:"),
            ("ViT-B-32-quickgelu:openai", "ViT-B-32-quickgelu:openai:"),
        )
    ),
    AudioBinding(
        "imagebind:huge:",
        "clifs.engine.models.imagebind:load_audio",
        "ImageBind's audio tower, in ImageBind's own space (the `imagebind` model)",
    ),
)


def audio_binding(image: TextEncoder | str) -> AudioBinding | None:
    """The binding for an image encoder (or its model_id), or None when no audio tower shares its space."""
    model_id = image if isinstance(image, str) else image.model_id
    return next((b for b in _BINDINGS if model_id.startswith(b.image_model_prefix)), None)


def load_audio_encoder(image: Encoder, device: str = "auto", cache_dir: Path | None = None) -> AudioEncoder | None:
    """The audio tower bound to this image encoder's space, or None when no tower is bound to it.

    Raises ModelUnavailable (one readable sentence) when a tower is bound but its weights are missing.
    ``cache_dir`` (Settings.model_cache_dir) lets a torch tower run on ONNX Runtime on a CPU: exported on its
    first load there, found without torch after (today Wav2CLIP; the test tower ships its graph).
    """
    binding = audio_binding(image)
    if binding is None:
        return None
    module, func = binding.loader.split(":")
    tower: AudioEncoder = getattr(importlib.import_module(module), func)(image, device, cache_dir)
    if tower.image_model_id != image.model_id or tower.dim != image.dim:
        raise ModelUnavailable(
            f"{tower.display_name} does not share the space of {image.display_name} "
            f"({tower.image_model_id}, {tower.dim}-d vs {image.model_id}, {image.dim}-d)."
        )
    return tower


def _load_shapes(image: Encoder, device: str, cache_dir: Path | None) -> AudioEncoder:
    from clifs.engine.models import audio_shapes

    return audio_shapes.load(image.model_id, image.dim)


def _load_wav2clip(image: Encoder, device: str, cache_dir: Path | None) -> AudioEncoder:
    from clifs.engine.models.onnx_runtime import use_onnx

    on_cpu = cache_dir is not None and use_onnx("auto", device)
    if on_cpu:
        from clifs.engine.models.audio_wav2clip_onnx import load_record

        exported = load_record(cache_dir, image.model_id)
        if exported is not None:
            return exported
    from clifs.engine.models import audio_wav2clip

    tower = audio_wav2clip.load(image.model_id, "cpu" if on_cpu else device)
    return (audio_wav2clip.store(cache_dir, tower) or tower) if on_cpu else tower
