"""What's in it, without a query: regions found and named, against the labelled masks over the whole vocabulary.

    .venv/bin/python bench/auto_segment.py [--scenes 150] [--sweep] [--json bench/out/auto_segment.json]

Held-out shapes-world scenes with two or three objects (128 px). An object counts as found when a
region has IoU >= 0.5 with it and carries its name ("right name"); "localised" counts the IoU
alone. The baseline runs the language-driven masks (clifs.engine.vision.dense.segment) with all 24
names as labels, so every pixel picks a name or the background, and takes the name's mask for each
object. Also reported: named regions that match no object of that name (false names), unnamed
regions over an object (left unnamed), and the seconds per scene on one thread. ``--sweep``
calibrates the merge threshold on other seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clifs.engine.models import testmodel  # noqa: E402
from clifs.engine.vision.dense import DenseOptions, segment  # noqa: E402
from clifs.engine.vision.regions import RegionOptions, auto_segment  # noqa: E402
from clifs.engine.vision.vocabulary import load_vocabulary  # noqa: E402
from devkit.shapes import HELD_OUT_SEED_BASE, Scene, iter_scenes  # noqa: E402

NAMES = load_vocabulary("shapes")
MEASURE_SEED, SWEEP_SEED = HELD_OUT_SEED_BASE + 60_000, HELD_OUT_SEED_BASE + 61_000


def scenes(seed: int, n: int, size: int = 128) -> list[Scene]:
    out = []
    for scene in iter_scenes(seed, 4 * n, size=size):
        if len(scene.objects) >= 2:
            out.append(scene)
        if len(out) == n:
            break
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 0.0


def eval_auto(encoder, data: list[Scene], options: RegionOptions) -> dict:
    found = localised = objects = false_names = unnamed_over_object = named = regions = 0
    started = time.perf_counter()
    for scene in data:
        seg = auto_segment(encoder, scene.image, options=options)
        regions += len(seg.regions)
        for obj in scene.objects:
            objects += 1
            best = max(seg.regions, key=lambda r: iou(r.mask, obj.mask))
            if iou(best.mask, obj.mask) >= 0.5:
                localised += 1
                found += best.label == obj.name
                unnamed_over_object += best.label is None
        for region in seg.named():
            named += 1
            false_names += not any(o.name == region.label and iou(region.mask, o.mask) >= 0.5 for o in scene.objects)
    seconds = (time.perf_counter() - started) / len(data)
    return {
        "found (IoU >= 0.5 and right name)": found / objects,
        "localised (IoU >= 0.5)": localised / objects,
        "regions per scene": regions / len(data),
        "named regions that are wrong": false_names / max(1, named),
        "objects localised but left unnamed": unnamed_over_object / objects,
        "seconds per scene": seconds,
        "objects": objects,
    }


def eval_labelled_masks(encoder, data: list[Scene], options: DenseOptions | None = None) -> dict:
    found = objects = 0
    started = time.perf_counter()
    for scene in data:
        seg = segment(encoder, scene.image, NAMES, options=options or DenseOptions())
        for obj in scene.objects:
            objects += 1
            found += iou(seg.label_map == NAMES.index(obj.name), obj.mask) >= 0.5
    return {
        "found (IoU >= 0.5 and right name)": found / objects,
        "seconds per scene": (time.perf_counter() - started) / len(data),
        "objects": objects,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=150)
    parser.add_argument("--sweep", action="store_true", help="calibrate the merge threshold on other seeds")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    encoder = testmodel.load(device="cpu")
    report: dict = {}
    if args.sweep:
        data = scenes(SWEEP_SEED, args.scenes)
        for merge in (0.7, 0.75, 0.8, 0.85, 0.9, 0.93):
            r = eval_auto(encoder, data, replace(RegionOptions(), merge_cosine=merge))
            report[f"sweep merge_cosine {merge}"] = r
            print(f"sweep merge_cosine {merge}: " + ", ".join(f"{k} {v:.3f}" for k, v in r.items()))
    data = scenes(MEASURE_SEED, args.scenes)
    report["auto (default options)"] = eval_auto(encoder, data, RegionOptions())
    report["labelled masks over all 24 names (default: short side 96, PAMR)"] = eval_labelled_masks(encoder, data)
    report["labelled masks over all 24 names, short side 192 as auto"] = eval_labelled_masks(
        encoder, data, DenseOptions(short_side=192)
    )
    for name, r in report.items():
        if not name.startswith("sweep"):
            print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in r.items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
