"""Threads, spinning and batch size of the CPU runtime: the pipeline's images/s on 1080p and 12 MP JPEGs.

    python bench/cpu_threads.py [--model ViT-B-32] [--images 32] [--repeats 3]

One process, one export of random weights (int8 where "auto" picks it); for each setting the whole
pipeline (decode pool at lower priority -> batched encode -> commit) and the model alone, medians
over repeats. Settings: ONNX Runtime intra-op threads 1 / 2, idle threads spinning or sleeping,
batch 8 / 16 / 32, decode workers 2. What clifs uses: onnx_runtime.ALLOW_SPINNING, Settings.batch_size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.index_throughput import make_encoder, make_jpegs, time_model_alone, time_pipeline  # noqa: E402
from clifs.engine.models import model_cache, onnx_runtime  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        settings = argparse.Namespace(model=args.model, runtime="onnx", threads=0, precision=args.precision)
        make_encoder(settings, tmp)  # exports once
        spec = json.loads(next((tmp / "cache" / "models").glob("*/meta.json")).read_text())["spec"]
        folders = {}
        for size in ((1920, 1080), (4000, 3000)):
            folder = tmp / f"{size[0]}x{size[1]}"
            folders[size] = (folder, make_jpegs(folder, args.images, size))
        for threads in args.threads:
            for spin in (False, True):
                onnx_runtime.ALLOW_SPINNING = spin
                encoder = model_cache.load(tmp / "cache", spec, args.precision, threads)
                for batch in args.batches:
                    cells = []
                    for (w, h), (folder, paths) in folders.items():
                        alone = statistics.median(time_model_alone(encoder, paths, batch) for _ in range(args.repeats))
                        pipe = statistics.median(time_pipeline(encoder, folder, batch, 2) for _ in range(args.repeats))
                        cells.append(f"{w}x{h} alone {alone:5.1f} pipeline {pipe:5.1f} img/s ({pipe / alone:.2f}x)")
                    print(f"threads {threads} spin {'on ' if spin else 'off'} batch {batch:2d} | " + " | ".join(cells),
                          flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
