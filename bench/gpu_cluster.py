"""GPU throughput of `clifs index --cluster` (Ray Data, one model actor per GPU) vs the in-process GPU pipeline.

ViT-B-32 with random weights (the same FLOPs as the trained model) in a file, fp16 on CUDA, on generated
1080p JPEGs; both ways load the model from the same spec, as `clifs index` does. Prints images/s for
each, the Ray path as a share of the in-process one (goal: within 10% on one GPU), the GPU's mean
utilisation while each ran (nvidia-smi, every 200 ms), and, from the Ray path's per-GPU rate, how long
10M photos take on 8 GPUs.

On the GPU machine (no network there):

    python bench/gpu_index.py --install bench/wheels      # clifs's own missing wheels (see gpu_index.py)
    python bench/gpu_cluster.py --install bench/ray-wheels
    python bench/gpu_cluster.py [--images 8192] [--batch 256]

Fetch Ray's wheels beforehand on a machine with a registry (about 120 MB: ray and pyarrow are large):

    python bench/gpu_cluster.py --download bench/ray-wheels
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a copy of the repository, without installing it
sys.path.insert(0, str(ROOT / "bench"))

RAY = "ray[data,client]==2.60.0"


def download(folder: Path) -> None:
    """Ray Data's wheels for the GPU machine's Python 3.12 on x86-64 Linux, with their dependencies."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--python-version", "3.12",
         "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64", "-d", str(folder), RAY],
        check=True,
    )  # fmt: skip


def install(folder: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(folder), RAY], check=True)


class GpuUse:
    """Samples nvidia-smi's utilisation.gpu every 200 ms while in the ``with`` block."""

    def __enter__(self) -> GpuUse:
        self.samples: list[int] = []
        self.proc = subprocess.Popen(
            ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "200", "-i", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.strip().isdigit():
                self.samples.append(int(line))

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait()

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples) if self.samples else float("nan")


def index_rate(spec: str, folder: Path, batch: int, workers: int, cluster: bool) -> tuple[float, float]:
    """(images/s of index_folders, mean GPU utilisation) into a fresh home."""
    from clifs.engine.config import Settings
    from clifs.engine.library import Library
    from indexer.pipeline import Pipeline

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), model=spec, batch_size=batch, decode_workers=workers)
        library = Library(settings)  # the model's identity (the whole model, on the GPU), before the clock
        if cluster:
            from indexer.cluster import ActorPlan, ClusterPipeline, connect

            plan = ActorPlan.for_resources(connect("local"))
            print(f"  Ray plan: {plan}")
            pipe = ClusterPipeline(library, plan)
        else:
            _ = library.encoder
            pipe = Pipeline(library)
        with GpuUse() as gpu:
            start = time.perf_counter()
            report = pipe.index_folders([str(folder)])
            elapsed = time.perf_counter() - start
        library.close()
    assert not report.failed, report.failed[:3]
    return report.added / elapsed, gpu.mean


def main() -> None:
    from gpu_index import gpu_arguments, make_jpegs

    args = gpu_arguments(__doc__, 8192, download, install)  # --download: Ray's wheels for the GPU machine
    if args is None:
        return

    import open_clip
    import torch
    from safetensors.torch import save_file

    assert torch.cuda.is_available(), "no CUDA device"
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, {args.model} random weights, fp16 autocast")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = tmp / f"{args.model}.safetensors"
        model = open_clip.create_model(args.model)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
        spec = f"{args.model}:{weights}"
        start = time.perf_counter()
        make_jpegs(tmp / "jpegs", args.images)
        print(f"{args.images} 1920x1080 JPEGs made in {time.perf_counter() - start:.1f} s")
        here, here_gpu = index_rate(spec, tmp / "jpegs", args.batch, args.workers, cluster=False)
        print(f"in-process pipeline: {here:8.0f} images/s, GPU {here_gpu:.0f}% busy")
        there, there_gpu = index_rate(spec, tmp / "jpegs", args.batch, args.workers, cluster=True)
        print(f"--cluster local:     {there:8.0f} images/s, GPU {there_gpu:.0f}% busy ({there / here:.2f}x in-process)")
        hours = 10_000_000 / (8 * there) / 3600
        print(f"10M photos on 8 such GPUs at this per-GPU rate: {hours:.1f} h (decode and reads keeping up)")


if __name__ == "__main__":
    main()
