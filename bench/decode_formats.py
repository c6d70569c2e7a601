"""Decode time per file as the indexer opens it (``open_image``, min side 256): 12 MP JPEG, HEIC, AVIF and
DNG (embedded preview vs demosaic).

    .venv/bin/python bench/decode_formats.py [--repeats 3] [--side 4000]

The picture is a demo photo upscaled to 4000 x 3000 with a little noise (so codecs see photo-like
detail, not flat colour). HEIC is written by pillow-heif (x265, quality 80) without and with a
320 x 240 thumbnail (as phones write them; its 240-px short side is enough for the models' 224-px
input, so the indexer decodes the thumbnail); AVIF by Pillow (quality 75, speed 8); the DNGs by devkit/dng.py as 16-bit
RGGB mosaics, one with a 1600 x 1200 JPEG preview (what LibRaw's extract_thumb gives), one without
(LibRaw half-size demosaic). Medians of ``--repeats`` runs; prints the file size too.
Writes bench/out/decode_formats.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image

from clifs.engine.media import open_image
from devkit.dng import write_dng

ROOT = Path(__file__).resolve().parents[1]


def picture(side: int) -> Image.Image:
    base = Image.open(ROOT / "assets" / "demo" / "astronaut.jpg").convert("RGB")
    big = base.resize((side, side * 3 // 4), Image.Resampling.BICUBIC)
    noise = np.random.default_rng(0).normal(0, 4, (big.height, big.width, 1))
    return Image.fromarray(np.clip(np.asarray(big, np.float32) + noise, 0, 255).astype(np.uint8))


def timed(path: Path, repeats: int) -> tuple[float, str]:
    runs, how = [], ""
    for _ in range(repeats):
        started = time.perf_counter()
        im = open_image(path)
        runs.append(time.perf_counter() - started)
        how = im.info.get("raw_decode", f"{im.width}x{im.height}")
    return statistics.median(runs) * 1000, how


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--side", type=int, default=4000)
    args = parser.parse_args()
    pillow_heif.register_heif_opener()
    pic = picture(args.side)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        pic.save(d / "photo.jpg", quality=90)
        pic.save(d / "photo.heic", quality=80)
        pic.save(d / "thumb.heic", quality=80, thumbnails=[320])
        pic.save(d / "photo.avif", quality=75, speed=8)
        write_dng(d / "preview.dng", pic, preview=pic.resize((1600, 1200), Image.Resampling.BILINEAR))
        write_dng(d / "mosaic.dng", pic)
        for name, what in (
            ("photo.jpg", "JPEG (draft: DCT-domain downscale)"),
            ("photo.heic", "HEIC, no thumbnail (full decode)"),
            ("thumb.heic", "HEIC with a 320x240 thumbnail (as phones write them: the thumbnail)"),
            ("photo.avif", "AVIF (full decode)"),
            ("preview.dng", "DNG with a 1600x1200 JPEG preview"),
            ("mosaic.dng", "DNG without a preview (half-size demosaic)"),
        ):
            ms, how = timed(d / name, args.repeats)
            row = {
                "file": what,
                "ms": round(ms, 1),
                "decoded": how,
                "mb": round((d / name).stat().st_size / 1e6, 2),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    out = ROOT / "bench" / "out" / "decode_formats.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
