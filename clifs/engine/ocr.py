"""Reading the words in pictures: RapidOCR (PP-OCRv6 detection and recognition, a 0/180 degree
direction classifier; ONNX files shipped inside the ``rapidocr`` wheel) on ONNX Runtime, offline.

Speed on a small CPU comes from three things. The picture is shrunk before detection to what the
detector needs (``max_side`` on its long side; a JPEG is decoded at that size by libjpeg's DCT
scaling), detection dominates, and recognition is skipped where detection finds nothing; the
recognised lines of one picture go through the recogniser in batches. Boxes come back in the
file's own pixels (the upright image, or the video's frame size).

``ENGINE_VERSION`` is stored with every result, so a later engine (or model) can read again what
an older one read.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from clifs.engine.media import MediaError, open_image

log = logging.getLogger(__name__)

#: The detector's input: the long side of the picture it sees, in pixels.
DEFAULT_MAX_SIDE = 960
#: Recognised lines below this confidence are dropped (0.5, RapidOCR's default, lets through digits read in foliage).
MIN_CONFIDENCE = 0.6
#: Crops per recogniser run.
REC_BATCH = 16
#: The second, smaller look (for large letters) is taken only when it is at least this large.
MIN_SECOND_LOOK = 240
#: The second look's size, as a share of the first's.
SECOND_LOOK = 3


def engine_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"rapidocr {version('rapidocr')} PP-OCRv6 small"
    except PackageNotFoundError:
        return "rapidocr (unknown version)"


class OcrUnavailable(RuntimeError):
    """The OCR engine cannot run here (rapidocr or onnxruntime missing)."""


@dataclass
class TextLine:
    text: str
    confidence: float
    box: list[list[int]]  # four (x, y) corners in the file's pixels, clockwise from top-left


@dataclass
class ItemText:
    """What was read from one item: an image, or one kept video frame."""

    item_id: int
    lines: list[TextLine] = field(default_factory=list)


class OcrEngine:
    """One RapidOCR instance; ``read`` may be called from one thread at a time."""

    def __init__(self, max_side: int = DEFAULT_MAX_SIDE, threads: int = 0):
        self.max_side = int(max_side)
        self.threads = threads or min(4, os.cpu_count() or 1)
        self.version = engine_version()
        self._ocr = None
        self._lock = threading.Lock()

    def _engine(self):
        if self._ocr is None:
            try:
                from rapidocr import RapidOCR
            except ImportError as exc:
                raise OcrUnavailable(
                    f"the OCR engine is not installed ({exc}): pip install rapidocr onnxruntime"
                ) from None
            self._ocr = RapidOCR(
                params={
                    "Global.log_level": "error",
                    "Global.text_score": MIN_CONFIDENCE,
                    "Global.max_side_len": 2 * self.max_side,
                    "Det.limit_type": "max",
                    "Det.limit_side_len": self.max_side,
                    "Rec.rec_batch_num": REC_BATCH,
                    "Cls.cls_batch_num": REC_BATCH,
                    "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
                    "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                }
            )
            logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        return self._ocr

    def read(self, image: Image.Image, original_size: tuple[int, int] | None = None) -> list[TextLine]:
        """The lines of text in ``image``; boxes scaled to ``original_size`` (width, height) when the
        image was decoded smaller than the file.

        The detector sees the picture with its long side at ``max_side`` (a small picture is enlarged
        up to twice, a large one shrunk). Letters taller than about a tenth of that escape it, so
        when it finds nothing it looks once more at a third of that size (a ninth of the pixels)."""
        rgb = image.convert("RGB")
        full = original_size or rgb.size
        long_side = max(rgb.size)
        first = min(self.max_side, 2 * long_side)
        lines = self._read_at(rgb, first, full)
        if not lines and first // SECOND_LOOK >= MIN_SECOND_LOOK:
            lines = self._read_at(rgb, first // SECOND_LOOK, full)
        return lines

    def _read_at(self, rgb: Image.Image, side: int, full: tuple[int, int]) -> list[TextLine]:
        scaled = resize_long_side(rgb, side)
        scale_x, scale_y = full[0] / scaled.width, full[1] / scaled.height
        bgr = np.ascontiguousarray(np.asarray(scaled)[:, :, ::-1])
        with self._lock:
            result = self._engine()(bgr)
        if getattr(result, "txts", None) is None or result.boxes is None:
            return []
        lines = []
        for box, text, score in zip(result.boxes, result.txts, result.scores):
            if _noise(text.strip(), float(score)):
                continue
            corners = [[int(round(x * scale_x)), int(round(y * scale_y))] for x, y in np.asarray(box).tolist()]
            lines.append(TextLine(text.strip(), round(float(score), 4), corners))
        return lines

    def read_file(self, path: str, kind: str, items: list[tuple[int, float | None]], max_pixels: int) -> list[ItemText]:
        """Every item of one indexed file: the image, or the kept frames of a video (by timestamp).

        Raises ``MediaError`` (with a reason a person can read) when the file cannot be decoded."""
        if kind == "video":
            return self._read_video(path, items)
        image = open_image(path, max_pixels, min_side=self._draft_side(path))
        lines = self.read(image, image.info.get("original_size", image.size))
        return [ItemText(items[0][0], lines)] if items else []

    def _draft_side(self, path: str) -> int:
        """The short side to ask libjpeg for, so the long side still reaches ``max_side``."""
        try:
            with Image.open(path) as im:
                w, h = im.size
        except Exception:  # open_image says what is wrong with it
            return self.max_side
        return max(1, math.ceil(self.max_side * min(w, h) / max(w, h, 1)))

    def _read_video(self, path: str, items: list[tuple[int, float | None]]) -> list[ItemText]:
        from clifs.engine.video import frames_at

        by_time = sorted((ts or 0.0, item_id) for item_id, ts in items)
        out: dict[int, ItemText] = {item_id: ItemText(item_id) for item_id, _ in items}
        wanted = [t for t, _ in by_time]
        for (_, item_id), frame in zip(by_time, frames_at(path, wanted, self.max_side)):
            if frame is None:
                continue
            image, full = frame
            out[item_id].lines = self.read(image, full)
        return [out[item_id] for item_id, _ in items]


def _noise(text: str, confidence: float) -> bool:
    """A line that is most likely texture read as a letter: empty, or one sign (a lone "0" in foliage);
    one CJK character counts when read with confidence."""
    from clifs.engine.ocr_text import has_cjk, normalise

    folded = normalise(text).replace(" ", "")
    if len(folded) >= 2:
        return False
    return not (folded and has_cjk(folded) and confidence >= 0.9)


def resize_long_side(image: Image.Image, side: int) -> Image.Image:
    """``image`` with its long side at ``side`` (area averaging down, bicubic up)."""
    w, h = image.size
    scale = side / max(w, h)
    if abs(scale - 1.0) < 0.02:
        return image
    method = Image.Resampling.BOX if scale < 1.0 else Image.Resampling.BICUBIC
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), method)


def read_path(engine: OcrEngine, path: str | Path, max_pixels: int = 120_000_000) -> list[TextLine]:
    """Read any image file (not necessarily indexed)."""
    return engine.read_file(str(path), "image", [(0, None)], max_pixels)[0].lines


def iter_lines(results: list[ItemText]) -> Iterator[tuple[int, TextLine]]:
    for item in results:
        for line in item.lines:
            yield item.item_id, line


__all__ = ["OcrEngine", "OcrUnavailable", "TextLine", "ItemText", "MediaError", "engine_version", "read_path"]
