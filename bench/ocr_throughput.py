"""OCR throughput on 1080p photos with and without text, and the embedding pass measured in the same run.

    python bench/ocr_throughput.py [--images 16] [--side 960] [--threads 0] [--model ViT-B-32]

Also prints the OCR pass's CPU seconds per photo (all threads), which a busy machine does not inflate
much: on an idle machine the rate is at most cores / that. Generates 1920x1080 JPEGs: photo-like backgrounds (the demo photos and shapes-world scenes, upscaled
with sensor-like noise so they compress like photos), half of them with signs of text (a title and a
few lines in TrueType fonts from the test extra's wheels). Then, in one process, as `clifs index`
does: the embedding pass (Pipeline.index_folders, random-weight ViT-B-32: the real FLOPs) and the
OCR pass (OcrPass.run) over each folder, and the embedding pass again on a fresh home with no OCR
engine ever loaded, so both embedding numbers come from the same run. Prints images/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clifs.engine.config import Settings  # noqa: E402
from clifs.engine.library import Library  # noqa: E402
from indexer.ocr_pass import OcrPass  # noqa: E402
from indexer.pipeline import Pipeline  # noqa: E402
from tests.ocr_helpers import DEMO, draw_words, scene  # noqa: E402

SIZE = (1920, 1080)
SIGNS = [
    ("GRAND OPENING", "fresh bread daily", "open 7am to 9pm"),
    ("Platform 4", "departures to Bristol", "mind the gap"),
    ("Quarterly review", "revenue up twelve percent", "next steps and owners"),
    ("SALE", "everything must go", "up to 50% off"),
    ("Odwalla", "fresh squeezed juice", "since 1980"),
    ("Museum of Science", "exhibits on level two", "cafe and shop"),
]
#: Demo photos in which RapidOCR finds nothing (others hold text: a page, a github shirt, plates).
NO_TEXT_PHOTOS = ["chelsea.jpg", "astronaut.jpg", "rocket.jpg", "coins.jpg", "brick.jpg", "gravel.jpg", "grass.jpg"]
FONTS = ["Lato-Bold", "Caladea-Bold", "FredokaOne-Regular", "Lato-Regular"]


def backgrounds(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    photos = [DEMO / n for n in NO_TEXT_PHOTOS]
    out = []
    for i in range(n):
        base = Image.open(photos[i % len(photos)]).convert("RGB") if i % 2 else scene(256, 2000 + i)
        big = np.asarray(base.resize(SIZE, Image.Resampling.BILINEAR), dtype=np.int16)
        out.append(Image.fromarray(np.clip(big + rng.normal(0, 5, big.shape), 0, 255).astype(np.uint8)))
    return out


def make_folders(root: Path, n: int) -> tuple[Path, Path]:
    plain, text = root / "no_text", root / "text"
    plain.mkdir(parents=True)
    text.mkdir(parents=True)
    for i, image in enumerate(backgrounds(n)):
        image.save(plain / f"{i:03d}.jpg", quality=90)
        title, *lines = SIGNS[i % len(SIGNS)]
        font = FONTS[i % len(FONTS)]
        signed = draw_words(image, title, font, 96, angle=(i % 3 - 1) * 4, centre=(0.5, 0.3))
        for k, line in enumerate(lines):
            signed = draw_words(signed, line, font, 56, centre=(0.5, 0.5 + 0.14 * k))
        signed.save(text / f"{i:03d}.jpg", quality=90)
    return plain, text


def load_avg() -> float:
    return os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=16, help="photos per folder")
    parser.add_argument("--side", type=int, default=960, help="ocr_max_side")
    parser.add_argument("--threads", type=int, default=0, help="ocr_threads (0: the cores, up to 4)")
    parser.add_argument("--model", default="ViT-B-32", help="open_clip architecture, random weights")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    import torch

    from clifs.engine.models.openclip import random_init

    torch.set_num_threads(os.cpu_count() or 1)
    encoder = random_init(args.model)
    print(f"load average at start {load_avg():.2f}; {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        plain, text = make_folders(Path(tmp) / "photos", args.images)
        results: dict[str, list[float]] = {}
        for repeat in range(args.repeats):
            for name, folder in (("no text", plain), ("text", text)):
                home = Path(tmp) / f"home_{name}_{repeat}"
                settings = Settings(home=home, ocr_max_side=args.side, ocr_threads=args.threads)
                library = Library(settings, encoder=encoder)
                t = time.perf_counter()
                report = Pipeline(library).index_folders([str(folder)])
                results.setdefault(f"embedding pass, {name} (then OCR)", []).append(
                    report.added / (time.perf_counter() - t)
                )
                ocr = OcrPass(library)
                ocr.engine.read(Image.new("RGB", (64, 64)))  # load the models outside the timing
                t, cpu = time.perf_counter(), time.process_time()
                read = ocr.run([str(folder)])
                results.setdefault(f"OCR pass, {name}", []).append(read.read / (time.perf_counter() - t))
                # CPU seconds per photo (all threads): what a busy machine cannot hide; cores / this is
                # the rate an idle machine would reach if the threads kept every core busy
                results.setdefault(f"  OCR CPU seconds per photo, {name}", []).append(
                    (time.process_time() - cpu) / max(read.read, 1)
                )
                results.setdefault(f"  lines per photo, {name}", []).append(read.lines / max(read.read, 1))
                ocr.close()
                library.close()
                # the embedding pass alone, in a home whose OCR engine is never loaded
                alone = Library(Settings(home=Path(tmp) / f"alone_{name}_{repeat}", ocr=False), encoder=encoder)
                t = time.perf_counter()
                report = Pipeline(alone).index_folders([str(folder)])
                results.setdefault(f"embedding pass, {name} (no OCR)", []).append(
                    report.added / (time.perf_counter() - t)
                )
                alone.close()
        print(
            f"{args.images} photos of {SIZE[0]}x{SIZE[1]} per folder, ocr_max_side {args.side}, medians of {args.repeats}"
        )
        for key, values in results.items():
            unit = "" if key.startswith("  ") else " images/s"
            print(f"  {key}: {statistics.median(values):.2f}{unit}   (runs: {', '.join(f'{v:.2f}' for v in values)})")
    print(f"load average at end {load_avg():.2f}")


if __name__ == "__main__":
    main()
