"""Render the example overlays in docs/: masks and boxes on shapes-world scenes, and on a real photo.

    .venv/bin/python bench/vision_examples.py [--weights PATH] [--out docs]

- vision-masks.png: per scene, the image, the exact masks, then vanilla, ClearCLIP and
  NACLIP masks (+PAMR), each asked for the objects the scene holds;
- vision-boxes.png: `detect` asked for every object present plus one absent name;
- vision-photo.png: masks and boxes from the offline starter model (coarse, not CLIP) on
  public-domain demo photos, when that model and the photos are available.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from clifs.engine.models import testmodel
from clifs.engine.models.base import ModelUnavailable
from clifs.engine.vision.boxes import detect
from clifs.engine.vision.dense import DenseOptions, segment
from clifs.engine.vision.overlay import box_overlay, mask_overlay
from clifs.engine.vision.vocabulary import load_vocabulary
from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes

SIZE = 192
PHOTOS = {"chelsea.jpg": ["cat"], "coffee.jpg": ["cup", "spoon"], "motorcycle.jpg": ["motorcycle"]}


def grid(rows: list[list[Image.Image]], captions: list[str], tile: int) -> Image.Image:
    head = 16
    out = Image.new("RGB", (tile * len(captions), head + tile * len(rows)), (255, 255, 255))
    draw = ImageDraw.Draw(out)
    for i, text in enumerate(captions):
        draw.text((i * tile + 4, 2), text, fill=(0, 0, 0))
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            out.paste(im.resize((tile, tile)) if im.size != (tile, tile) else im, (c * tile, head + r * tile))
    return out


def shapes_examples(encoder, out: Path) -> None:
    scenes = [s for s in iter_scenes(HELD_OUT_SEED_BASE + 9000, 40, size=SIZE) if len(s.objects) >= 2][:4]
    rows = []
    for scene in scenes:
        names = list(dict.fromkeys(o.name for o in scene.objects))
        truth = np.full((SIZE, SIZE), -1, np.int16)
        for obj in scene.objects:
            truth[obj.mask] = names.index(obj.name)
        row = [scene.image, mask_overlay(scene.image, truth, names)]
        for method in ("vanilla", "clearclip", "naclip"):
            seg = segment(encoder, scene.image, names, options=DenseOptions(method=method, pamr=True))
            row.append(mask_overlay(scene.image, seg.label_map, names))
        rows.append(row)
    captions = ["image", "exact masks", "vanilla + PAMR", "ClearCLIP + PAMR", "NACLIP + PAMR"]
    grid(rows, captions, SIZE).save(out / "vision-masks.png")

    vocab = load_vocabulary("shapes")
    rows = []
    for scene in scenes:
        names = list(dict.fromkeys(o.name for o in scene.objects))
        absent = next(n for n in vocab if n not in names and n.split()[0] in {o.colour for o in scene.objects})
        found = detect(encoder, scene.image, names + [absent])
        truth = box_overlay(scene.image, [(o.name, 1.0, o.box) for o in scene.objects], names + [absent])
        rows.append([truth, box_overlay(scene.image, [(d.label, d.score, d.box) for d in found], names + [absent])])
    grid(rows, ["exact boxes", "detect (present names + one absent)"], SIZE).save(out / "vision-boxes.png")


def photo_examples(out: Path, demo: Path) -> bool:
    from clifs.engine.models import starter

    try:
        encoder = starter.load(device="cpu")
    except ModelUnavailable as exc:
        print(f"skipping the photo example: {exc}")
        return False
    rows = []
    for name, labels in PHOTOS.items():
        path = demo / name
        if not path.is_file():
            continue
        image = Image.open(path).convert("RGB")
        image.thumbnail((384, 384))
        seg = segment(encoder, image, labels, options=DenseOptions(pamr=True))
        found = detect(encoder, image, labels)
        rows.append(
            [
                mask_overlay(image, seg.label_map, labels),
                box_overlay(image, [(d.label, d.score, d.box) for d in found], labels),
            ]
        )
    if not rows:
        return False
    tile_w = max(im.width for row in rows for im in row)
    tile_h = max(im.height for row in rows for im in row)
    sheet = Image.new("RGB", (2 * tile_w, len(rows) * tile_h), (255, 255, 255))
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            sheet.paste(im, (c * tile_w, r * tile_h))
    sheet.save(out / "vision-photo.png")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, help="test-model checkpoint (default: the shipped one)")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--demo", type=Path, default=Path("assets/demo"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    shapes_examples(testmodel.load(device="cpu", weights=args.weights), args.out)
    photo_examples(args.out, args.demo)
    print(f"wrote overlays to {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
