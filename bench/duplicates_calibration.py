"""Calibrate near-duplicate detection: cosine of embeddings and perceptual-hash distance of copies vs
pictures that are not copies.

    .venv/bin/python bench/duplicates_calibration.py [--models test,starter] [--n 20]

Copies (devkit/copies.py): resized to half, JPEG quality 35, 8% cropped, Gaussian blur, and a
crop + resize + JPEG 60 ("shared"). Not copies: every pair of different originals, two photos of a
plain wall (one paint, different light), two overlapping views of one place. The test model runs on
shapes-world scenes (256 px), the starter model on the demo photos (assets/demo). Prints, per model:
the lowest cosine of a copy, the highest cosine of a non-copy, the hash distances of each, and how the
calibrated rule (clifs.engine.duplicates.CALIBRATIONS) classifies them. Writes bench/out/duplicates_calibration.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clifs.engine.duplicates import calibration_for
from clifs.engine.image_hash import distance, perceptual_signature
from clifs.engine.media import open_image
from devkit.copies import copies, plain_walls, two_views
from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes

ROOT = Path(__file__).resolve().parents[1]


def load(model: str):
    if model == "test":
        from clifs.engine.models.testmodel import load as load_test

        return load_test(device="cpu")
    from clifs.engine.models.registry import load_model

    return load_model(model, "cpu").encoder


def originals(model: str, n: int) -> list[Image.Image]:
    if model == "test":
        return [s.image for s in iter_scenes(HELD_OUT_SEED_BASE + 500, n, 256, n_objects=2)]
    photos = sorted((ROOT / "assets" / "demo").glob("*.jpg"))[:n]
    return [open_image(p, min_side=512) for p in photos]


def places(model: str) -> list[Image.Image]:
    if model == "test":
        return [s.image for s in iter_scenes(HELD_OUT_SEED_BASE + 600, 4, 384, n_objects=3)]
    return [open_image(p, min_side=512) for p in sorted((ROOT / "assets" / "demo").glob("*.jpg"))[-4:]]


def measure(model: str, n: int) -> dict:
    encoder = load(model)
    base = originals(model, n)
    pictures: list[Image.Image] = list(base)
    copy_pairs: list[tuple[int, int, str]] = []
    for i, im in enumerate(base):
        for name, c in copies(im).items():
            pictures.append(c)
            copy_pairs.append((i, len(pictures) - 1, name))
    other_pairs: list[tuple[int, int, str]] = [
        (i, j, "different photos") for i, j in itertools.combinations(range(n), 2)
    ]
    for seed in range(3):
        a, b = plain_walls(seed=seed)
        pictures += [a, b]
        other_pairs.append((len(pictures) - 2, len(pictures) - 1, "plain wall"))
    for place in places(model):
        a, b = two_views(place)
        pictures += [a, b]
        other_pairs.append((len(pictures) - 2, len(pictures) - 1, "same place"))
    with torch.no_grad():
        vectors = np.concatenate([encoder.encode_pil(pictures[i : i + 16]) for i in range(0, len(pictures), 16)])
    hashes = [perceptual_signature(p) for p in pictures]
    rule = calibration_for(encoder.model_id)

    def rows(pairs):
        out = []
        for i, j, what in pairs:
            cos = float(vectors[i] @ vectors[j])
            dist = distance(hashes[i], hashes[j])
            out.append(
                {
                    "what": what,
                    "cosine": round(cos, 4),
                    "hash_distance": dist,
                    "called_copy": cos >= rule.cosine and dist <= rule.max_hash_distance,
                }
            )
        return out

    copy_rows, other_rows = rows(copy_pairs), rows(other_pairs)
    report = {
        "model": encoder.model_id,
        "rule": {"cosine": rule.cosine, "max_hash_distance": rule.max_hash_distance},
        "copies": len(copy_rows),
        "copies_found": sum(r["called_copy"] for r in copy_rows),
        "non_copies": len(other_rows),
        "non_copies_called_copies": sum(r["called_copy"] for r in other_rows),
        "copy_cosine_min": min(r["cosine"] for r in copy_rows),
        "copy_hash_max": max(r["hash_distance"] for r in copy_rows),
        "by_copy_kind": {},
        "by_non_copy_kind": {},
    }
    # the cosine threshold swept with the hash limit fixed: copies found, non-copies called copies
    report["sweep"] = {
        f"{t:.2f}": [
            sum(r["cosine"] >= t and r["hash_distance"] <= rule.max_hash_distance for r in copy_rows),
            sum(r["cosine"] >= t and r["hash_distance"] <= rule.max_hash_distance for r in other_rows),
        ]
        for t in (0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.95, 0.96, 0.97)
    }
    for name in sorted({r["what"] for r in copy_rows}):
        sel = [r for r in copy_rows if r["what"] == name]
        report["by_copy_kind"][name] = {
            "cosine_min": min(r["cosine"] for r in sel),
            "hash_max": max(r["hash_distance"] for r in sel),
            "found": f"{sum(r['called_copy'] for r in sel)}/{len(sel)}",
        }
    for name in sorted({r["what"] for r in other_rows}):
        sel = [r for r in other_rows if r["what"] == name]
        report["by_non_copy_kind"][name] = {
            "cosine_max": max(r["cosine"] for r in sel),
            "hash_min": min(r["hash_distance"] for r in sel),
            "called_copies": f"{sum(r['called_copy'] for r in sel)}/{len(sel)}",
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="test,starter")
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(2)
    reports = [measure(m, args.n) for m in args.models.split(",")]
    print(json.dumps(reports, indent=2))
    out = ROOT / "bench" / "out" / "duplicates_calibration.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(reports, indent=2))


if __name__ == "__main__":
    main()
