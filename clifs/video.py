"""Video frame sampling by time (not frame-number modulo), with scene-change filtering."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from clifs.media import MediaError, check_regular_file


@dataclass
class SampledVideo:
    frames: list[tuple[float, Image.Image]]  # (timestamp in seconds, RGB frame)
    duration: float
    width: int
    height: int


def _small_grey(frame_bgr: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY), (32, 32), interpolation=cv2.INTER_AREA).astype(
        np.float32
    )


def sample_frames(
    path: str | Path,
    every_seconds: float = 1.0,
    max_frames: int = 600,
    min_change: float = 6.0,
    max_side: int = 640,
) -> SampledVideo:
    """Frames at fixed times (every ``every_seconds``, at most ``max_frames`` spread evenly),
    keeping one only when it differs from the last kept frame by ``min_change`` mean grey levels.

    A static two-hour lecture makes a handful of items, not thousands.
    """
    import cv2

    check_regular_file(path)
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise MediaError("not a video OpenCV can open (unknown or corrupt format)")
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width <= 0 or height <= 0:
            raise MediaError("no video stream (audio-only or corrupt file)")
        duration = count / fps if fps > 0 and count > 0 else 0.0
        times = _sample_times(duration, every_seconds, max_frames)
        kept: list[tuple[float, Image.Image]] = []
        last: np.ndarray | None = None
        for t in times:
            cap.set(cv2.CAP_PROP_POS_MSEC, t * 1000.0)
            ok, frame = cap.read()
            if not ok or frame is None:
                if t == 0.0:
                    continue
                break
            small = _small_grey(frame)
            if last is not None and float(np.abs(small - last).mean()) < min_change:
                continue
            last = small
            scale = min(1.0, max_side / max(frame.shape[:2]))
            if scale < 1.0:
                frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            kept.append((round(t, 3), Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))))
        if not kept:
            raise MediaError("no readable frames in the video")
        return SampledVideo(kept, duration, width, height)
    finally:
        cap.release()


def _sample_times(duration: float, every_seconds: float, max_frames: int) -> list[float]:
    if duration <= 0:
        return [0.0]
    n = int(duration // every_seconds) + 1
    if n > max_frames:
        return [float(t) for t in np.linspace(0.0, duration, max_frames, endpoint=False)]
    return [i * every_seconds for i in range(n)]


def read_frame(path: str | Path, timestamp: float) -> Image.Image:
    """One frame at ``timestamp`` seconds (for thumbnails and previews)."""
    import cv2

    check_regular_file(path)
    cap = cv2.VideoCapture(str(path))
    try:
        cap.set(cv2.CAP_PROP_POS_MSEC, timestamp * 1000.0)
        ok, frame = cap.read()
        if not ok:
            raise MediaError(f"cannot read a frame at {timestamp:.1f} s")
        return Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
