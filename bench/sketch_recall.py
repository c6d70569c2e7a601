"""Sketches as queries: R@5 of crude drawings made on the real sketch pad, with the test model.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/sketch_recall.py [--per-cell 5] [--json bench/out/sketch_recall.json]

Each drawing (devkit/sketches.py: a wobbly outline, then nothing, the fill bucket, or a thick
zig-zag scribble) is replayed on gui/sketch_pad.py's canvas in the pad's pen colours, and the
pad's picture searches a gallery of 500 held-out shapes-world scenes (0-3 objects, as the
test model's text R@1). A query scores when one of its top 5 scenes holds an object of the drawn
colour and shape. Reported per style, per shape and per colour; ``--with-text`` also combines
each sketch with the text "a {colour} {shape}" at the window's image weight (0.5).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QPointF  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from clifs.engine.models import testmodel  # noqa: E402
from clifs.engine.models.numpy_ops import l2_normalise  # noqa: E402
from devkit.shapes import COLOURS, HELD_OUT_SEED_BASE, SHAPES, iter_scenes  # noqa: E402
from devkit.sketches import STYLES, drawing  # noqa: E402
from gui.image_query import qimage_to_pil  # noqa: E402
from gui.sketch_pad import SketchPad  # noqa: E402

GALLERY_SEED = HELD_OUT_SEED_BASE + 2  # devkit.evaluate's text->image gallery
SKETCH_SEED = HELD_OUT_SEED_BASE + 70_000


def sketch(pad: SketchPad, shape: str, colour: str, style: str, rng: np.random.Generator):
    pad.canvas.clear()
    pad.choose_pen(colour)
    d = drawing(shape, rng, style=style)
    for size, points in d.strokes:
        pad.choose_size(size)
        pad.canvas.stroke([QPointF(x, y) for x, y in points])
    for x, y in d.fills:
        pad.choose_tool("fill")
        pad.canvas._fill(QPointF(x, y))
        pad.choose_tool("pen")
    return qimage_to_pil(pad.image())


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-cell", type=int, default=5, help="drawings per colour, shape and style")
    parser.add_argument("--with-text", action="store_true")
    parser.add_argument("--save", type=Path, help="save a grid of example drawings here")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    QApplication.instance() or QApplication([])
    encoder = testmodel.load(device="cpu")
    gallery = list(iter_scenes(GALLERY_SEED, 500, 64))
    vectors = encoder.encode_pil([s.image for s in gallery])
    names = [{o.name for o in s.objects} for s in gallery]
    pad = SketchPad()
    rng = np.random.default_rng(SKETCH_SEED)
    report: dict = {}
    examples: list = []  # the first drawing of every third cell, per style: a grid row each
    for style in STYLES:
        hits: dict[tuple[str, str], list[bool]] = {}
        for colour in COLOURS:
            for shape in SHAPES:
                images = [sketch(pad, shape, colour, style, rng) for _ in range(args.per_cell)]
                if len(hits) % 3 == 0:
                    examples.append(images[0])
                q = encoder.encode_pil(images)
                if args.with_text:
                    t = encoder.encode_texts([f"a {colour} {shape}"])[0]
                    q = l2_normalise(0.5 * q + 0.5 * t)
                top = np.argsort(-(q @ vectors.T), axis=1)[:, :5]
                hits[(colour, shape)] = [any(f"{colour} {shape}" in names[i] for i in row) for row in top]
        cell = {f"{c} {s}": float(np.mean(v)) for (c, s), v in hits.items()}
        by_shape = {s: float(np.mean([x for (c, sh), v in hits.items() if sh == s for x in v])) for s in SHAPES}
        by_colour = {c: float(np.mean([x for (col, s), v in hits.items() if col == c for x in v])) for c in COLOURS}
        overall = float(np.mean([x for v in hits.values() for x in v]))
        report[style] = {"R@5": overall, "by shape": by_shape, "by colour": by_colour, "cells": cell}
        print(f"{style:9} R@5 {overall:.3f}  " + " ".join(f"{k} {v:.2f}" for k, v in by_shape.items()))
        print(" " * 19 + " ".join(f"{k} {v:.2f}" for k, v in by_colour.items()))
    if args.save:
        from PIL import Image

        tile, per_row = 96, len(examples) // len(STYLES)
        grid = Image.new("RGB", (tile * per_row, tile * len(STYLES)), (255, 255, 255))
        for i, im in enumerate(examples):
            grid.paste(im.resize((tile, tile)), ((i % per_row) * tile, (i // per_row) * tile))
        grid.save(args.save)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
