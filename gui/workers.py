"""Everything slow runs here, off the GUI thread: the model, searches, thumbnails, previews.

Each worker is a long-lived QObject on the GUI thread that runs jobs in its own
QThreadPool and reports back through signals (queued across threads, so the
slots run on the GUI thread). Jobs never touch widgets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QObject, QThreadPool, Signal
from PySide6.QtGui import QImage

from clifs.engine.library import Library
from clifs.engine.media import MediaError, kind_of, open_image
from clifs.engine.models.base import ModelUnavailable
from clifs.engine.search import Hit, Query
from clifs.engine.thumbnails import ThumbnailCache

log = logging.getLogger(__name__)


def pil_to_qimage(image: Image.Image) -> QImage:
    """An RGB PIL image as a QImage that owns its pixels (safe to hand to another thread)."""
    image = image.convert("RGB")
    data = image.tobytes()
    return QImage(data, image.width, image.height, 3 * image.width, QImage.Format.Format_RGB888).copy()


def _readable(exc: Exception) -> str:
    """One line a person can read; our own errors already are."""
    if isinstance(exc, (MediaError, ModelUnavailable)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class ModelLoader(QObject):
    """Loads the model and brings the vector index up to date (seconds for CLIP on a CPU)."""

    ready = Signal()
    failed = Signal(str)

    def __init__(self, library: Library, parent: QObject | None = None):
        super().__init__(parent)
        self.library = library
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)

    def start(self) -> None:
        self._pool.start(self._run)

    def _run(self) -> None:
        try:
            _ = self.library.encoder
            _ = self.library.vectors
        except Exception as exc:  # any failure must reach the window, not kill the thread silently
            if not isinstance(exc, ModelUnavailable):
                log.exception("loading the model failed")
            self.failed.emit(_readable(exc))
        else:
            self.ready.emit()

    def wait(self, msecs: int = -1) -> bool:
        return self._pool.waitForDone(msecs)


class SearchRunner(QObject):
    """Runs searches one at a time; a request overtaken by a newer one is skipped or its answer dropped."""

    finished = Signal(int, object)  # request id, list[Hit]
    failed = Signal(int, str)

    def __init__(self, library: Library, parent: QObject | None = None):
        super().__init__(parent)
        self.library = library
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # one encoder, one FAISS index: no concurrent searches
        self._latest = 0
        self._closed = False

    def submit(self, query: Query) -> int:
        self._latest += 1
        request_id = self._latest
        if not self._closed:
            self._pool.start(lambda: self._run(request_id, query))
        return request_id

    def close(self) -> None:
        """The window is closing: drop what was submitted and run nothing submitted later (a refresh
        queued by the indexer's last commit), so no search outlives this object."""
        self._closed = True
        self.cancel()

    def cancel(self) -> None:
        """Make every submitted request stale: queued ones are skipped, running ones' answers dropped."""
        self._latest += 1

    def is_current(self, request_id: int) -> bool:
        return request_id == self._latest

    def _run(self, request_id: int, query: Query) -> None:
        if not self.is_current(request_id):
            return  # the user typed on; a newer request is queued behind this one
        try:
            # Library.search takes the query's fields as keywords (and catches up with other indexers first).
            hits: list[Hit] = self.library.search(**{f.name: getattr(query, f.name) for f in fields(Query)})
        except Exception as exc:  # shown in the status bar; the window stays usable
            if not isinstance(exc, MediaError):
                log.exception("search failed")
            self.failed.emit(request_id, _readable(exc))
        else:
            if self.is_current(request_id):
                self.finished.emit(request_id, hits)

    def wait(self, msecs: int = -1) -> bool:
        return self._pool.waitForDone(msecs)


class ImageLoader(QObject):
    """Loads images by key in a thread pool; each key is in flight at most once."""

    loaded = Signal(str, QImage)
    failed = Signal(str, str)

    def __init__(
        self,
        load: Callable[[str, float | None], QImage],
        threads: int = 2,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self._load = load
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._pending: set[str] = set()
        self.loaded.connect(self._settle)
        self.failed.connect(self._settle)

    def request(self, key: str, path: str, timestamp: float | None = None, priority: int = 0) -> None:
        if key in self._pending:
            return
        self._pending.add(key)
        self._pool.start(lambda: self._run(key, path, timestamp), priority)

    def cancel_pending(self) -> None:
        """Drop queued jobs (a new search made them useless); running ones finish."""
        self._pool.clear()
        self._pending.clear()

    def wait(self, msecs: int = -1) -> bool:
        return self._pool.waitForDone(msecs)

    def _run(self, key: str, path: str, timestamp: float | None) -> None:
        try:
            image = self._load(path, timestamp)
        except Exception as exc:  # a broken file shows a placeholder, never an exception
            if not isinstance(exc, (MediaError, OSError)):
                log.exception("loading %s failed", path)
            self.failed.emit(key, _readable(exc))
        else:
            self.loaded.emit(key, image)

    def _settle(self, key: str, _value: object) -> None:
        self._pending.discard(key)


class VisionRunner(QObject):
    """Vision tools on one hit: zero-shot labels (a matmul on the stored embedding once the
    label texts are embedded and cached) and mask or box overlays for the query text (a dense
    pass over the image: seconds on a CPU)."""

    labels_ready = Signal(str, object)  # key, list[LabelScore]
    overlay_ready = Signal(str, QImage, str)  # key, the overlay, a note ("no “a bicycle” found"), or ""
    regions_ready = Signal(str, QImage, object)  # key, the overlay, list[Region] ("What's in it?")
    failed = Signal(str, str)  # key, reason

    #: The CLIP authors' 7-template subset: close to the 80-template ensemble at a tenth of its first-use cost.
    TEMPLATES = "compact"

    def __init__(self, library: Library, parent: QObject | None = None):
        super().__init__(parent)
        self.library = library
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)

    def labels(self, key: str, item_id: int) -> None:
        self._pool.start(lambda: self._run(key, self.labels_ready, lambda: self._labels(item_id)))

    def overlay(self, key: str, path: str, timestamp: float | None, text: str, mode: str) -> None:
        if mode == "regions":
            self._pool.start(lambda: self._run(key, None, lambda: self._regions(key, path, timestamp)))
            return
        self._pool.start(
            lambda: self._run(
                key, None, lambda: self.overlay_ready.emit(key, *self._overlay(path, timestamp, text, mode))
            )
        )

    def cancel_pending(self) -> None:
        self._pool.clear()

    def wait(self, msecs: int = -1) -> bool:
        return self._pool.waitForDone(msecs)

    def _run(self, key: str, done: Signal | None, job: Callable[[], object]) -> None:
        try:
            result = job()
        except Exception as exc:  # shown in the pane; the window carries on
            # Ours say what is wrong: an unreadable file, a model without a dense path (a ValueError).
            readable = isinstance(exc, (MediaError, ValueError))
            if not readable:
                log.exception("vision tool failed")
            self.failed.emit(key, str(exc) if readable else _readable(exc))
        else:
            if done is not None:  # None: the job reported its result itself
                done.emit(key, result)

    def _labels(self, item_id: int) -> list:
        from clifs.engine.vision.labels import label_embedding
        from clifs.engine.vision.vocabulary import default_labels

        encoder = self.library.encoder
        embedding = self.library.catalog.embedding_of(item_id, encoder.model_id)
        if embedding is None:
            raise MediaError("this file has no embedding for the current model yet")
        return label_embedding(
            encoder,
            embedding,
            default_labels(encoder),
            top=5,
            template_set=self.TEMPLATES,
            cache_dir=self.library.settings.cache_dir,
        )

    def _overlay(self, path: str, timestamp: float | None, text: str, mode: str) -> tuple[QImage, str]:
        """The mask or boxes of ``text`` over the picture, and a note when there is nothing to paint."""
        from clifs.engine.vision.boxes import detect
        from clifs.engine.vision.dense import segment
        from clifs.engine.vision.overlay import box_overlay, mask_overlay

        image = _load_picture(path, timestamp, 1024)
        encoder = self.library.encoder
        if mode == "mask":
            seg = segment(encoder, image, [text])
            out, found = mask_overlay(image, seg.label_map, [text]), seg.fractions()[text] > 0
        else:
            boxes = detect(encoder, image, [text])
            out, found = box_overlay(image, [(d.label, d.score, d.box) for d in boxes], [text]), bool(boxes)
        note = "" if found else f"No “{text}” found."
        if not encoder.is_clip:
            note = f"{note} The starter model's {'masks' if mode == 'mask' else 'boxes'} are coarse: a CLIP model finds more.".strip()
        return pil_to_qimage(out), note

    def _regions(self, key: str, path: str, timestamp: float | None) -> None:
        from clifs.engine.vision.overlay import regions_overlay
        from clifs.engine.vision.regions import auto_segment

        image = _load_picture(path, timestamp, 1024)
        found = auto_segment(self.library.encoder, image)
        self.regions_ready.emit(
            key, pil_to_qimage(regions_overlay(image, found.region_map, found.regions)), found.regions
        )


def _load_picture(path: str, timestamp: float | None, min_side: int) -> Image.Image:
    """The image, the video's frame at ``timestamp``, or a sound's waveform with that moment marked; RGB."""
    if kind_of(path) == "audio":
        from clifs.engine.thumbnails import render_waveform

        return render_waveform(path, timestamp, min_side * 2, min_side)
    if kind_of(path) == "video":
        from clifs.engine.video import read_frame

        return read_frame(path, timestamp or 0.0)
    return open_image(Path(path), min_side=min_side)


def thumbnail_loader(cache: ThumbnailCache, parent: QObject | None = None) -> ImageLoader:
    def load(path: str, timestamp: float | None) -> QImage:
        image = QImage(str(cache.get(path, timestamp)))
        if image.isNull():
            raise MediaError("the cached thumbnail could not be read")
        return image

    return ImageLoader(load, threads=2, parent=parent)


def preview_loader(max_side: int = 1600, parent: QObject | None = None) -> ImageLoader:
    """Large previews for the detail pane: decoded fresh (not cached), at most ``max_side`` pixels."""

    def load(path: str, timestamp: float | None) -> QImage:
        image = _load_picture(path, timestamp, max_side // 2)
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        return pil_to_qimage(image)

    return ImageLoader(load, threads=1, parent=parent)
