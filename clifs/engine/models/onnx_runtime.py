"""Exported towers on ONNX Runtime: what indexing and searching on a plain CPU run, without torch.

A model's towers are exported once (clifs.engine.models.onnx_export, with torch) into a record
of the model cache (clifs.engine.models.model_cache); this module runs them. Everything a
tower needs besides its graph is plain data in the record: the image preprocessing (PIL and
numpy, the same arithmetic as open_clip's torchvision transform), the tokenizer (a
``tokenizers`` JSON plus the text cleaning open_clip applies first), and how texts are padded.
Sessions are created on first use, so opening a record costs a JSON read.
"""

from __future__ import annotations

import html
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from clifs.engine.models.base import DenseFeatures, Encoder, TextEncoder

log = logging.getLogger(__name__)

#: How each precision's graph is named in a record.
GRAPH_FILES = {"image": {"fp32": "visual.onnx", "int8": "visual.int8.onnx"},
               "text": {"fp32": "textual.onnx", "int8": "textual.int8.onnx"}}  # fmt: skip
RUNTIME = "onnxruntime"
#: Whether idle intra-op threads busy-wait for the next op (ONNX Runtime's default) or sleep.
ALLOW_SPINNING = False


def use_onnx(runtime: str, device: str) -> bool:
    """Whether the whole model runs on ONNX Runtime: "onnx" always, "torch" never, "auto" on a CPU.

    "auto" with device "auto" asks torch about a GPU only where an NVIDIA driver is installed, so a
    machine without one never imports torch to find out.
    """
    if runtime in ("onnx", "torch"):
        return runtime == "onnx"
    if device != "auto":
        return device == "cpu"
    if not (os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")):
        return True
    import torch

    return not torch.cuda.is_available()


def default_threads() -> int:
    """Intra-op threads when the setting is 0: one per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Threads that spin while waiting for work take the core a decode thread needs (bench/cpu_threads.py).
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if ALLOW_SPINNING else "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class _LazySession:
    """An InferenceSession made on first use (thread-safe), so a record that is opened but not run costs nothing."""

    def __init__(self, path: Path, threads: int):
        self.path = path
        self.threads = threads
        self._session = None
        self._lock = threading.Lock()

    def get(self):
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = _session(self.path, self.threads)
        return self._session

    def warm_up_in_background(self) -> None:
        """Start building the session now, off this thread (decoding the first batch overlaps it).

        Not a daemon: a process that exits while ONNX Runtime is still building the session would
        abort ("terminate called without an active exception"); the interpreter waits for it instead."""
        threading.Thread(target=self._warm, name="clifs-model-load").start()

    def _warm(self) -> None:
        try:
            self.get()
        except Exception as exc:  # a damaged graph: the first real use raises it where it is handled
            log.debug("warming up %s failed: %s", self.path, exc)

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.get().run(None, feeds)[0]


# -- images -------------------------------------------------------------------------------------
_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
             "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}  # fmt: skip


@dataclass(frozen=True)
class ImagePrep:
    """How an RGB image becomes the tower's input: resized, cropped, scaled to [0, 1], normalised.

    ``mode`` "shortest": torchvision's Resize(size) on the shorter side then CenterCrop(size) (open_clip's
    default eval transform); "squash": Resize((size, size)); "starter": the starter model's own rule
    (shorter side to size with rounding, crop at floor of the margin).
    """

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    mode: str = "shortest"
    interpolation: str = "bicubic"

    def to_json(self) -> dict:
        return {"size": self.size, "mean": list(self.mean), "std": list(self.std), "mode": self.mode,
                "interpolation": self.interpolation}  # fmt: skip

    @classmethod
    def from_json(cls, d: dict) -> ImagePrep:
        return cls(int(d["size"]), tuple(d["mean"]), tuple(d["std"]), d["mode"], d["interpolation"])

    def resized(self, image: Image.Image) -> Image.Image:
        image = image.convert("RGB")
        size, w, h = self.size, *image.size
        resample = _RESAMPLE[self.interpolation]
        if self.mode == "squash":
            return image.resize((size, size), resample)
        if self.mode == "starter":
            s = size / min(w, h)
            image = image.resize((max(size, round(w * s)), max(size, round(h * s))), resample)
            w, h = image.size
            left, top = (w - size) // 2, (h - size) // 2
            return image.crop((left, top, left + size, top + size))
        if self.mode != "shortest":
            raise ValueError(f"unknown resize mode {self.mode!r}")
        short, long = (w, h) if w <= h else (h, w)
        if short != size:  # torchvision's rule: the shorter side becomes size, the longer is truncated
            new_long = int(size * long / short)
            image = image.resize((size, new_long) if w <= h else (new_long, size), resample)
        w, h = image.size
        top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
        return image.crop((left, top, left + size, top + size))

    def __call__(self, image: Image.Image) -> np.ndarray:
        """An image -> (3, size, size) float32."""
        x = np.asarray(self.resized(image), dtype=np.float32) / np.float32(255.0)
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1))


# -- texts --------------------------------------------------------------------------------------
#: Printable ASCII and whitespace without "&": text ftfy.fix_text and html.unescape leave as it is
#: (tests/test_text_tower.py checks that on random strings).
_PLAIN = re.compile(r"[\t\n\r -%'-~]*")


def _clean(text: str, mode: str) -> str:
    """open_clip's text cleaning before its tokenizer: repair mojibake, unescape HTML twice, collapse
    whitespace ("whitespace"), and lower-case ("lower"); "none" leaves the text as it is."""
    if mode == "none":
        return text
    if _PLAIN.fullmatch(text):  # nothing ftfy or HTML unescaping would change: skip ftfy (~0.2 s cold)
        text = " ".join(text.split())
    else:
        import ftfy

        text = " ".join(html.unescape(html.unescape(ftfy.fix_text(text))).strip().split())
    if mode == "lower":
        return text.lower()
    if mode == "whitespace":
        return text
    raise ValueError(f"unknown text cleaning {mode!r}")


class Tokenizer:
    """Texts -> token ids as the model's own tokenizer gives them, through the ``tokenizers`` library.

    ``spec``: ``clean`` (see _clean), ``context_length``, ``pad_id``, ``pad`` ("longest": a batch is as
    long as its longest text, for towers whose padding changes nothing; "max": always context_length).
    """

    def __init__(self, path: Path, spec: dict):
        self.path = path
        self.spec = spec
        self.clean = spec["clean"]
        self.context_length = int(spec["context_length"])
        self.pad_longest = spec["pad"] == "longest"
        self.inputs = spec.get("inputs", ["tokens"])
        self._tok = None  # read on first use (~0.06 s for CLIP's vocabulary): indexing never needs it
        self._lock = threading.Lock()

    def _tokenizer(self):
        with self._lock:
            if self._tok is None:
                from tokenizers import Tokenizer as HFTokenizer

                tok = HFTokenizer.from_str(self.path.read_text(encoding="utf-8"))  # from_file parses slower
                tok.enable_truncation(self.context_length)
                tok.enable_padding(
                    pad_id=int(self.spec["pad_id"]), pad_token=self.spec.get("pad_token", "<pad>"),
                    length=None if self.pad_longest else self.context_length,
                )  # fmt: skip
                self._tok = tok
        return self._tok

    def __call__(self, texts: list[str]) -> dict[str, np.ndarray]:
        encoded = self._tokenizer().encode_batch([_clean(t, self.clean) for t in texts])
        feeds = {"tokens": np.array([e.ids for e in encoded], dtype=np.int64)}
        if "attention_mask" in self.inputs:
            feeds["attention_mask"] = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        return feeds


class TextTower:
    def __init__(self, graph: Path, tokenizer: Tokenizer, threads: int):
        self.tokenizer = tokenizer
        self.session = _LazySession(graph, threads)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        out = [self.session.run(self.tokenizer(texts[i : i + batch_size])) for i in range(0, len(texts), batch_size)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)


class ImageTower:
    def __init__(self, graph: Path, prep: ImagePrep, threads: int):
        self.prep = prep
        self.session = _LazySession(graph, threads)

    def encode(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run({"pixels": np.ascontiguousarray(batch, dtype=np.float32)}).astype(np.float32)


# -- encoders -----------------------------------------------------------------------------------
@dataclass
class Identity:
    """Who a record's towers are: the model's identity and what is shown of it."""

    model_id: str
    display_name: str
    dim: int
    is_clip: bool
    logit_scale: float
    fallback_reason: str | None = None

    @classmethod
    def from_json(cls, d: dict) -> Identity:
        return cls(d["model_id"], d["display_name"], int(d["dim"]), bool(d["is_clip"]), float(d["logit_scale"]),
                   d.get("fallback_reason"))  # fmt: skip


class OnnxTextEncoder(TextEncoder):
    """A model's text side on ONNX Runtime (a text search loads nothing else)."""

    def __init__(self, who: Identity, text: TextTower, precision: str):
        self.model_id, self.display_name, self.dim = who.model_id, who.display_name, who.dim
        self.is_clip, self.logit_scale, self.fallback_reason = who.is_clip, who.logit_scale, who.fallback_reason
        self.text = text
        self.runtime = f"{RUNTIME} {precision}"

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        return self.text.encode(texts) if texts else np.zeros((0, self.dim), np.float32)


class OnnxEncoder(Encoder):
    """The whole model on ONNX Runtime: images and texts; ``dense`` (masks, boxes) loads the torch model."""

    def __init__(
        self,
        who: Identity,
        image: ImageTower,
        text: TextTower | None,
        precision: dict[str, str],
        torch_encoder: Callable[[], Encoder] | None = None,
    ):
        self.model_id, self.display_name, self.dim = who.model_id, who.display_name, who.dim
        self.is_clip, self.logit_scale, self.fallback_reason = who.is_clip, who.logit_scale, who.fallback_reason
        self.image, self.text = image, text
        self.precision = precision
        #: What made this encoder's vectors, as the catalog records it ("onnxruntime int8").
        self.runtime = f"{RUNTIME} {precision['image']}"
        self.images_encoded = 0
        self._torch_encoder = torch_encoder
        self._dense_from: Encoder | None = None

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return self.image.prep(image)

    def stack(self, items: list) -> np.ndarray:
        return np.stack(items)

    def _encode_images(self, batch: np.ndarray) -> np.ndarray:
        return self.image.encode(batch)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        if self.text is None:
            return self._torch().encode_texts(texts)
        return self.text.encode(texts) if texts else np.zeros((0, self.dim), np.float32)

    def warm_up(self) -> None:
        """Start loading the image tower now, in the background."""
        self.image.session.warm_up_in_background()

    def dense(self) -> DenseFeatures | None:
        """Dense features need the torch model: loaded on first use (the vision tools only)."""
        return self._torch().dense()

    def _torch(self) -> Encoder:
        if self._dense_from is None:
            if self._torch_encoder is None:
                raise RuntimeError("this encoder was made without a way to load its torch model")
            self._dense_from = self._torch_encoder()
        return self._dense_from
