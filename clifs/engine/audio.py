"""Sound decoded, resampled and cut into windows for an audio tower.

PyAV (ffmpeg in its wheel) decodes every container the issue names (WAV, FLAC, MP3, Ogg/Opus,
M4A/AAC) and the soundtrack of a video, and resamples to the tower's rate in mono float32. The
sound is cut into windows of the tower's length, overlapping by half; a window quieter than
``SILENCE_DBFS`` is skipped (a silent file has no windows, which is no error). At most
``max_windows`` per file, spread evenly over its length as video frames are, so a 3-hour podcast
makes a few hundred items, not thousands; decoding streams, so memory stays bounded by the windows
kept. Every failure becomes a ``MediaError`` a person can read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clifs.engine.media import MediaError, check_regular_file
from clifs.engine.video_diagnosis import describe_unplayable

#: A window whose RMS level is below this (dB relative to full scale) counts as silence.
SILENCE_DBFS = -50.0
#: The most windows one file (or one video's soundtrack) becomes.
MAX_WINDOWS = 240
#: A file whose decodable sound ends before this share of the length its header promises is truncated.
TRUNCATED_SHARE = 0.9


@dataclass
class SoundWindows:
    """The kept windows of one file's sound, each with the time (seconds) it starts at."""

    windows: np.ndarray  # (n, window samples) float32 mono in [-1, 1]
    starts: list[float]
    duration: float  # seconds of sound decoded

    @property
    def silent(self) -> bool:
        """Sound was decoded but every window of it was below the silence threshold."""
        return not self.starts


def read_sound(
    path: str | Path,
    rate: int,
    window_seconds: float,
    *,
    hop_seconds: float | None = None,
    max_windows: int = MAX_WINDOWS,
    soundtrack: bool = False,
) -> SoundWindows | None:
    """The windows of the first audio stream of ``path``, resampled to ``rate`` Hz mono.

    ``hop_seconds`` (default half a window) apart, at most ``max_windows`` spread evenly over the
    sound's length. With ``soundtrack`` (a video's), a file with no audio stream gives None;
    otherwise that is a ``MediaError``, as is every file that cannot be decoded.
    """
    import av

    check_regular_file(path)
    size = round(window_seconds * rate)
    hop = hop_seconds or window_seconds / 2
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise MediaError(_unreadable(path, exc)) from None
    with container:
        stream = next((s for s in container.streams if s.type == "audio"), None)
        if stream is None:
            if soundtrack:
                return None
            raise MediaError("no audio stream: the file holds no sound to index")
        stated = _stated_seconds(container, stream)
        cutter = _WindowCutter(rate, size, _step(stated, window_seconds, hop, max_windows), max_windows)
        error = _decode_into(container, stream, rate, cutter)
        promised = _exact_seconds(path, container, stated)
    decoded = cutter.total / rate
    if cutter.total == 0:
        reason = f" ({error})" if error else ""
        raise MediaError(f"no decodable audio: the audio stream holds no frames that could be decoded{reason}")
    if promised and decoded < TRUNCATED_SHARE * promised:
        raise MediaError(
            f"truncated audio: its header promises {promised:.1f} s but only {decoded:.1f} s could be decoded"
        )
    windows, starts = cutter.kept()
    return SoundWindows(windows, starts, decoded)


def _unreadable(path: str | Path, exc: Exception) -> str:
    with open(path, "rb") as f:
        head = f.read(64)
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "not an audio file: it holds text"
    if head[4:8] == b"ftyp":
        return describe_unplayable(path)  # names a truncated MP4/M4A or one without its index
    return f"not an audio file ffmpeg can read (corrupt or unknown format: {_ffmpeg_words(exc)})"


def _ffmpeg_words(exc: Exception) -> str:
    """FFmpeg's reason without the errno and the path PyAV wraps it in."""
    return str(getattr(exc, "strerror", None) or exc).strip().rstrip(".").lower()


def _stated_seconds(container, stream) -> float | None:
    """The length the header states or ffmpeg estimates, or None when there is neither."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def _exact_seconds(path: str | Path, container, stated: float | None) -> float | None:
    """The length the header promises when the format records it exactly (FLAC's sample count, an MP4's
    track length, an MP3's Xing/Info frame count, a WAV's data chunk), else None: ffmpeg's estimate
    from the bit rate (an MP3 without a Xing frame, ADTS AAC) would call a valid file truncated."""
    fmt = container.format.name
    if fmt == "wav":
        return _wav_data_seconds(path)
    if fmt == "flac" or fmt.startswith("mov,mp4"):
        return stated
    if fmt == "mp3":
        with open(path, "rb") as f:
            head = f.read(1 << 16)
        return stated if any(tag in head for tag in (b"Xing", b"Info", b"VBRI")) else None
    return None


def _wav_data_seconds(path: str | Path) -> float | None:
    """The seconds a RIFF WAVE's data chunk declares (ffmpeg measures a truncated one by its bytes)."""
    with open(path, "rb") as f:
        if f.read(12)[8:12] != b"WAVE":
            return None
        byte_rate = None
        while len(header := f.read(8)) == 8:
            chunk, length = header[:4], int.from_bytes(header[4:], "little")
            if chunk == b"fmt ":
                byte_rate = int.from_bytes(f.read(16)[8:12], "little")
                f.seek(length - 16 + (length & 1), 1)
            elif chunk == b"data":
                return length / byte_rate if byte_rate and length < 0xFFFFFFF0 else None  # a streamed WAV: no length
            else:
                f.seek(length + (length & 1), 1)
    return None


def _step(duration: float | None, window: float, hop: float, max_windows: int) -> float:
    """Seconds between window starts: ``hop``, or wider so ``max_windows`` cover the whole length."""
    if not duration or max_windows < 2:
        return hop
    return max(hop, max(duration - window, 0.0) / (max_windows - 1))


def _decode_into(container, stream, rate: int, cutter: _WindowCutter) -> str | None:
    """Feed the resampled sound to ``cutter``; the decoder's complaint when it stopped early, else None."""
    import av

    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    try:
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                cutter.feed(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            cutter.feed(out.to_ndarray().reshape(-1))
    except (av.error.FFmpegError, ValueError) as exc:
        return _ffmpeg_words(exc)  # a damaged stream: what came before it is kept
    return None


class _WindowCutter:
    """Cuts a window every ``step`` seconds out of streamed samples, dropping silence. A length the
    header misjudged cannot make too many: past twice ``max_windows`` every other one is dropped and
    the step doubles, so the kept windows stay spread over the whole sound."""

    def __init__(self, rate: int, size: int, step: float, max_windows: int):
        self.rate, self.size, self.step, self.max_windows = rate, size, step, max_windows
        self.taken = 0  # windows cut so far (silent ones included): the next starts at taken * step
        self.total = 0  # samples fed so far
        self.buffer = np.zeros(0, np.float32)  # the samples from ``buffer_at`` on
        self.buffer_at = 0
        self.windows: list[np.ndarray] = []
        self.starts: list[float] = []
        self.floor = 10 ** (SILENCE_DBFS / 20)

    def _next_start(self) -> int:
        return round(self.taken * self.step * self.rate)

    def feed(self, samples: np.ndarray) -> None:
        self.buffer = np.concatenate([self.buffer, samples.astype(np.float32, copy=False)])
        self.total += len(samples)
        while (start := self._next_start()) + self.size <= self.total:
            self._keep_if_heard(self.buffer[start - self.buffer_at : start - self.buffer_at + self.size], start)
            self.taken += 1
            if len(self.starts) > 2 * self.max_windows:
                self.windows, self.starts = self.windows[::2], self.starts[::2]
                self.taken, self.step = -(-self.taken // 2), self.step * 2
        keep_from = min(self._next_start(), self.total)
        if keep_from > self.buffer_at:
            self.buffer = self.buffer[keep_from - self.buffer_at :]
            self.buffer_at = keep_from

    def _keep_if_heard(self, window: np.ndarray, start: int) -> None:
        if math.sqrt(float(np.mean(np.square(window, dtype=np.float64)))) >= self.floor:
            self.windows.append(np.clip(window, -1.0, 1.0))
            self.starts.append(round(start / self.rate, 3))

    def kept(self) -> tuple[np.ndarray, list[float]]:
        """The kept windows, at most ``max_windows`` (evenly thinned); a sound shorter than one window
        is one window padded with silence."""
        if self.taken == 0 and 0 < self.total < self.size:
            self._keep_if_heard(np.pad(self.buffer, (0, self.size - len(self.buffer))), 0)
        windows, starts = self.windows, self.starts
        if len(starts) > self.max_windows:
            pick = np.linspace(0, len(starts) - 1, self.max_windows).round().astype(int)
            windows, starts = [windows[i] for i in pick], [starts[i] for i in pick]
        return (np.stack(windows) if windows else np.zeros((0, self.size), np.float32)), starts


def _peaks(samples: np.ndarray, block: int = 160) -> np.ndarray:
    """The peak level of each ``block`` samples (20 ms at 8 kHz): a long file's waveform stays small."""
    n = -(-len(samples) // block) * block
    return np.abs(np.pad(samples, (0, n - len(samples)))).reshape(-1, block).max(axis=1)


def waveform(path: str | Path, points: int = 400, rate: int = 8000) -> tuple[np.ndarray, float]:
    """The peak level of ``points`` equal slices of the sound (for a thumbnail), in [0, 1], and its
    length in seconds."""
    import av

    check_regular_file(path)
    chunks: list[np.ndarray] = []
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                raise MediaError("no audio stream")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            try:
                for frame in container.decode(stream):
                    chunks += [_peaks(out.to_ndarray().reshape(-1)) for out in resampler.resample(frame)]
            except (av.error.FFmpegError, ValueError):
                pass  # a damaged tail: draw what came before it
    except av.error.FFmpegError as exc:
        raise MediaError(_unreadable(path, exc)) from None
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)  # peaks of 20 ms blocks
    if len(samples) == 0:
        raise MediaError("no decodable audio")
    edges = np.linspace(0, len(samples), points + 1).astype(int)
    last = len(samples) - 1  # a short sound drawn wide: a slice narrower than a block takes its block's peak
    peaks = np.array([samples[min(a, last) : max(b, a + 1)].max() for a, b in zip(edges[:-1], edges[1:])], np.float32)
    return peaks, len(samples) * 160 / rate
