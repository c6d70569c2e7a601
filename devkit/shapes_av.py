"""Shapes-world media with sound: audio files in the common formats, and videos whose soundtrack is the
sound of the object on screen (devkit.sounds), segment by segment, so a test knows what is seen and
heard at every second. Everything is encoded with PyAV (ffmpeg in its wheel).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from devkit.shapes import render_scene, scene_rng
from devkit.sounds import scene_sound, sound_for

#: suffix -> (container format, audio codec, sample rates the codec takes or None for any).
AUDIO_FORMATS: dict[str, tuple[str, str, tuple[int, ...] | None]] = {
    ".wav": ("wav", "pcm_s16le", None),
    ".flac": ("flac", "flac", None),
    ".mp3": ("mp3", "libmp3lame", (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)),
    ".ogg": ("ogg", "libopus", (48000,)),
    ".opus": ("ogg", "libopus", (48000,)),
    ".m4a": ("mp4", "aac", None),
    ".aac": ("adts", "aac", None),
}


def _codec_rate(rate: int, allowed: tuple[int, ...] | None) -> int:
    if allowed is None or rate in allowed:
        return rate
    return min((r for r in allowed if r >= rate), default=max(allowed))


def _add_audio(container, codec: str, samples: np.ndarray, rate: int, codec_rate: int):
    """An audio stream in ``container`` and a function that encodes ``samples`` into it."""
    import av

    stream = container.add_stream(codec, rate=codec_rate, layout="mono")

    def encode() -> None:
        resampler = av.AudioResampler(format=stream.codec_context.format, layout="mono", rate=codec_rate)
        block = 4096
        pts = 0
        for start in range(0, len(samples), block):
            frame = av.AudioFrame.from_ndarray(samples[None, start : start + block], format="flt", layout="mono")
            frame.sample_rate = rate
            frame.pts = pts
            frame.time_base = Fraction(1, rate)
            pts += frame.samples
            for out in resampler.resample(frame):
                container.mux(stream.encode(out))
        for out in resampler.resample(None):
            container.mux(stream.encode(out))
        container.mux(stream.encode(None))

    return stream, encode


def write_audio(path: Path, samples: np.ndarray, rate: int) -> Path:
    """Write mono float32 ``samples`` at ``rate`` Hz; the format follows the suffix (see AUDIO_FORMATS)."""
    import av

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in AUDIO_FORMATS:
        raise ValueError(f"cannot write {suffix!r} audio; choose from {', '.join(AUDIO_FORMATS)}")
    fmt, codec, allowed = AUDIO_FORMATS[suffix]
    samples = np.clip(np.asarray(samples, np.float32), -1, 1)
    with av.open(str(path), "w", format=fmt) as container:
        _, encode = _add_audio(container, codec, samples, rate, _codec_rate(rate, allowed))
        encode()
    return path


def write_shapes_video(
    path: Path,
    segments: list[tuple[str, str, float]],
    *,
    size: int = 96,
    fps: int = 10,
    rate: int = 16000,
    seed: int = 0,
    audio: bool = True,
) -> Path:
    """An mp4 (MPEG-4 video, AAC sound) of ``segments``: (colour, shape, seconds) each, one after another.

    During a segment the frame shows that one object (a colour/shape of "none" shows an empty
    background and is nearly silent) and the soundtrack is its sound. ``audio=False`` writes no
    audio stream at all.
    """
    import av

    rng = scene_rng(seed)
    frames: list[np.ndarray] = []
    sounds: list[np.ndarray] = []
    for colour, shape, seconds in segments:
        empty = colour == "none" or shape == "none"
        scene = render_scene(rng, size, n_objects=0 if empty else 1, colours=None if empty else (colour,),
                             shapes=None if empty else (shape,))  # fmt: skip
        frames += [np.asarray(scene.image)] * round(seconds * fps)
        names = [] if empty else [f"{colour} {shape}"]
        sounds.append(scene_sound(names, seconds, rate, rng) if names else scene_sound([], seconds, rate, rng))
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width = video.height = size
        video.pix_fmt = "yuv420p"
        video.codec_context.bit_rate = 400_000
        encode_audio = None
        if audio:
            _, encode_audio = _add_audio(container, "aac", np.concatenate(sounds), rate, rate)
        for i, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if encode_audio is not None:
            encode_audio()
    return Path(path)


def write_object_sound(path: Path, colour: str, shape: str, seconds: float = 3.0, rate: int = 16000,
                       seed: int = 0) -> Path:  # fmt: skip
    """An audio file of one object's sound (the format from the suffix)."""
    return write_audio(path, sound_for(colour, shape, seconds, rate, scene_rng(seed)), rate)
