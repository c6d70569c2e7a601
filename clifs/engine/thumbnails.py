"""Thumbnails cached on disk under ``<home>/cache/thumbs``.

A thumbnail is keyed by the file's path, mtime and size (and the timestamp of
a video frame), so an edited file gets a fresh thumbnail and an unchanged one
is decoded once, ever. Videos are seeked to the moment, not decoded from the
start; a sound is drawn as its waveform, the moment marked. No Qt here: the GUI loads the cached JPEG in its own worker threads.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

from clifs.engine.media import check_regular_file, kind_of, open_image

THUMB_SIZE = 256
#: The waveform's colours: background, the sound, the moment of the hit.
WAVE_BACKGROUND, WAVE_INK, WAVE_MOMENT = (32, 36, 44), (110, 190, 255), (255, 190, 60)


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
        elif kind_of(path) == "audio":
            return render_waveform(path, timestamp, self.size, self.size * 3 // 4)
        else:
            image = open_image(path, self.max_image_pixels, min_side=self.size)
        image.thumbnail((self.size, self.size), Image.Resampling.LANCZOS)
        return image


def render_waveform(path: str | Path, timestamp: float | None, width: int, height: int) -> Image.Image:
    """A sound's waveform (peak level across its length, mirrored about the middle), with a marker
    at ``timestamp`` seconds when given. Raises ``MediaError`` when the sound cannot be decoded."""
    from clifs.engine.audio import waveform

    peaks, duration = waveform(path, points=width)
    image = Image.new("RGB", (width, height), WAVE_BACKGROUND)
    draw = ImageDraw.Draw(image)
    middle, reach = height / 2, height * 0.45
    scale = 1.0 / max(float(peaks.max()), 1e-3)  # quiet recordings fill the picture too
    for x, peak in enumerate(peaks):
        half = max(peak * scale * reach, 0.5)
        draw.line([(x, middle - half), (x, middle + half)], fill=WAVE_INK)
    if timestamp is not None and duration > 0:
        x = min(width - 1, round(timestamp / duration * width))
        draw.rectangle([x - 1, 0, x + 1, height], fill=WAVE_MOMENT)
    return image
