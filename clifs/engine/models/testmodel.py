"""The shapes-world test model: a tiny open_clip ViT trained by ``devkit.train``, shipped in assets/."""

from __future__ import annotations

from pathlib import Path

from clifs.engine.assets import test_model_weights
from clifs.engine.models.base import ModelUnavailable
from clifs.engine.models.openclip import OpenClipEncoder
from clifs.engine.models.openclip import load as load_openclip

NAME = "shapes-vit-tiny"
WEIGHTS = test_model_weights(NAME)
#: The bilingual text tower for non-Latin queries (clifs.engine.models.shapes_bilingual; devkit/train_zh.py).
BILINGUAL = test_model_weights(f"{NAME}-zh")


def load(device: str = "auto", weights: Path | None = None, bilingual: bool = True) -> OpenClipEncoder:
    weights = weights or WEIGHTS
    if not weights.is_file():
        raise ModelUnavailable(
            f"The test model's weights {weights} are missing; a checkout can retrain them with `python -m devkit.train`."
        )
    encoder = load_openclip(f"{NAME}:{weights}", device=device, display_name="shapes-vit-tiny (test model)")
    if bilingual and BILINGUAL.is_file():
        from clifs.engine.models.shapes_bilingual import load_bilingual

        return load_bilingual(encoder, BILINGUAL)
    return encoder
