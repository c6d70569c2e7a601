"""Audio-tower throughput: windows per second and seconds of audio per second, model alone, same process.

    python bench/audio_towers.py [--repeats 5] [--batch 16] [--threads 1 2] [--device cpu]
                                 [--towers shapes wav2clip imagebind]

Towers: the shipped shapes-world test tower (numpy log-mel + ONNX Runtime), Wav2CLIP with random
weights (torch; the same FLOPs as the release) and its CPU-runtime export (numpy spectrogram + ONNX
Runtime, fp32), and ImageBind's audio tower at full size with random
weights (torch; only the audio modules are materialised). Each figure is the median over
``--repeats`` timed batches after one warm-up batch; features (mel, filter banks) are included,
decoding is not (bench/decode_formats.py and audio-core's benchmarks measure that).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from clifs.engine.models.audio_base import AudioEncoder
from devkit.shapes import HELD_OUT_SEED_BASE, all_object_names, scene_rng
from devkit.sounds import sound_for


def shapes_tower(threads: int) -> AudioEncoder:
    from clifs.engine.models import audio_shapes
    from clifs.engine.models.testmodel import load

    image = load(device="cpu")
    return audio_shapes.load(image.model_id, image.dim, threads=threads)


def wav2clip_tower(device: str) -> AudioEncoder:
    from clifs.engine.models.audio_wav2clip import Wav2ClipEncoder, Wav2ClipNet

    return Wav2ClipEncoder(Wav2ClipNet(), "random:wav2clip", "random", device)


def wav2clip_onnx_tower(threads: int) -> AudioEncoder:
    """The same random Wav2CLIP exported for the CPU runtime (numpy spectrogram + ONNX Runtime)."""
    import tempfile
    from pathlib import Path

    from clifs.engine.models.audio_wav2clip import store
    from clifs.engine.models.audio_wav2clip_onnx import OnnxWav2Clip

    folder = Path(tempfile.mkdtemp())
    weights = folder / "Wav2CLIP.pt"
    torch.save({}, weights)  # the record is stamped with a weights file; its contents do not matter here
    exported = store(folder / "cache", wav2clip_tower("cpu"), weights)
    return OnnxWav2Clip(exported._session.path, exported.model_id, "random", threads)


def imagebind_tower(device: str) -> AudioEncoder:
    """ImageBind-huge's audio tower with random weights; the image and text towers stay on the meta device."""
    from clifs.engine.models.imagebind import ImageBindAudio, ImageBindNet

    with torch.device("meta"):
        net = ImageBindNet()
    for part in (net.modality_preprocessors, net.modality_trunks, net.modality_heads):
        part["audio"] = part["audio"].to_empty(device=device)
        for p in part["audio"].parameters():
            torch.nn.init.normal_(p, std=0.02)
    return ImageBindAudio(net, "random:imagebind", device)


def windows_for(tower: AudioEncoder, n: int) -> np.ndarray:
    rng = scene_rng(HELD_OUT_SEED_BASE + 900)
    names = all_object_names()
    return np.stack([sound_for(*names[i % len(names)].split(" "), tower.window_seconds, tower.sample_rate, rng)
                     for i in range(n)])  # fmt: skip


def measure(tower: AudioEncoder, batch: int, repeats: int) -> tuple[float, float]:
    """(windows/s, seconds of audio/s), medians over repeats."""
    windows = windows_for(tower, batch)
    tower.encode_audio(windows)  # warm-up: sessions, allocators
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tower.encode_audio(windows)
        times.append(time.perf_counter() - start)
    rate = batch / statistics.median(times)
    return rate, rate * tower.window_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--towers", nargs="+", default=["shapes", "wav2clip", "wav2clip-onnx", "imagebind"])
    args = parser.parse_args()
    print(f"{'tower':<36} {'threads':>7} {'batch':>5} {'windows/s':>10} {'audio s/s':>10}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        made = {
            "shapes": lambda t=threads: shapes_tower(t),
            "wav2clip": lambda: wav2clip_tower(args.device),
            "wav2clip-onnx": lambda t=threads: wav2clip_onnx_tower(t),
            "imagebind": lambda: imagebind_tower(args.device),
        }
        for name in args.towers:
            tower = made[name]()
            rate, audio_rate = measure(tower, args.batch, args.repeats)
            label = f"{name} ({tower.window_seconds:g} s @ {tower.sample_rate} Hz)"
            print(f"{label:<36} {threads:>7} {args.batch:>5} {rate:>10.1f} {audio_rate:>10.1f}", flush=True)
            del tower


if __name__ == "__main__":
    main()
