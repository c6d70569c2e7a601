"""Sound files for the audio tests: good ones from the shapes world, and each bad input of issue 15."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from devkit.shapes_av import write_audio, write_object_sound

RATE = 16000

#: name -> the start of the reason `clifs list --failed` gives for it.
BAD_REASONS = {
    "zero.mp3": "empty file (0 bytes)",
    "notes.mp3": "not an audio file: it holds text",
    "cut.flac": "truncated audio: its header promises",
    "cut.wav": "truncated audio: its header promises",
    "cut.m4a": "truncated MP4/MOV",
    "garbled.wav": "not an audio file ffmpeg can read",
    "noframes.flac": "no decodable audio: the audio stream holds no frames",
}


def write_bad_audio(folder: Path) -> dict[str, Path]:
    """Every bad input of issue 15 that is an audio file, made from a real 3-second sound."""
    folder.mkdir(parents=True, exist_ok=True)
    good = {
        ext: write_object_sound(folder / f".good{ext}", "red", "circle", seconds=3.0)
        for ext in (".flac", ".wav", ".m4a")
    }
    out = {name: folder / name for name in BAD_REASONS}
    out["zero.mp3"].write_bytes(b"")
    out["notes.mp3"].write_text("Shopping list\nmilk\neggs\n" * 20)
    for name, ext in (("cut.flac", ".flac"), ("cut.wav", ".wav"), ("cut.m4a", ".m4a")):
        data = good[ext].read_bytes()
        out[name].write_bytes(data[: len(data) // 3])
    wav = bytearray(good[".wav"].read_bytes())
    wav[8:44] = np.random.default_rng(1).integers(0, 256, 36, dtype=np.uint8).tobytes()  # the RIFF/fmt header
    out["garbled.wav"].write_bytes(bytes(wav))
    flac = bytearray(good[".flac"].read_bytes())
    flac[:64] = np.random.default_rng(2).integers(0, 256, 64, dtype=np.uint8).tobytes()  # no STREAMINFO
    out["noframes.flac"].write_bytes(bytes(flac))
    for path in good.values():
        os.remove(path)
    return out


def write_silence(path: Path, seconds: float = 2.0) -> Path:
    return write_audio(path, np.zeros(round(seconds * RATE), np.float32), RATE)


def write_video_with_corrupt_soundtrack(path: Path, seconds: float = 3.0) -> Path:
    """An MP4 whose pictures are fine (a brightening frame) and whose AAC track holds only garbage packets."""
    import av

    fps = 10
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width = video.height = 64
        video.pix_fmt = "yuv420p"
        sound = container.add_stream("aac", rate=RATE, layout="mono")
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 8 % 255, np.uint8), format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        rng = np.random.default_rng(0)
        for i in range(round(seconds * RATE / 1024)):
            packet = av.Packet(rng.integers(0, 256, 200, dtype=np.uint8).tobytes())
            packet.stream = sound
            packet.pts = packet.dts = i * 1024
            packet.time_base = Fraction(1, RATE)
            container.mux(packet)
    return path
