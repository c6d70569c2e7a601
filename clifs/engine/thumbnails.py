"""Thumbnails cached on disk under ``<home>/cache/thumbs``.

A thumbnail is keyed by the file's path, mtime and size (and the timestamp of
a video frame), so an edited file gets a fresh thumbnail and an unchanged one
is decoded once, ever. Videos are seeked to the moment, not decoded from the
start. No Qt here: the GUI loads the cached JPEG in its own worker threads.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from PIL import Image

from clifs.engine.media import check_regular_file, kind_of, open_image

THUMB_SIZE = 256


class ThumbnailCache:
    def __init__(self, directory: Path, size: int = THUMB_SIZE, max_image_pixels: int = 120_000_000):
        self.directory = Path(directory)
        self.size = size
        self.max_image_pixels = max_image_pixels

    def key(self, path: str, mtime: float, size: int, timestamp: float | None = None) -> str:
        moment = "" if timestamp is None else f"@{timestamp:.3f}"
        raw = f"{path}\0{mtime:.6f}\0{size}\0{self.size}{moment}"
        return hashlib.sha1(raw.encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, path: str | Path, timestamp: float | None = None) -> Path:
        """The cached thumbnail of ``path`` (at ``timestamp`` for a video), made now if missing.

        Raises ``MediaError`` with a readable reason when the file cannot be decoded.
        """
        path = str(path)
        st = check_regular_file(path)
        key = self.key(path, st.st_mtime, st.st_size, timestamp)
        target = self.directory / key[:2] / f"{key}.jpg"
        if target.is_file():
            return target
        image = self._render(path, timestamp)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Two threads may render the same thumbnail: each writes its own temp file, the rename is atomic.
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                image.save(f, "JPEG", quality=85)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def _render(self, path: str, timestamp: float | None) -> Image.Image:
        if kind_of(path) == "video":
            from clifs.engine.video import read_frame

            image = read_frame(path, timestamp or 0.0)
        else:
            image = open_image(path, self.max_image_pixels, min_side=self.size)
        image.thumbnail((self.size, self.size), Image.Resampling.LANCZOS)
        return image
