"""How good are labels, masks and boxes? Measured on held-out shapes-world scenes with exact ground truth.

    .venv/bin/python bench/vision_eval.py [--weights PATH] [--scenes 150] [--json bench/out/vision_eval.json]

Labels: top-1 accuracy over the 24 "colour shape" names on single-object scenes, one
template vs the 7-template subset vs the 80-template ensemble.
Masks: mIoU (intersection and union summed over the data set, averaged over the object
classes) for a centre prior, vanilla last-block features, ClearCLIP and NACLIP, ±PAMR,
at the native 64 px and on 128 px renders (downscaled vs sliding windows vs one
interpolated pass). "present": each image is asked about the objects it holds (the
"where is the dog?" use); "all 24": every pixel chooses among all 24 names.
Boxes: AP50 over the 24 names, the mean IoU of the best box for each object, and how
often an absent label gets a box, against a whole-image baseline and vanilla proposals.
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

from clifs.engine.models import testmodel
from clifs.engine.models.base import Encoder
from clifs.engine.vision.boxes import BoxOptions, box_iou, detect
from clifs.engine.vision.dense import DenseOptions, segment
from clifs.engine.vision.labels import embed_labels, probabilities
from clifs.engine.vision.metrics import BoxAP, MaskIoU
from clifs.engine.vision.vocabulary import background_labels, load_vocabulary
from devkit.shapes import HELD_OUT_SEED_BASE, Scene, iter_scenes

NAMES = load_vocabulary("shapes")
LABEL_SEED, MASK_SEED, BOX_SEED = HELD_OUT_SEED_BASE + 101, HELD_OUT_SEED_BASE + 202, HELD_OUT_SEED_BASE + 303


def truth_map(scene: Scene, names: list[str]) -> np.ndarray:
    out = np.full((scene.image.height, scene.image.width), -1, np.int16)
    for obj in scene.objects:
        if obj.name in names:
            out[obj.mask] = names.index(obj.name)
    return out


def present_names(scene: Scene) -> list[str]:
    return list(dict.fromkeys(obj.name for obj in scene.objects))


# ---------------------------------------------------------------- labels


def eval_labels(encoder: Encoder, n: int) -> dict[str, dict[str, float]]:
    scenes = list(iter_scenes(LABEL_SEED, n, size=64, n_objects=1))
    emb = encoder.encode_pil([s.image for s in scenes])
    truth = [s.objects[0].name for s in scenes]
    out = {}
    for template_set in ("single", "compact", "ensemble"):
        probs = probabilities(emb, embed_labels(encoder, NAMES, template_set), encoder.logit_scale)
        pred = [NAMES[i] for i in probs.argmax(1)]
        out[template_set] = {
            "accuracy": float(np.mean([p == t for p, t in zip(pred, truth, strict=True)])),
            "colour": float(np.mean([p.split()[0] == t.split()[0] for p, t in zip(pred, truth, strict=True)])),
            "shape": float(np.mean([p.split()[1] == t.split()[1] for p, t in zip(pred, truth, strict=True)])),
        }
    return out


# ---------------------------------------------------------------- masks


def centre_prior(encoder: Encoder, scene: Scene, queries: list[str], radius: float) -> np.ndarray:
    """The query the whole image is most likely to show, as a centred disc: knowing what, guessing where."""
    emb = encoder.encode_pil([scene.image])
    best = int(probabilities(emb, embed_labels(encoder, queries), encoder.logit_scale)[0].argmax())
    h, w = scene.image.height, scene.image.width
    yy, xx = np.mgrid[0:h, 0:w]
    disc = (yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2 <= (radius * min(h, w)) ** 2
    return np.where(disc, best, -1).astype(np.int16)


def mask_scores(encoder: Encoder, scenes: list[Scene], options: DenseOptions | None) -> dict[str, float]:
    """mIoU over object classes for both query protocols; ``options`` None means the centre prior."""
    out = {}
    started = time.perf_counter()
    for protocol in ("present", "all"):
        meter = MaskIoU(len(NAMES))
        for scene in scenes:
            queries = present_names(scene) if protocol == "present" else NAMES
            if options is None:
                pred = centre_prior(encoder, scene, queries, radius=0.25)
            else:
                pred = segment(encoder, scene.image, queries, options=options).label_map
            lut = np.array([NAMES.index(q) for q in queries] + [-1], np.int16)  # -1 indexes the last entry
            meter.add(lut[pred], truth_map(scene, NAMES))
        out[protocol] = meter.miou()
        out[f"{protocol}_bg"] = float(meter.per_class()[-1])
    out["ms_per_image"] = 1000 * (time.perf_counter() - started) / (2 * len(scenes))
    return out


def eval_masks(encoder: Encoder, n: int) -> list[dict]:
    rows = []
    native = [s for s in iter_scenes(MASK_SEED, n, size=64) if s.objects]
    rows.append({"scenes": "64 px", "method": "centre prior", "variant": "", **mask_scores(encoder, native, None)})
    for method in ("vanilla", "clearclip", "naclip"):
        for pamr in (False, True):
            opts = DenseOptions(method=method, short_side=64, pamr=pamr)
            variant = "one window" + (" + PAMR" if pamr else "")
            rows.append({"scenes": "64 px", "method": method, "variant": variant, **mask_scores(encoder, native, opts)})
    large = [s for s in iter_scenes(MASK_SEED + 1, n, size=128) if s.objects]
    variants = {
        "downscaled to 64": dict(short_side=64),
        "96, windows 64/32": dict(short_side=96),
        "128, windows 64/32": dict(short_side=128),
        "128, one pass (pos. interp.)": dict(short_side=128, window=0),
    }
    for method in ("vanilla", "clearclip", "naclip"):
        for name, kw in variants.items():
            for pamr in (False, True):
                opts = DenseOptions(method=method, pamr=pamr, **kw)
                variant = name + (" + PAMR" if pamr else "")
                rows.append(
                    {
                        "scenes": "128 px",
                        "method": method,
                        "variant": variant,
                        **mask_scores(encoder, large, opts),
                    }
                )
    return rows


# ---------------------------------------------------------------- boxes


def whole_image_detections(encoder: Encoder, scene: Scene) -> list[tuple[str, float, tuple[int, int, int, int]]]:
    """Baseline: one whole-image box per name, scored by the image's zero-shot probability."""
    emb = encoder.encode_pil([scene.image])
    texts = embed_labels(encoder, NAMES + background_labels(encoder))
    probs = probabilities(emb, texts, encoder.logit_scale)[0]
    box = (0, 0, scene.image.width, scene.image.height)
    return [(name, float(probs[i]), box) for i, name in enumerate(NAMES)]


def box_scores(encoder: Encoder, scenes: list[Scene], options: BoxOptions | None, threshold: float) -> dict[str, float]:
    ap = BoxAP(0.5)
    best_ious, absent_hits, present_hits = [], [], []
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for scene in scenes:
        if options is None:
            dets = whole_image_detections(encoder, scene)
        else:
            dets = [
                (d.label, d.score, d.box) for d in detect(encoder, scene.image, NAMES, replace(options, threshold=0.01))
            ]
        ap.add(dets, [(o.name, o.box) for o in scene.objects])
        for obj in scene.objects:
            ious = [box_iou(b, obj.box) for label, s, b in dets if label == obj.name and s >= threshold]
            best_ious.append(max(ious, default=0.0))
        if options is not None and scene.objects:
            # One present and one absent label per image, asked together as a user would.
            present = scene.objects[0].name
            absent = str(rng.choice([n for n in NAMES if n not in present_names(scene)]))
            pair = detect(encoder, scene.image, [present, absent], replace(options, threshold=threshold))
            absent_hits.append(any(d.label == absent for d in pair))
            present_hits.append(any(d.label == present and box_iou(d.box, scene.objects[0].box) > 0.5 for d in pair))
    out = {
        "AP50": ap.mean(),
        "mean_best_iou": float(np.mean(best_ious)),
        "recall_iou50": float(np.mean(np.array(best_ious) > 0.5)),
        "ms_per_image": 1000 * (time.perf_counter() - started) / len(scenes),
    }
    if absent_hits:
        out["present_found"] = float(np.mean(present_hits))
        out["absent_boxed"] = float(np.mean(absent_hits))
    return out


def eval_boxes(encoder: Encoder, n: int) -> list[dict]:
    scenes = list(iter_scenes(BOX_SEED, n, size=128))
    threshold = BoxOptions().threshold
    rows = [{"method": "whole image", **box_scores(encoder, scenes, None, threshold)}]
    for method in ("vanilla", "clearclip", "naclip"):
        opts = BoxOptions(dense=DenseOptions(method=method, pamr=True))
        rows.append({"method": f"{method} + PAMR components", **box_scores(encoder, scenes, opts, threshold)})
    for method in ("vanilla", "naclip"):
        opts = BoxOptions(dense=DenseOptions(method=method, pamr=False))
        rows.append({"method": f"{method} components (no PAMR)", **box_scores(encoder, scenes, opts, threshold)})
    for contexts in ((1.0,), (1.5, 2.0)):
        opts = BoxOptions(contexts=contexts)
        name = "+".join(f"{c:g}x" for c in contexts)
        rows.append({"method": f"naclip + PAMR, crops {name}", **box_scores(encoder, scenes, opts, threshold)})
    return rows


# ---------------------------------------------------------------- report


def table(rows: list[dict], columns: list[str]) -> str:
    def fmt(v):
        return f"{v:.3f}" if isinstance(v, float) and not np.isnan(v) else str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("-|-".join("-" * w for w in widths))
    lines += [" | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, help="test-model checkpoint (default: the shipped one)")
    parser.add_argument("--scenes", type=int, default=150, help="scenes per evaluation")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", choices=["labels", "masks", "boxes"], action="append")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    encoder = testmodel.load(device="cpu", weights=args.weights)
    weights = args.weights or testmodel.WEIGHTS
    print(f"model {encoder.model_id} ({weights}), {args.scenes} scenes per evaluation\n")
    only = set(args.only or ["labels", "masks", "boxes"])
    report: dict = {"model_id": encoder.model_id, "weights": str(weights), "scenes": args.scenes}
    if "labels" in only:
        report["labels"] = eval_labels(encoder, 2 * args.scenes)
        rows = [{"templates": k, **v} for k, v in report["labels"].items()]
        print("Zero-shot labels, single-object scenes (top-1 over 24 names)")
        print(table(rows, ["templates", "accuracy", "colour", "shape"]), "\n", flush=True)
    if "masks" in only:
        report["masks"] = eval_masks(encoder, args.scenes)
        print("Masks: mIoU over object classes (bg = background IoU)")
        print(
            table(
                report["masks"],
                ["scenes", "method", "variant", "present", "present_bg", "all", "all_bg", "ms_per_image"],
            )
        )
        print(flush=True)
    if "boxes" in only:
        report["boxes"] = eval_boxes(encoder, args.scenes)
        print(
            f"Boxes on 128 px scenes: AP50 over 24 names; best-box IoU per object and absent-label boxes at score ≥ {BoxOptions().threshold}"
        )
        cols = ["method", "AP50", "mean_best_iou", "recall_iou50", "present_found", "absent_boxed", "ms_per_image"]
        print(table(report["boxes"], cols), "\n", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
