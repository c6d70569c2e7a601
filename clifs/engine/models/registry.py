"""Model specs -> encoders. The CLI and GUI only ever see specs.

A spec that names a backend in ``_BACKENDS`` (``starter``, ``shapes-vit-tiny``, or one added with
``register``) is built by that backend's loader. Any other spec falls through to open_clip
(clifs.engine.models.openclip.load), which reads it as one of:
  ``ViT-B-32`` / ``ViT-B-32:TAG``  an open_clip architecture with a pretrained tag
  ``ViT-B-32:/path/weights.pt``    an open_clip architecture with a local checkpoint
  ``/path/to/folder``              a folder with open_clip_config.json + weights
  ``hf-hub:org/repo``              an open_clip model on the Hugging Face hub
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from clifs.engine.models.base import Encoder, ModelUnavailable

log = logging.getLogger(__name__)

DEFAULT_MODEL = "ViT-B-32:laion2b_s34b_b79k"
FALLBACK_MODEL = "starter"
#: open_clip's multilingual CLIP: an xlm-roberta-base text tower (100 languages) trained on LAION-5B.
MULTILINGUAL_MODEL = "xlm-roberta-base-ViT-B-32:laion5b_s13b_b90k"


@dataclass(frozen=True)
class Backend:
    #: "package.module:factory", factory(device) -> Encoder; imported only when used, so `clifs list` never imports torch.
    loader: str
    #: One line for a person.
    description: str


_BACKENDS: dict[str, Backend] = {
    "starter": Backend("clifs.engine.models.starter:load", "the offline ConSE starter model (not CLIP)"),
    "shapes-vit-tiny": Backend("clifs.engine.models.testmodel:load", "the trained shapes-world test model in assets/"),
    "imagebind": Backend(
        "clifs.engine.models.imagebind:load",
        "ImageBind huge: images, text and sounds in its own space (CC-BY-NC weights)",
    ),
    "multilingual": Backend(
        "clifs.engine.models.registry:load_multilingual", f"CLIP {MULTILINGUAL_MODEL}: queries in 100 languages"
    ),
}


def load_multilingual(device: str = "auto") -> Encoder:
    """open_clip's multilingual CLIP (its own vectors: a model id of its own)."""
    from clifs.engine.models import openclip

    name, _, tag = MULTILINGUAL_MODEL.partition(":")
    return openclip.load(MULTILINGUAL_MODEL, device=device, display_name=f"CLIP {name} ({tag}, multilingual)")


def register(name: str, target: str, description: str = "") -> None:
    """Register a backend by name: ``target`` is "package.module:factory", factory(device) -> Encoder."""
    _BACKENDS[name] = Backend(target, description)


def backend_names() -> list[str]:
    return sorted(_BACKENDS)


def _factory(target: str) -> Callable[..., Encoder]:
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def load_encoder(spec: str, device: str = "auto") -> Encoder:
    """Build the encoder for ``spec``; raises ModelUnavailable with a readable reason."""
    if spec in _BACKENDS:
        return _factory(_BACKENDS[spec].loader)(device=device)
    from clifs.engine.models import openclip

    return openclip.load(spec, device=device)


@dataclass
class LoadedModel:
    encoder: Encoder
    #: Why the requested model was not used, when clifs fell back to the starter model.
    fallback_reason: str | None = None


def load_model(spec: str | None, device: str = "auto") -> LoadedModel:
    """Load ``spec``; with no spec, the default CLIP model, falling back to the starter model.

    An explicit spec never falls back: its failure is the caller's to report.
    """
    if spec:
        return LoadedModel(load_encoder(spec, device))
    try:
        return LoadedModel(load_encoder(DEFAULT_MODEL, device))
    except ModelUnavailable as exc:
        reason = f"{exc} Using the offline starter model ({FALLBACK_MODEL}) instead."
        log.info(reason)  # the caller tells the user (LoadedModel.fallback_reason), once
        return LoadedModel(load_encoder(FALLBACK_MODEL, device), fallback_reason=reason)
