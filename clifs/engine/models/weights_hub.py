"""Pretrained open_clip weights: found in the local Hugging Face cache, else downloaded if the network allows.

Whatever stops a download, the caller gets one ModelUnavailable that names the weights, where they
come from, why they could not be had, and how to supply them instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from clifs.engine.models.base import ModelUnavailable
from clifs.engine.models.openclip_spec import HOW_TO_SUPPLY


def fetch_pretrained(arch: str, tag: str) -> Path:
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
            raise _not_downloadable(arch, tag, where, "the model hub cannot be reached: offline?")
    try:
        path = download_pretrained(cfg)
    except Exception as exc:  # network errors come in many types (OSError, hub errors, URLError)
        first_line = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise _not_downloadable(arch, tag, where, first_line) from None
    return Path(path)


def _not_downloadable(arch: str, tag: str, where: str, reason: str) -> ModelUnavailable:
    return ModelUnavailable(
        f"CLIP weights for {arch} ({tag}) are not in the local cache and could not be downloaded "
        f"from {where} ({reason}). {HOW_TO_SUPPLY}"
    )


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
