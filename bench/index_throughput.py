"""Indexing throughput: the whole pipeline vs the model alone, in the same process.

    python bench/index_throughput.py [--model ViT-B-32] [--images 48] [--repeats 3] [--threads N]
                                     [--runtime onnx|torch] [--precision auto|fp32|int8] [--batch 16]

Generates 1920x1080 and 4000x3000 JPEGs (shapes-world scenes upscaled with
sensor-like noise, so they compress like photos), then measures, medians over
repeats:
  * model alone: encode_images on pre-decoded, preprocessed tensors;
  * pipeline:    Library + Pipeline.index_folders (scan, thread-pool decode with
                 JPEG draft, batched encode, SQLite commit, FAISS update);
  * naive loop:  open full-size -> preprocess -> encode one image at a time;
  * decode only: a 12 MP JPEG decoded full-size + resized vs with draft().
Random weights have the same FLOPs as the real ones.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clifs.engine.config import Settings
from clifs.engine.library import Library
from clifs.engine.media import open_image
from clifs.engine.models.openclip import random_init
from devkit.shapes import iter_scenes
from indexer.pipeline import Pipeline


def make_jpegs(folder: Path, count: int, size: tuple[int, int]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i, scene in enumerate(iter_scenes(7, count, 128)):
        big = np.asarray(scene.image.resize(size, Image.BILINEAR), dtype=np.int16)
        noisy = np.clip(big + rng.normal(0, 6, size=big.shape), 0, 255).astype(np.uint8)
        path = folder / f"{size[0]}x{size[1]}_{i:03d}.jpg"
        Image.fromarray(noisy).save(path, quality=90)
        paths.append(path)
    return paths


def time_model_alone(encoder, paths: list[Path], batch: int) -> float:
    tensors = [encoder.preprocess(open_image(p)) for p in paths]
    start = time.perf_counter()
    for i in range(0, len(tensors), batch):
        encoder.encode_images(encoder.stack(tensors[i : i + batch]))
    return len(tensors) / (time.perf_counter() - start)


def time_pipeline(encoder, folder: Path, batch: int, workers: int) -> float:
    with tempfile.TemporaryDirectory() as home:
        library = Library(Settings(home=Path(home)), encoder=encoder)
        start = time.perf_counter()
        report = Pipeline(library, batch_size=batch, workers=workers).index_folders([str(folder)])
        elapsed = time.perf_counter() - start
        library.close()
    assert not report.failed, report.failed
    return report.added / elapsed


def time_naive(encoder, paths: list[Path]) -> float:
    start = time.perf_counter()
    for p in paths:
        with Image.open(p) as im:
            encoder.encode_images(encoder.stack([encoder.preprocess(im.convert("RGB"))]))
    return len(paths) / (time.perf_counter() - start)


def time_decode(path: Path, repeats: int) -> tuple[float, float]:
    def full() -> None:
        with Image.open(path) as im:
            im.convert("RGB").resize((298, 224), Image.BICUBIC)

    def drafted() -> None:
        open_image(path).resize((298, 224), Image.BICUBIC)

    out = []
    for fn in (full, drafted):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        out.append(statistics.median(times) * 1000)
    return out[0], out[1]


def make_encoder(args: argparse.Namespace, work: Path):
    """Random weights; on "onnx" saved to a file and exported as clifs's first load does, then run as clifs does."""
    if args.runtime == "torch":
        return random_init(args.model)
    import open_clip
    from safetensors.torch import save_file

    from clifs.engine.models import model_cache
    from clifs.engine.models.openclip import load

    weights = work / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in open_clip.create_model(args.model).state_dict().items()}, str(weights))
    spec = f"{args.model}:{weights}"
    assert model_cache.store(work / "cache", spec, load(spec, device="cpu"))
    return model_cache.load(work / "cache", spec, args.precision, args.threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--images", type=int, default=48, help="images per resolution")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch / ONNX Runtime threads (0: one per core)")
    parser.add_argument("--runtime", default="onnx", choices=["onnx", "torch"])
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "int8"], help="ONNX Runtime's")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        encoder = make_encoder(args, Path(tmp))
        how = f"torch threads {torch.get_num_threads()}" if args.runtime == "torch" else getattr(encoder, "runtime", "")
        print(f"model {args.model} (random weights), {how}, threads {args.threads or 'per core'}, batch {args.batch}")
        for size in ((1920, 1080), (4000, 3000)):
            folder = Path(tmp) / f"{size[0]}x{size[1]}"
            paths = make_jpegs(folder, args.images, size)
            alone, pipe, naive = [], [], []
            for _ in range(args.repeats):
                alone.append(time_model_alone(encoder, paths, args.batch))
                pipe.append(time_pipeline(encoder, folder, args.batch, args.workers))
                naive.append(time_naive(encoder, paths[: max(8, args.images // 4)]))
            a, p, n = (statistics.median(x) for x in (alone, pipe, naive))
            full_ms, draft_ms = time_decode(paths[0], 5)
            print(
                f"{size[0]}x{size[1]}: model alone {a:6.1f} img/s | pipeline {p:6.1f} img/s ({p / a:.2f}x) | "
                f"naive loop {n:6.1f} img/s ({n / a:.2f}x) | decode+resize full {full_ms:.0f} ms, draft {draft_ms:.0f} ms"
            )


if __name__ == "__main__":
    main()
