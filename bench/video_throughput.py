"""Video indexing throughput on the demo clips: seconds of video indexed per second of work.

    python bench/video_throughput.py [--model shapes-vit-tiny|ViT-B-32] [--repeats 3] [--threads 1]

Measures, medians over repeats:
  * sampling: ``sample_frames`` alone (decode, time-based sampling, scene-change filter);
  * service:  ``IndexerService`` on a folder of the clips, start -> idle (sampling in the
              decode pool, batched encode of the kept frames, SQLite commit, FAISS update).
``shapes-vit-tiny`` (the 64 px test model) makes encoding nearly free, so the service number
is the decode-bound ceiling; ``ViT-B-32`` uses random weights (same FLOPs as the real one).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from service_run import index_with_service

from clifs.engine.config import Settings
from clifs.engine.library import Library
from clifs.engine.video import sample_frames

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo"


def load_encoder(name: str):
    if name == "shapes-vit-tiny":
        from clifs.engine.models.testmodel import load

        return load(device="cpu")
    from clifs.engine.models.openclip import random_init

    return random_init(name)


def time_sampling(clips: list[Path]) -> tuple[float, float, int]:
    """(seconds of video, seconds taken, frames kept)."""
    start = time.perf_counter()
    videos = [sample_frames(c) for c in clips]
    return sum(v.duration for v in videos), time.perf_counter() - start, sum(len(v.frames) for v in videos)


def time_service(clips: list[Path], encoder) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "clips"
        folder.mkdir()
        for c in clips:
            shutil.copy(c, folder / c.name)
        library = Library(Settings(home=Path(tmp) / "home"), encoder=encoder)
        elapsed, status = index_with_service(library, folder)
        library.close()
        assert status.done == len(clips) and status.failed == 0, status
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="shapes-vit-tiny")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clips = sorted(p for p in DEMO.iterdir() if p.suffix in (".mp4", ".mpg"))
    encoder = load_encoder(args.model)
    runs = [time_sampling(clips) for _ in range(args.repeats)]
    seconds, kept = runs[0][0], runs[0][2]
    sampling = statistics.median(r[1] for r in runs)
    service = statistics.median(time_service(clips, encoder) for _ in range(args.repeats))
    print(f"{len(clips)} demo clips, {seconds:.1f} s of video, {kept} frames kept; model {args.model}")
    for c in clips:
        v = sample_frames(c)
        print(f"  {c.name}: {v.width}x{v.height}, {v.duration:.1f} s, {len(v.frames)} frames kept")
    print(f"sampling alone: {sampling:.2f} s -> {seconds / sampling:.1f} s of video per second")
    print(f"service (sample + encode + commit): {service:.2f} s -> {seconds / service:.1f} s of video per second")


if __name__ == "__main__":
    main()
