"""Sound decoding and windowing throughput, and the audio towers', in seconds of audio per second.

    .venv/bin/python bench/audio_decode.py [--seconds 120] [--repeats 5] [--json bench/out/audio_decode.json]

For each container of issue 15 (WAV, FLAC, MP3, Ogg/Opus, M4A/AAC) one file of ``--seconds`` of the
shapes world's sounds (changing every 3 s) at 44.1 kHz (48 kHz for Opus) is decoded, resampled to
16 kHz mono and cut into 1-s windows every 0.5 s (clifs.engine.audio.read_sound: what indexing does
per file); also the soundtrack of a shapes-world video. Then the test audio tower (ONNX Runtime)
encodes the windows, in batches of 32. Medians over ``--repeats``, in one process, after one warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clifs.engine.audio import read_sound  # noqa: E402
from devkit.shapes import COLOURS, SHAPES, scene_rng  # noqa: E402
from devkit.shapes_av import write_audio, write_shapes_video  # noqa: E402
from devkit.sounds import sound_for  # noqa: E402

FORMATS = {".wav": 44100, ".flac": 44100, ".mp3": 44100, ".ogg": 48000, ".m4a": 44100}


def _sound(seconds: float, rate: int) -> np.ndarray:
    rng = scene_rng(0)
    objects = [(c, s) for c in COLOURS for s in SHAPES]
    parts = [sound_for(*objects[i % len(objects)], 3.0, rate, rng) for i in range(int(np.ceil(seconds / 3)))]
    return np.concatenate(parts)[: round(seconds * rate)]


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: imports, codec set-up, ONNX session
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {
            ext: write_audio(Path(tmp) / f"sound{ext}", _sound(args.seconds, rate), rate)
            for ext, rate in FORMATS.items()
        }
        segments = [(c, s, 3.0) for c, s in [(c, s) for c in COLOURS for s in SHAPES]][: int(args.seconds // 3)]
        files["soundtrack (.mp4)"] = write_shapes_video(Path(tmp) / "video.mp4", segments)
        windows = None
        for name, path in files.items():
            sound = read_sound(path, 16000, 1.0, soundtrack=True)
            seconds = _median_seconds(lambda p=path: read_sound(p, 16000, 1.0, soundtrack=True), args.repeats)
            rows.append(
                {
                    "what": f"decode + window {name}",
                    "audio_seconds": round(sound.duration, 1),
                    "windows": len(sound.starts),
                    "seconds": round(seconds, 4),
                    "audio_seconds_per_second": round(sound.duration / seconds, 1),
                }  # fmt: skip
            )
            windows = sound.windows if windows is None else windows
        from clifs.engine.models import testmodel
        from clifs.engine.models.audio_registry import load_audio_encoder

        tower = load_audio_encoder(testmodel.load(device="cpu"), "cpu")
        batch = np.resize(windows, (256, windows.shape[1])).astype(np.float32)

        def encode() -> None:
            for start in range(0, len(batch), 32):
                tower.encode_audio(batch[start : start + 32])

        seconds = _median_seconds(encode, args.repeats)
        # windows overlap by half: indexing encodes two windows per second of sound
        rows.append(
            {
                "what": f"encode {tower.display_name}",
                "windows": len(batch),
                "seconds": round(seconds, 4),
                "windows_per_second": round(len(batch) / seconds, 1),
                "audio_seconds_per_second": round(len(batch) * 0.5 / seconds, 1),
            }  # fmt: skip
        )
    for row in rows:
        print(json.dumps(row))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
