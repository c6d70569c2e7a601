"""open_clip backend: any open_clip architecture with a pretrained tag or a local checkpoint."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clifs.engine.models.base import Encoder, ModelUnavailable, pick_device
from clifs.engine.models.clip_text_numpy import ClipTextConfig
from clifs.engine.models.text_towers import TextTowerExport

log = logging.getLogger(__name__)

#: The pretrained tag used when a spec names only an architecture.
DEFAULT_TAGS = {"ViT-B-32": "laion2b_s34b_b79k", "ViT-B-16": "laion2b_s34b_b88k", "ViT-L-14": "laion2b_s32b_b82k"}

_HOW_TO_SUPPLY = (
    "Supply weights with --model ARCH:/path/to/open_clip_pytorch_model.bin (or .safetensors), "
    "a folder holding open_clip_config.json and the weights, the CLIFS_MODEL environment variable, "
    "or use --model starter (the offline starter model, not CLIP)."
)


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


CONFIG_DIR = Path(__file__).resolve().parent / "configs"

#: Optional packages open_clip imports at start-up only for some towers: (package, config key that needs it).
_OPTIONAL_TOWERS = (("transformers", "hf_model_name"), ("timm", "timm_model_name"))


def _arch_config(arch: str) -> dict | None:
    """An architecture's open_clip config read from disk, without importing open_clip."""
    import importlib.util

    spec = importlib.util.find_spec("open_clip")
    for folder in [*(spec.submodule_search_locations or [])] if spec else []:
        path = Path(folder) / "model_configs" / f"{arch}.json"
        if path.is_file():
            return json.loads(path.read_text())
    path = CONFIG_DIR / f"{arch}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def import_open_clip(spec: str):
    """``import open_clip``, without transformers and timm when ``spec``'s towers need neither.

    open_clip imports both eagerly if installed (about 4 s on a small CPU, most of a cold
    `clifs search`), though a plain ViT uses neither. Hidden only for that one import, and only
    when this process has not imported them yet.
    """
    import sys

    if "open_clip" in sys.modules:
        return sys.modules["open_clip"]
    config = _arch_config(spec.partition(":")[0]) if not spec.startswith(("hf-hub:", "local-dir:", "/")) else None
    text = json.dumps(config) if config else ""
    hidden = [pkg for pkg, key in _OPTIONAL_TOWERS if config and key not in text and pkg not in sys.modules]
    for pkg in hidden:
        sys.modules[pkg] = None  # makes `import pkg` raise ImportError, which open_clip handles
    try:
        import open_clip
    finally:
        for pkg in hidden:
            del sys.modules[pkg]
    return open_clip


def register_shipped_configs() -> None:
    """Make the architectures whose configs ship with clifs (the test model) known to open_clip."""
    import open_clip

    if not all(p.stem in open_clip.list_models() for p in CONFIG_DIR.glob("*.json")):
        open_clip.add_model_config(CONFIG_DIR)


def _resolve(spec: str) -> tuple[str, str | None, Path | None]:
    """spec -> (open_clip model name, tag, local weights path)."""
    import open_clip

    register_shipped_configs()
    if spec.startswith("hf-hub:"):
        return spec, None, None
    if os.path.isdir(spec):
        if not (Path(spec) / "open_clip_config.json").is_file():
            raise ModelUnavailable(f"Model folder {spec} has no open_clip_config.json. {_HOW_TO_SUPPLY}")
        return f"local-dir:{os.path.abspath(spec)}", None, None
    arch, _, source = spec.partition(":")
    if arch not in open_clip.list_models():
        raise ModelUnavailable(
            f"Unknown model {spec!r}: not a clifs model name, an open_clip architecture or a model folder. "
            f"Try 'starter', 'shapes-vit-tiny' or an architecture such as ViT-B-32."
        )
    source = source or DEFAULT_TAGS.get(arch, "")
    if not source:
        raise ModelUnavailable(f"Model {arch} needs a pretrained tag or a weights path: {arch}:TAG or {arch}:/path.")
    if "/" in source or os.sep in source or source.endswith((".pt", ".bin", ".pth", ".safetensors")):
        path = Path(source).expanduser()
        if not path.is_file():
            raise ModelUnavailable(f"Weights file {path} for {arch} does not exist. {_HOW_TO_SUPPLY}")
        return arch, None, path
    return arch, source, None


def _cached_hf_weights(hf_hub: str) -> Path | None:
    """The weights for an open_clip ``hf_hub`` entry if already in the local cache (no network)."""
    from huggingface_hub import try_to_load_from_cache

    repo, filename = os.path.split(hf_hub)
    filename = filename or "open_clip_pytorch_model.bin"
    for name in (filename.replace(".bin", ".safetensors"), filename):
        found = try_to_load_from_cache(repo, name)
        if isinstance(found, str):
            return Path(found)
    return None


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP check, so an offline machine fails in seconds instead of after the hub's retries."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _fetch_pretrained(arch: str, tag: str) -> Path:
    """The cached weights file for (arch, tag), downloading it if the network allows."""
    import open_clip
    from open_clip.pretrained import download_pretrained, get_pretrained_cfg

    cfg = get_pretrained_cfg(arch, tag)
    if not cfg:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(arch)) or "none"
        raise ModelUnavailable(f"{arch} has no pretrained tag {tag!r}; known tags: {tags}.")
    where = cfg.get("hf_hub") or cfg.get("url") or "its source"
    if cfg.get("hf_hub"):
        cached = _cached_hf_weights(cfg["hf_hub"])
        if cached is not None:
            return cached
        if not _hub_reachable():
            raise ModelUnavailable(
                f"CLIP weights for {arch} ({tag}) are not in the local cache and could not be downloaded "
                f"from {where} (the model hub cannot be reached: offline?). {_HOW_TO_SUPPLY}"
            )
    try:
        path = download_pretrained(cfg)
    except Exception as exc:  # network errors come in many types (OSError, hub errors, URLError)
        first_line = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelUnavailable(
            f"CLIP weights for {arch} ({tag}) are not in the local cache and could not be downloaded "
            f"from {where} ({first_line}). {_HOW_TO_SUPPLY}"
        ) from None
    return Path(path)


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
            if _is_plain_clip(model)
            else int(model.encode_text(tokenizer(["x"]).to(device)).shape[-1])
        )
        self.logit_scale = float(model.logit_scale.exp().item())
        self._transform = image_transform_v2(PreprocessCfg(**get_model_preprocess_cfg(model)), is_train=False)
        self.images_encoded = 0
        #: The file the weights came from (None for random weights): a saved text tower is valid while it is unchanged.
        self.weights = weights

    def export_text_tower(self) -> TextTowerExport | None:
        """The plain open_clip text tower with the default tokenizer as arrays; None for any other design."""
        from open_clip.tokenizer import SimpleTokenizer, _clean_lower
        from open_clip.transformer import QuickGELU

        model, tok = self.model, self.tokenizer
        if (
            self.weights is None
            or not _is_plain_clip(model)
            or getattr(model, "text_pool_type", "argmax") != "argmax"
            or model.attn_mask is None
            or type(tok) is not SimpleTokenizer
            or tok.clean_fn is not _clean_lower
            or tok.reduction_fn is not None
            or tok.vocab_size != model.token_embedding.num_embeddings
        ):
            return None
        blocks = model.transformer.resblocks
        activations = {torch.nn.GELU: "gelu", QuickGELU: "quick_gelu"}
        if not all(
            type(b.mlp.gelu) in activations
            and getattr(b.mlp.gelu, "approximate", "none") == "none"
            and isinstance(b.attn, torch.nn.MultiheadAttention)
            for b in blocks
        ):
            return None
        tensors = {
            name: value.detach().float().cpu().numpy()
            for name, value in model.state_dict().items()
            if name.startswith(("transformer.", "token_embedding.", "ln_final.")) or name == "positional_embedding"
        }
        if isinstance(model.text_projection, torch.nn.Linear):
            tensors["text_projection"] = model.text_projection.weight.detach().float().T.cpu().numpy()
            if model.text_projection.bias is not None:
                tensors["text_projection_bias"] = model.text_projection.bias.detach().float().cpu().numpy()
        else:
            tensors["text_projection"] = model.text_projection.detach().float().cpu().numpy()
        config = ClipTextConfig(
            layers=len(blocks),
            heads=blocks[0].attn.num_heads,
            context_length=tok.context_length,
            activation=activations[type(blocks[0].mlp.gelu)],
            eps=model.ln_final.eps,
        )
        return TextTowerExport("clip", tensors, config.to_json(), [self.weights])

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
            feats = _encode_text_trimmed(self.model, tokens)
        return torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy()


def _is_plain_clip(model: torch.nn.Module) -> bool:
    return hasattr(model, "token_embedding") and hasattr(model, "text_projection")


def _encode_text_trimmed(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """CLIP's text tower with the padding cut off.

    The text transformer is causal and pools at the end-of-text token (the
    highest id, hence argmax), so every position after the last end token in
    the batch changes nothing: cutting them is exact and 2-3x cheaper for a
    short query than running all 77 positions.
    """
    length = int(tokens.argmax(dim=-1).max().item()) + 1
    tokens = tokens[:, :length]
    if not _is_plain_clip(model) or getattr(model, "text_pool_type", "argmax") != "argmax":
        return model.encode_text(tokens)
    from open_clip.transformer import text_global_pool

    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast) + model.positional_embedding[:length].to(cast)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = text_global_pool(x, tokens, "argmax")
    return (
        x @ model.text_projection
        if not isinstance(model.text_projection, torch.nn.Linear)
        else model.text_projection(x)
    )


def load(spec: str, device: str = "auto", display_name: str | None = None) -> OpenClipEncoder:
    """Build an open_clip encoder; raise ModelUnavailable (never a traceback) when weights are missing."""
    open_clip = import_open_clip(spec)

    device = pick_device(device)
    name, tag, path = _resolve(spec)
    try:
        if name.startswith(("hf-hub:", "local-dir:")):
            model = open_clip.create_model(name, device="cpu")
            weights_id, weights = name, None
        else:
            weights = path if path is not None else _fetch_pretrained(name, tag or "")
            with _skip_random_init():
                model = open_clip.create_model(name, pretrained=None, device="cpu")
            open_clip.load_checkpoint(model, str(weights), weights_only=True)
            weights_id = f"{tag or weights.name}:{_file_checksum(weights)}"
    except ModelUnavailable:
        raise
    except (OSError, RuntimeError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ModelUnavailable(f"Could not load model {spec!r}: {first_line}. {_HOW_TO_SUPPLY}") from None
    tokenizer = open_clip.get_tokenizer(name)
    label = display_name or f"CLIP {name}" + (f" ({tag})" if tag else "")
    return OpenClipEncoder(model, tokenizer, f"openclip:{name}:{weights_id}", label, device, weights)


def random_init(arch: str, device: str = "cpu") -> OpenClipEncoder:
    """An architecture with random weights: same FLOPs as the real model, for benchmarks."""
    import open_clip

    register_shipped_configs()
    model = open_clip.create_model(arch, pretrained=None, device="cpu")
    return OpenClipEncoder(model, open_clip.get_tokenizer(arch), f"random:{arch}", f"random-weight {arch}", device)
