"""Saved text towers: what lets `clifs search "text"` run without torch or the image tower.

Whenever a whole model is loaded (by the indexer, the GUI, a search with nothing saved),
its text tower is written under ``CLIFS_HOME/cache/text-towers/`` with the model's
identity and the files it was loaded from. A later text search with the same model spec
finds it, checks those files are unchanged (size and mtime), and encodes its query with
numpy from the saved weights: no torch import, no image tower in memory, no random
initialisation. A record that does not match is ignored and the whole model
is loaded, which writes a fresh one. Before a record is written, its output is checked
against the loaded model on a few probe texts, so a record never changes a result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from clifs.engine.atomic_files import remove_leftovers, temp_path
from clifs.engine.models.base import Encoder, TextEncoder
from clifs.engine.models.safetensors_mmap import memmap_safetensors

log = logging.getLogger(__name__)

#: Bump when the record layout or a tower's computation changes: older records are then ignored.
FORMAT = 1
_WEIGHTS = "tower.safetensors"
_META = "meta.json"
#: Texts a new record must encode as the loaded model does, within PROBE_TOLERANCE (cosine units).
PROBE_TEXTS = ["a photo of a dog", "Café crème, 東京タワー 🐶 & friends!", "a long caption " * 40]
PROBE_TOLERANCE = 1e-4


class TextOnlyEncoder(TextEncoder):
    """The text half of a model, rebuilt from a record without torch."""

    def __init__(self, meta: dict, encode: Callable[[list[str]], np.ndarray]):
        self.model_id = meta["model_id"]
        self.display_name = meta["display_name"]
        self.dim = int(meta["dim"])
        self.is_clip = bool(meta["is_clip"])
        self.logit_scale = float(meta["logit_scale"])
        self.fallback_reason: str | None = meta.get("fallback_reason")
        self._encode = encode

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)


def record_dir(cache_dir: Path, spec: str | None) -> Path:
    """Where the record for a model spec lives (None: the default model with its fallback)."""
    key = hashlib.sha1((spec or "<default>").encode()).hexdigest()[:16]
    return cache_dir / "text-towers" / key


def _source_stamp(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _sources_unchanged(stamps: list[dict]) -> bool:
    try:
        return all(_source_stamp(Path(s["path"])) == s for s in stamps)
    except OSError:
        return False


def _build(kind: str, tensors: dict[str, np.ndarray], config: dict, extra: dict) -> Callable[[list[str]], np.ndarray]:
    """The text encoding function a record describes."""
    if kind == "clip":
        from clifs.engine.models.clip_text_numpy import ClipTextConfig, ClipTextTower
        from clifs.engine.models.clip_tokenizer import ClipTokenizer

        tower = ClipTextTower(tensors, ClipTextConfig(**config))
        tokenizer = ClipTokenizer(tower.config.context_length)
        return lambda texts: tower.encode(tokenizer(texts))
    if kind == "minilm":
        from clifs.engine.models.minilm import MiniLM

        return MiniLM(Path(config["folder"])).encode
    raise ValueError(f"unknown text tower kind {kind!r}")


def load(cache_dir: Path, spec: str | None) -> TextOnlyEncoder | None:
    """The saved text tower for ``spec`` if there is a valid one, else None (the caller loads the whole model)."""
    folder = record_dir(cache_dir, spec)
    try:
        meta = json.loads((folder / _META).read_text())
    except (OSError, ValueError):
        return None
    if meta.get("format") != FORMAT or meta.get("spec") != spec or not _sources_unchanged(meta["sources"]):
        log.info("saved text tower in %s is stale; loading the whole model", folder)
        return None
    try:
        encode = _build(meta["kind"], memmap_safetensors(folder / _WEIGHTS), meta["config"], meta.get("extra", {}))
    except (OSError, ValueError, KeyError, AssertionError) as exc:
        log.warning("saved text tower in %s is unreadable (%s); loading the whole model", folder, exc)
        return None
    return TextOnlyEncoder(meta, encode)


def store(cache_dir: Path, spec: str | None, encoder: Encoder, fallback_reason: str | None = None) -> bool:
    """Save ``encoder``'s text tower for ``spec`` if it has one and it reproduces the model; True when saved."""
    folder = record_dir(cache_dir, spec)
    meta_path = folder / _META
    try:
        old = json.loads(meta_path.read_text())
        if (
            old.get("format") == FORMAT
            and old.get("model_id") == encoder.model_id
            and _sources_unchanged(old["sources"])
        ):
            return False  # already saved
    except (OSError, ValueError, KeyError):
        pass
    export = encoder.text_export()
    if export is None:
        return False
    encode = _build(export.kind, export.tensors, export.config, export.extra)
    diff = float(np.abs(encode(PROBE_TEXTS) - encoder.encode_texts(PROBE_TEXTS)).max())
    if diff > PROBE_TOLERANCE:
        log.warning("the numpy text tower of %s differs from the model by %.2g; not saved", encoder.display_name, diff)
        return False
    meta = {
        "format": FORMAT,
        "spec": spec,
        "kind": export.kind,
        "config": export.config,
        "extra": export.extra,
        "model_id": encoder.model_id,
        "display_name": encoder.display_name,
        "dim": encoder.dim,
        "is_clip": encoder.is_clip,
        "logit_scale": encoder.logit_scale,
        "fallback_reason": fallback_reason,
        "sources": [_source_stamp(p) for p in export.sources],
    }
    try:
        _write_atomically(folder, export.tensors, meta)
    except Exception as exc:  # a full or read-only disk (OSError, SafetensorError) costs speed later, never the load
        log.warning("could not save the text tower of %s in %s: %s", encoder.display_name, folder, exc)
        return False
    return True


def _write_atomically(folder: Path, tensors: dict[str, np.ndarray], meta: dict) -> None:
    """Write into a sibling temp folder, then swap it in, so a reader never sees half a record."""
    from safetensors.numpy import save_file

    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(folder)
    tmp = temp_path(folder)
    tmp.mkdir()
    try:
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp / _WEIGHTS))
        (tmp / _META).write_text(json.dumps(meta, indent=1))
        old = folder.with_name(folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
