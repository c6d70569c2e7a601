"""Video frames sampled by time (not frame-number modulo), keeping only scene changes.

Samples fall every ``every_seconds`` (at most ``max_frames``, spread evenly over
a longer video). Between close samples the decoder just walks forward (grab is
cheaper than a seek, which decodes from the previous keyframe anyway); across a
long gap it seeks. A sample is kept only when it differs from the last kept
frame, so a static two-hour lecture makes a handful of items, not thousands.
Each kept frame carries the timestamp the decoder reports for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from clifs.engine.media import MediaError, check_regular_file
from clifs.engine.video_diagnosis import describe_unplayable

# FFmpeg prints decoder complaints ("header damaged") to stderr; the reasons we record say it better.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

#: Beyond this gap (seconds) between samples, seek instead of decoding every frame in between.
SEEK_GAP = 5.0
#: A 32x32 cell counts as changed when a colour channel moved by more than this (0-255).
CELL_CHANGE = 24


@dataclass
class SampledVideo:
    frames: list[tuple[float, Image.Image]]  # (timestamp in seconds, RGB frame)
    duration: float
    width: int
    height: int


def sample_frames(
    path: str | Path,
    every_seconds: float = 1.0,
    max_frames: int = 600,
    min_change: float = 0.02,
    max_side: int = 640,
) -> SampledVideo:
    """Frames every ``every_seconds`` (at most ``max_frames``), each kept only if at least
    ``min_change`` of the picture (as a share of 32x32 cells) differs from the last kept frame.

    Raises ``MediaError`` with a readable reason when there is nothing to index.
    """
    import cv2

    check_regular_file(path)
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise MediaError(describe_unplayable(path))
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width <= 0 or height <= 0:
            raise MediaError(describe_unplayable(path))
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0
        duration = count / fps if fps > 0 and count > 0 else 0.0
        # No usable length in the header: sample from the start until the stream ends.
        times = sample_times(duration, every_seconds, max_frames) if duration > 0 else None
        keeper = _Keeper(min_change, max_side)
        for t, frame in _frames_at(cap, times or [i * every_seconds for i in range(max_frames)], fps):
            keeper.offer(t, frame)
        if not keeper.kept:
            raise MediaError("no readable frames: the video stream could not be decoded")
        return SampledVideo(keeper.kept, duration or keeper.last_time, width, height)
    finally:
        cap.release()


def sample_times(duration: float, every_seconds: float, max_frames: int) -> list[float]:
    """Every ``every_seconds`` from 0, or ``max_frames`` spread evenly when that would be more."""
    n = int(duration // every_seconds) + 1
    if n > max_frames:
        return [float(t) for t in np.linspace(0.0, duration, max_frames, endpoint=False)]
    return [i * every_seconds for i in range(n) if i * every_seconds < duration]


def _position(cap) -> float:
    import cv2

    return cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0


def _frames_at(cap, times: list[float], fps: float) -> Iterator[tuple[float, np.ndarray]]:
    """The first frame at or after each time, decoding forward and seeking across long gaps.

    Stops at the first frame that cannot be decoded (a truncated file keeps what came before).
    """
    import cv2

    tolerance = 0.5 / fps if fps > 0 else 0.02
    position: float | None = None  # timestamp of the last grabbed frame
    for t in times:
        if position is not None and position >= t - tolerance:
            continue  # a seek overshot this sample
        if t - (position if position is not None else 0.0) > SEEK_GAP:
            cap.set(cv2.CAP_PROP_POS_MSEC, t * 1000.0)
            position = None
        while position is None or position < t - tolerance:
            if not cap.grab():
                return
            position = _position(cap)
        ok, frame = cap.retrieve()
        if not ok or frame is None:
            return
        yield position, frame


def _signature(frame_bgr: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(frame_bgr, (32, 32), interpolation=cv2.INTER_AREA).astype(np.int16)


def _changed(a: np.ndarray, b: np.ndarray, min_change: float) -> bool:
    cells = np.abs(a - b).max(axis=2) > CELL_CHANGE
    return float(cells.mean()) >= min_change


def _to_image(frame_bgr: np.ndarray, max_side: int) -> Image.Image:
    import cv2

    scale = min(1.0, max_side / max(frame_bgr.shape[:2]))
    if scale < 1.0:
        frame_bgr = cv2.resize(frame_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return Image.fromarray(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB))


class _Keeper:
    """Keeps a frame only when it differs from the last kept one."""

    def __init__(self, min_change: float, max_side: int):
        self.min_change = min_change
        self.max_side = max_side
        self.kept: list[tuple[float, Image.Image]] = []
        self.last_time = 0.0  # timestamp of the last frame offered
        self._last: np.ndarray | None = None

    def offer(self, t: float, frame_bgr: np.ndarray) -> None:
        self.last_time = t
        sig = _signature(frame_bgr)
        if self._last is not None and not _changed(sig, self._last, self.min_change):
            return
        self._last = sig
        self.kept.append((round(t, 3), _to_image(frame_bgr, self.max_side)))


def read_frame(path: str | Path, timestamp: float) -> Image.Image:
    """One frame at ``timestamp`` seconds (for thumbnails and previews)."""
    import cv2

    check_regular_file(path)
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise MediaError(describe_unplayable(path))
        if timestamp > 0:  # some MPEG files land past the first frame when asked to seek to 0
            cap.set(cv2.CAP_PROP_POS_MSEC, timestamp * 1000.0)
        ok, frame = cap.read()
        if not ok:
            raise MediaError(f"cannot read a frame at {timestamp:.1f} s")
        return Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()


def frames_at(
    path: str | Path, timestamps: list[float], max_side: int
) -> Iterator[tuple[Image.Image, tuple[int, int]] | None]:
    """For each of ``timestamps`` (ascending, as ``sample_frames`` reported them) the frame there,
    at most ``max_side`` on its long side, with the video's (width, height); None for a time the
    decoder cannot reach. Raises ``MediaError`` when the video cannot be opened."""
    import cv2

    check_regular_file(path)
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise MediaError(describe_unplayable(path))
        size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        tolerance = 0.5 / fps if fps > 0 else 0.02
        decoded = _frames_at(cap, timestamps, fps)
        current = next(decoded, None)
        for t in timestamps:
            while current is not None and current[0] < t - tolerance:
                current = next(decoded, None)
            if current is None or current[0] > t + max(tolerance, 0.05):
                yield None
                continue
            yield _to_image(current[1], max_side), size
    finally:
        cap.release()
