"""GPU indexing throughput: 1080p JPEGs through the pipeline and the service vs ViT-B-32 alone, fp16 on CUDA.

On the GPU machine (no network there; it has torch, torchvision, pillow, opencv, timm):

    python bench/gpu_index.py --install bench/wheels    # once: the wheels torch's image lacks
    python bench/gpu_index.py [--images 4096] [--batch 256] [--workers 16]

Fetch those wheels beforehand on a machine with a registry (then carry bench/wheels along):

    python bench/gpu_index.py --download bench/wheels

Prints images/s for the model alone (pre-decoded tensors on the GPU), for
``Pipeline.index_folders`` (scan, thread-pool decode with JPEG draft, batched fp16
encode, SQLite commit, FAISS update) and for ``IndexerService`` (the same, as
`clifs watch` runs it). Goal: pipeline >= 3,000 images/s on one H100.
Random weights: the same FLOPs as the trained model.
"""

from __future__ import annotations

import argparse
import multiprocessing
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a copy of the repository, without installing it

#: What clifs needs beyond the GPU image's packages (module name -> distribution).
MISSING_THERE = {
    "open_clip": "open_clip_torch",
    "ftfy": "ftfy",
    "wcwidth": "wcwidth",
    "faiss": "faiss-cpu",
    "sqlalchemy": "sqlalchemy",
    "greenlet": "greenlet",
    "watchdog": "watchdog",
    "platformdirs": "platformdirs",
}


def download(folder: Path) -> None:
    """Wheels for the GPU machine's Python 3.12 on x86-64 Linux, without dependencies (it has the rest)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
         "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64", "-d", str(folder),
         *MISSING_THERE.values()],
        check=True,
    )  # fmt: skip


def install(folder: Path) -> None:
    import importlib.util

    wanted = [dist for module, dist in MISSING_THERE.items() if importlib.util.find_spec(module) is None]
    if wanted:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--find-links", str(folder), *wanted],
            check=True,
        )
    print(f"installed: {wanted or 'nothing missing'}")


def _write_jpeg(args: tuple[Path, int]) -> None:
    import numpy as np
    from PIL import Image

    from devkit.shapes import iter_scenes

    path, seed = args
    scene = next(iter_scenes(seed, 1, 128))
    rng = np.random.default_rng(seed)
    big = np.asarray(scene.image.resize((1920, 1080), Image.BILINEAR), dtype=np.int16)
    Image.fromarray(np.clip(big + rng.normal(0, 6, big.shape), 0, 255).astype(np.uint8)).save(path, quality=90)


def make_jpegs(folder: Path, count: int) -> None:
    """Photo-like 1080p JPEGs (upscaled shapes-world scenes with sensor noise), made in parallel."""
    folder.mkdir(parents=True, exist_ok=True)
    with multiprocessing.Pool() as pool:
        pool.map(_write_jpeg, [(folder / f"{i:05d}.jpg", 1000 + i) for i in range(count)], chunksize=16)


def model_alone(encoder, folder: Path, batch: int, repeats: int = 5) -> float:
    import torch

    from clifs.engine.media import open_image

    paths = sorted(folder.iterdir())[: batch * 4]
    tensors = torch.stack([encoder.preprocess(open_image(p)) for p in paths]).to("cuda")
    encoder.encode_images(tensors[:batch])  # warm-up: kernels, autocast caches
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        for i in range(0, len(tensors), batch):
            encoder.encode_images(tensors[i : i + batch])
    torch.cuda.synchronize()
    return repeats * len(tensors) / (time.perf_counter() - start)


def pipeline(encoder, folder: Path, batch: int, workers: int) -> float:
    from clifs.engine.config import Settings
    from clifs.engine.library import Library
    from indexer.pipeline import Pipeline

    with tempfile.TemporaryDirectory() as home:
        library = Library(Settings(home=Path(home), batch_size=batch, decode_workers=workers), encoder=encoder)
        start = time.perf_counter()
        report = Pipeline(library).index_folders([str(folder)])
        elapsed = time.perf_counter() - start
        library.close()
    assert not report.failed, report.failed[:3]
    return report.added / elapsed


def service(encoder, folder: Path, batch: int, workers: int) -> float:
    from service_run import index_with_service

    from clifs.engine.config import Settings
    from clifs.engine.library import Library

    with tempfile.TemporaryDirectory() as home:
        library = Library(Settings(home=Path(home), batch_size=batch, decode_workers=workers), encoder=encoder)
        elapsed, status = index_with_service(library, folder)
        library.close()
    assert status.failed == 0, status.recent_errors[:3]
    return status.done / elapsed


def gpu_arguments(
    doc: str, images: int, download: Callable[[Path], None], install: Callable[[Path], None]
) -> argparse.Namespace | None:
    """The options the GPU benchmarks share; runs ``--download`` (then None: nothing more to do) and ``--install``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--download", type=Path, metavar="DIR", help="fetch the wheels the GPU machine lacks, then exit"
    )
    parser.add_argument("--install", type=Path, metavar="DIR", help="install those wheels from DIR, then run")
    parser.add_argument("--images", type=int, default=images)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--workers", type=int, default=16, help="in-process decode threads")
    parser.add_argument("--model", default="ViT-B-32")
    args = parser.parse_args()
    if args.download:
        download(args.download)
        return None
    if args.install:
        install(args.install)
    return args


def main() -> None:
    args = gpu_arguments(__doc__, 4096, download, install)
    if args is None:
        return

    import torch

    from clifs.engine.models.openclip import random_init

    assert torch.cuda.is_available(), "no CUDA device"
    encoder = random_init(args.model, device="cuda")
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, {args.model} random weights, fp16 autocast")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "jpegs"
        start = time.perf_counter()
        make_jpegs(folder, args.images)
        print(f"{args.images} 1920x1080 JPEGs made in {time.perf_counter() - start:.1f} s")
        alone = model_alone(encoder, folder, args.batch)
        print(f"model alone:        {alone:8.0f} images/s (batch {args.batch})")
        piped = pipeline(encoder, folder, args.batch, args.workers)
        print(
            f"pipeline:           {piped:8.0f} images/s ({piped / alone:.2f}x the model; {args.workers} decode threads)"
        )
        served = service(encoder, folder, args.batch, args.workers)
        print(f"service (watch=False): {served:5.0f} images/s ({served / alone:.2f}x the model)")


if __name__ == "__main__":
    main()
