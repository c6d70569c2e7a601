"""Exported models: what lets indexing and searching on a CPU run without torch.

Whenever a whole model is loaded with torch (by the indexer, the GUI, a search with nothing
saved), its towers are exported to ONNX (clifs.engine.models.onnx_export) under
``CLIFS_HOME/cache/models/<key of the model spec>/``, with the model's identity and the files it
was loaded from (size and mtime). A later run with the same spec finds the record, checks those
files are unchanged, and runs the towers on ONNX Runtime (clifs.engine.models.onnx_runtime):
no torch, no open_clip. A record that does not match (other spec, changed weights, older
format, torn files) is ignored and the whole model is loaded, which writes a fresh one. Before
a record is written its towers are checked against the torch model on probe images and texts,
so a record never changes a result beyond PROBE_TOLERANCE.

int8: each tower is also quantized (dynamic int8); the record keeps, per tower, how close the
int8 graph came to fp32 on the probes. A tower runs int8 when the precision setting says so, or
when it is "auto", int8 is the measured default for that tower (INT8_DEFAULT) and the probes
stayed within INT8_MIN_COSINE.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from clifs.engine.atomic_files import remove_leftovers, temp_path
from clifs.engine.models.base import Encoder
from clifs.engine.models.onnx_runtime import (
    GRAPH_FILES,
    Identity,
    ImagePrep,
    ImageTower,
    OnnxEncoder,
    OnnxTextEncoder,
    TextTower,
    Tokenizer,
)

log = logging.getLogger(__name__)

#: Bump when the record layout or a tower's computation changes: older records are then ignored.
FORMAT = 4  # 3: a bilingual model's second text graph (issue 16); 4: int8 leaves convolutions fp32
_META = "meta.json"
TOKENIZER_FILE = "tokenizer.json"
#: Texts a new record must encode as the loaded model does, within PROBE_TOLERANCE (max abs difference).
PROBE_TEXTS = ["a photo of a dog", "Café crème, 東京タワー 🐶 & friends!", "a long caption " * 40, "", "red"]
PROBE_TOLERANCE = 1e-4
#: int8 is the default ("auto") for a tower where it kept quality in bench/int8_quality.py (see README) ...
INT8_DEFAULT = {"image": True, "text": True}
#: ... and, for this model, every probe's int8 embedding is at least this close (cosine) to its fp32 one.
INT8_MIN_COSINE = 0.99


def probe_images() -> list[Image.Image]:
    """Deterministic test cards of several sizes and aspect ratios: gradients, shapes, noise, stripes."""
    rng = np.random.default_rng(0)
    out = []
    for w, h in ((320, 240), (181, 297), (64, 64), (500, 200)):
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        base = np.stack([x / w, y / h, 0.5 + 0.5 * np.sin((x + y) / 17.0)], -1) * 255
        im = Image.fromarray((0.7 * base + 0.3 * rng.uniform(0, 255, (h, w, 3))).astype(np.uint8))
        draw = ImageDraw.Draw(im)
        for _ in range(4):
            x0, y0 = int(rng.integers(0, w - 8)), int(rng.integers(0, h - 8))
            box = (x0, y0, x0 + int(rng.integers(8, w // 2 + 9)), y0 + int(rng.integers(8, h // 2 + 9)))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
        out.append(im)
    return out


def record_dir(cache_dir: Path, spec: str | None) -> Path:
    """Where the record for a model spec lives (None: the default model with its fallback)."""
    key = hashlib.sha1((spec or "<default>").encode()).hexdigest()[:16]
    return cache_dir / "models" / key


def _source_stamp(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _sources_unchanged(stamps: list[dict]) -> bool:
    try:
        return all(_source_stamp(Path(s["path"])) == s for s in stamps)
    except OSError:
        return False


def _graph_stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size}


def _read_meta(folder: Path, spec: str | None) -> dict | None:
    try:
        meta = json.loads((folder / _META).read_text())
    except (OSError, ValueError):
        return None
    try:
        fresh = (
            meta.get("format") == FORMAT
            and meta.get("spec") == spec
            and _sources_unchanged(meta["sources"])
            and all(_graph_stamp(folder / name) == stamp for name, stamp in meta["graphs"].items())
        )
    except (OSError, KeyError, TypeError):
        fresh = False
    if not fresh:
        log.info("exported model in %s is stale or torn; loading the whole model", folder)
        return None
    return meta


def choose_precision(meta: dict, tower: str, setting: str) -> str:
    """The precision a tower runs at: the setting, or for "auto" int8 where it is the default and kept quality."""
    towers = meta["towers"]
    if setting == "fp32" or tower not in towers:
        return "fp32"
    has_int8 = GRAPH_FILES[tower]["int8"] in meta["graphs"]
    if setting == "int8":
        return "int8" if has_int8 else "fp32"
    ok = towers[tower].get("int8_min_cosine", 0.0) >= INT8_MIN_COSINE
    return "int8" if has_int8 and ok and INT8_DEFAULT[tower] else "fp32"


def _text_tower(folder: Path, meta: dict, precision: str, threads: int) -> TextTower:
    return TextTower(
        folder / GRAPH_FILES["text"][precision], Tokenizer(folder / TOKENIZER_FILE, meta["towers"]["text"]), threads
    )


#: Text towers being read in the background by ``prewarm_text``, each for the one ``load_text`` call that takes it.
_prewarming: dict[tuple, Future] = {}


def prewarm_text(cache_dir: Path, spec: str | None, precision: str = "auto", threads: int = 0) -> None:
    """Start reading the exported text tower and building its ONNX Runtime session on another thread,
    for the ``load_text`` call with the same arguments that follows: a cold text search overlaps
    the session's ~0.2 s build with its own imports (SQLAlchemy, FAISS) on the other core."""
    future: Future = Future()

    def job() -> None:
        try:
            encoder = _load_text(cache_dir, spec, precision, threads)
            if encoder is not None:
                with contextlib.suppress(Exception):  # a damaged graph fails where it always did: when used
                    encoder.text.session.get()
            future.set_result(encoder)
        except BaseException as exc:  # handed to the caller of load_text, which reports it as it would have
            future.set_exception(exc)

    _prewarming[(Path(cache_dir), spec, precision, threads)] = future
    # Not a daemon: a process that exits while ONNX Runtime builds a session aborts (see _LazySession).
    threading.Thread(target=job, name="clifs-text-tower").start()


def load_text(cache_dir: Path, spec: str | None, precision: str = "auto", threads: int = 0) -> OnnxTextEncoder | None:
    """The exported text side for ``spec`` if there is a valid record, else None (the caller loads the whole model)."""
    prewarmed = _prewarming.pop((Path(cache_dir), spec, precision, threads), None)
    if prewarmed is not None:
        return prewarmed.result()
    return _load_text(cache_dir, spec, precision, threads)


def _load_text(cache_dir: Path, spec: str | None, precision: str, threads: int) -> OnnxTextEncoder | None:
    folder = record_dir(cache_dir, spec)
    meta = _read_meta(folder, spec)
    if meta is None or "text" not in meta["towers"]:
        return None
    chosen = choose_precision(meta, "text", precision)
    try:
        tower = _text_tower(folder, meta, chosen, threads)
    except Exception as exc:  # a damaged tokenizer file: tokenizers raises its own exception type
        log.warning("exported text tower in %s is unreadable (%s); loading the whole model", folder, exc)
        return None
    return OnnxTextEncoder(Identity.from_json(meta), tower, chosen)


def load(
    cache_dir: Path,
    spec: str | None,
    precision: str = "auto",
    threads: int = 0,
    torch_encoder: Callable[[], Encoder] | None = None,
) -> OnnxEncoder | None:
    """The exported whole model for ``spec`` if there is a valid record, else None."""
    folder = record_dir(cache_dir, spec)
    meta = _read_meta(folder, spec)
    if meta is None or "image" not in meta["towers"]:
        return None
    chosen = {t: choose_precision(meta, t, precision) for t in ("image", "text")}
    try:
        image = ImageTower(
            folder / GRAPH_FILES["image"][chosen["image"]], ImagePrep.from_json(meta["towers"]["image"]), threads
        )
        text = _text_tower(folder, meta, chosen["text"], threads) if "text" in meta["towers"] else None
    except Exception as exc:
        log.warning("exported model in %s is unreadable (%s); loading the whole model", folder, exc)
        return None
    encoder = OnnxEncoder(Identity.from_json(meta), image, text, chosen, torch_encoder)
    encoder.has_dense = bool(meta.get("dense"))
    return encoder


def is_saved(cache_dir: Path, spec: str | None, model_id: str) -> bool:
    meta = _read_meta(record_dir(cache_dir, spec), spec)
    return meta is not None and meta.get("model_id") == model_id


def store(cache_dir: Path, spec: str | None, encoder: Encoder, fallback_reason: str | None = None) -> bool:
    """Export ``encoder``'s towers for ``spec`` if it has any and they reproduce the model; True when saved.

    Never raises: a model that cannot be exported, or a disk that cannot take it, costs speed later, never the load.
    """
    if is_saved(cache_dir, spec, encoder.model_id):
        return False
    folder = record_dir(cache_dir, spec)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(folder)
        tmp = temp_path(folder)
        tmp.mkdir()
    except OSError as exc:
        log.warning("could not save the exported model of %s in %s: %s", encoder.display_name, folder, exc)
        return False
    try:
        from clifs.engine.models.onnx_export import export

        exported = export(encoder, tmp, probe_images(), PROBE_TEXTS, PROBE_TOLERANCE)
        if exported is None:
            return False
        meta = {
            "format": FORMAT,
            "spec": spec,
            "model_id": encoder.model_id,
            "display_name": encoder.display_name,
            "dim": encoder.dim,
            "is_clip": encoder.is_clip,
            "logit_scale": encoder.logit_scale,
            "fallback_reason": fallback_reason,
            "sources": [_source_stamp(p) for p in exported["sources"]],
            "towers": exported["towers"],
            "dense": exported.get("dense"),
            "graphs": {p.name: _graph_stamp(p) for p in sorted(tmp.iterdir()) if p.suffix in (".onnx", ".json")},
        }
        (tmp / _META).write_text(json.dumps(meta, indent=1))
        _swap_in(tmp, folder)
        return True
    except Exception as exc:  # a full or read-only disk, an exporter that cannot handle a model
        log.warning("could not save the exported model of %s in %s: %s", encoder.display_name, folder, exc)
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(tmp: Path, folder: Path) -> None:
    """Replace ``folder`` by the finished ``tmp``, so a reader never sees half a record."""
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)
