"""Where the files that ship with clifs live: the repo's ``assets/``, installed as package ``clifs_assets``."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def assets_dir() -> Path:
    """The folder holding ``models/`` (the trained test model) and ``demo/`` (the demo media)."""
    return Path(str(files("clifs_assets")))


def test_model_weights(name: str) -> Path:
    return assets_dir() / "models" / f"{name}.safetensors"


def demo_folder() -> Path:
    return assets_dir() / "demo"
