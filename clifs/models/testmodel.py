"""The shapes-world test model: a tiny open_clip ViT trained by ``clifs.train``, shipped in assets/."""

from __future__ import annotations

from pathlib import Path

from clifs.models.base import ModelUnavailable
from clifs.models.openclip import OpenClipEncoder
from clifs.models.openclip import load as load_openclip

NAME = "shapes-vit-tiny"
WEIGHTS = Path(__file__).resolve().parents[2] / "assets" / "models" / f"{NAME}.safetensors"


def load(device: str = "auto", weights: Path | None = None) -> OpenClipEncoder:
    weights = weights or WEIGHTS
    if not weights.is_file():
        raise ModelUnavailable(f"The test model's weights {weights} are missing; run `python -m clifs.train`.")
    return load_openclip(f"{NAME}:{weights}", device=device, display_name="shapes-vit-tiny (test model)")
