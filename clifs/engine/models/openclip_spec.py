"""open_clip model specs: what a spec names (architecture, pretrained tag or weights file), the
architectures clifs ships configs for, and importing open_clip without the towers a spec does not use."""

from __future__ import annotations

import json
import os
from pathlib import Path

from clifs.engine.models.base import ModelUnavailable

#: The pretrained tag used when a spec names only an architecture.
DEFAULT_TAGS = {
    "ViT-B-32": "laion2b_s34b_b79k",
    "ViT-B-16": "laion2b_s34b_b88k",
    "ViT-L-14": "laion2b_s32b_b82k",
    "xlm-roberta-base-ViT-B-32": "laion5b_s13b_b90k",  # the multilingual one (registry: "multilingual")
}

#: The end of every message that says weights are missing.
HOW_TO_SUPPLY = (
    "Supply weights with --model ARCH:/path/to/open_clip_pytorch_model.bin (or .safetensors), "
    "a folder holding open_clip_config.json and the weights, the CLIFS_MODEL environment variable, "
    "or use --model starter (the offline starter model, not CLIP)."
)

#: open_clip configs of the architectures clifs adds (the test model's).
CONFIG_DIR = Path(__file__).resolve().parent / "configs"

#: Optional packages open_clip imports at start-up only for some towers:
#: (package, config key that needs it, the open_clip module that imports it).
_OPTIONAL_TOWERS = (
    ("transformers", "hf_model_name", "open_clip.hf_model"),
    ("timm", "timm_model_name", "open_clip.timm_model"),
)


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


def _unneeded_packages(spec: str) -> list[str]:
    """The optional packages ``spec``'s towers do not use; none when its config is not on disk."""
    config = _arch_config(spec.partition(":")[0]) if not spec.startswith(("hf-hub:", "local-dir:", "/")) else None
    text = json.dumps(config) if config else ""
    return [pkg for pkg, key, _ in _OPTIONAL_TOWERS if config and key not in text]


def import_open_clip(spec: str):
    """``import open_clip``, without transformers and timm when ``spec``'s towers need neither.

    open_clip imports both eagerly if installed (about 4 s on a small CPU, most of a cold
    `clifs search`), though a plain ViT uses neither. Hidden only for that one import, and only
    when this process has not imported them yet. A later spec that needs one (the window switching
    to a multilingual model) gets it: open_clip's module for that tower is imported again.
    """
    import importlib
    import importlib.util
    import sys

    unneeded = _unneeded_packages(spec)
    if "open_clip" in sys.modules:
        for pkg, _, module in _OPTIONAL_TOWERS:
            adapter = sys.modules.get(module)
            hidden_before = adapter is not None and getattr(adapter, pkg, None) is None
            if pkg not in unneeded and hidden_before and importlib.util.find_spec(pkg) is not None:
                importlib.reload(adapter)  # its functions read the package from the module's globals
        return sys.modules["open_clip"]
    hidden = [pkg for pkg in unneeded if pkg not in sys.modules]
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


def resolve(spec: str) -> tuple[str, str | None, Path | None]:
    """spec -> (open_clip model name, tag, local weights path)."""
    import open_clip

    register_shipped_configs()
    if spec.startswith("hf-hub:"):
        return spec, None, None
    if os.path.isdir(spec):
        if not (Path(spec) / "open_clip_config.json").is_file():
            raise ModelUnavailable(f"Model folder {spec} has no open_clip_config.json. {HOW_TO_SUPPLY}")
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
            raise ModelUnavailable(f"Weights file {path} for {arch} does not exist. {HOW_TO_SUPPLY}")
        return arch, None, path
    return arch, source, None
