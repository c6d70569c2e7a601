"""open_clip backend: any open_clip architecture with a pretrained tag or a local checkpoint.

What a spec names is worked out in openclip_spec, pretrained weights come from weights_hub,
the text tower's trimmed pass and export from openclip_text, the patch features for masks
from openclip_dense; this module builds the model and wraps it as an Encoder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clifs.engine.models.base import (
    Encoder,
    ModelUnavailable,
    OnnxParts,
    PatchFeatures,
    pick_device,
)
from clifs.engine.models.openclip_spec import HOW_TO_SUPPLY, import_open_clip, register_shipped_configs, resolve
from clifs.engine.models.openclip_text import encode_text_trimmed, is_plain_clip
from clifs.engine.models.weights_hub import fetch_pretrained


class OpenClipEncoder(Encoder):
    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        model_id: str,
        display_name: str,
        device: str,
        weights: Path | None = None,
    ):
        from open_clip import get_model_preprocess_cfg
        from open_clip.transform import PreprocessCfg, image_transform_v2

        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.display_name = display_name
        self.device = device
        self.dim = (
            int(model.text_projection.shape[-1])
            if is_plain_clip(model)
            else int(model.encode_text(tokenizer(["x"]).to(device)).shape[-1])
        )
        self.logit_scale = float(model.logit_scale.exp().item())
        self._transform = image_transform_v2(PreprocessCfg(**get_model_preprocess_cfg(model)), is_train=False)
        self.images_encoded = 0
        #: What makes this encoder's vectors, as the catalog records it.
        self.runtime = f"torch {'fp16' if device == 'cuda' else 'fp32'} {device}"
        #: The file the weights came from (None for random weights): an exported model is valid while it is unchanged.
        self.weights = weights

    def onnx_parts(self) -> OnnxParts | None:
        from clifs.engine.models.openclip_onnx import onnx_parts

        return onnx_parts(self.model, self.tokenizer, self.weights)

    def dense(self) -> PatchFeatures | None:
        """A ViT's patch tokens (open_clip ViTs without attention pooling); None for other image towers."""
        from clifs.engine.models.openclip_dense import vit_patch_features

        return vit_patch_features(self.model)

    def _autocast(self):
        if self.device == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self._transform(image)

    @torch.inference_mode()
    def _encode_images(self, batch: torch.Tensor) -> np.ndarray:
        with self._autocast():
            feats = self.model.encode_image(batch.to(self.device, non_blocking=True), normalize=True)
        return feats.float().cpu().numpy()

    @torch.inference_mode()
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        tokens = self.tokenizer(texts).to(self.device)
        with self._autocast():
            feats = encode_text_trimmed(self.model, tokens)
        return torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy()


def load(spec: str, device: str = "auto", display_name: str | None = None) -> OpenClipEncoder:
    """Build an open_clip encoder; raise ModelUnavailable (never a traceback) when weights are missing."""
    open_clip = import_open_clip(spec)

    device = pick_device(device)
    name, tag, path = resolve(spec)
    try:
        if name.startswith(("hf-hub:", "local-dir:")):
            model = open_clip.create_model(name, device="cpu")
            weights_id, weights = name, None
        else:
            weights = path if path is not None else fetch_pretrained(name, tag or "")
            # OpenAI's weights were trained with QuickGELU, which ``ViT-B-32`` alone does not build
            # (``ViT-B-32-quickgelu`` does: nothing to force there).
            quick_gelu = bool(
                tag
                and open_clip.get_pretrained_cfg(name, tag).get("quick_gelu")
                and not (open_clip.get_model_config(name) or {}).get("quick_gelu")
            )
            with _skip_random_init():
                # pretrained_text=False: a Hugging Face text tower's weights come from the checkpoint, not the hub
                model = open_clip.create_model(
                    name, pretrained=None, device="cpu", pretrained_text=False, force_quick_gelu=quick_gelu
                )
            open_clip.load_checkpoint(model, str(weights), weights_only=True)
            # "quickgelu:" in the id: vectors made before the activation was right are another space.
            weights_id = f"{'quickgelu:' if quick_gelu else ''}{tag or weights.name}:{_file_checksum(weights)}"
    except ModelUnavailable:
        raise
    except (OSError, RuntimeError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ModelUnavailable(f"Could not load model {spec!r}: {first_line}. {HOW_TO_SUPPLY}") from None
    tokenizer = open_clip.get_tokenizer(name)
    label = display_name or f"CLIP {name}" + (f" ({tag})" if tag else "")
    return OpenClipEncoder(model, tokenizer, f"openclip:{name}:{weights_id}", label, device, weights)


def random_init(arch: str, device: str = "cpu") -> OpenClipEncoder:
    """An architecture with random weights: same FLOPs as the real model, for benchmarks."""
    import open_clip

    register_shipped_configs()
    model = open_clip.create_model(arch, pretrained=None, device="cpu")
    return OpenClipEncoder(model, open_clip.get_tokenizer(arch), f"random:{arch}", f"random-weight {arch}", device)


@contextlib.contextmanager
def _skip_random_init() -> Iterator[None]:
    """Make torch.nn.init a no-op while building a model whose weights are loaded right after.

    Random initialisation of ViT-B-32 costs about a second on a small CPU and is thrown away.
    """
    names = ["normal_", "uniform_", "trunc_normal_", "xavier_uniform_", "xavier_normal_",
             "kaiming_uniform_", "kaiming_normal_", "constant_", "zeros_", "ones_"]  # fmt: skip
    saved = {n: getattr(torch.nn.init, n) for n in names}
    try:
        for n in names:
            setattr(torch.nn.init, n, lambda tensor, *a, **k: tensor)
        yield
    finally:
        for n, f in saved.items():
            setattr(torch.nn.init, n, f)


def _file_checksum(path: Path) -> str:
    """Cheap identity of a weights file: size plus a hash of its first and last MiB."""
    size = path.stat().st_size
    h = hashlib.sha1(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(1 << 20))
        if size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read())
    return h.hexdigest()[:12]
