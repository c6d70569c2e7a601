"""Recall of quoted search on a rendered set, and what the text boost does to text-heavy queries.

    python bench/ocr_recall.py [--words 40] [--side 960] [--plain 20]

Each word is drawn once on its own picture: a shapes-world scene or a demo photo, 320 to 1920 px on
the long side, letters 3 % to 12 % of the picture's height, one of five TrueType fonts, turned by
-25 to +25 degrees, or 90 degrees (one picture in eight). Plus pictures without text. Everything is
indexed as `clifs index` does (--model, then the OCR pass), then:
  * quoted recall@1: `"WORD"` returns the word's picture first (and never a picture without text);
  * by factor (angle, letter height, picture size, font);
  * the boost: the unquoted query "a sign that says WORD" with and without the text boost, R@1 of
    the word's picture (the test model itself cannot read, so without the boost it is chance).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clifs.engine.config import Settings  # noqa: E402
from clifs.engine.library import Library  # noqa: E402
from indexer.ocr_pass import OcrPass  # noqa: E402
from indexer.pipeline import Pipeline  # noqa: E402
from tests.ocr_helpers import demo_photo, draw_words, scene  # noqa: E402

WORDS = (
    "odwalla harbour zephyr quokka marmalade brixton gazpacho velvet lantern biscuit anchor bramble cobalt "
    "dolphin falcon garnet hazelnut juniper kestrel lagoon meadow nutmeg orchard pelican quartz rhubarb "
    "saffron thistle umbrella voyager walnut yonder zucchini almond badger caramel dynamo ember fjord "
    "granite hollow indigo jasmine kettle lemonade mistral"
).split()
FONTS = ["Lato-Bold", "Lato-Regular", "Caladea-Bold", "Caladea-Italic", "FredokaOne-Regular"]
PHOTOS = ["chelsea.jpg", "coffee.jpg", "motorcycle.jpg", "rocket.jpg", "astronaut.jpg", "coins.jpg"]


def render(folder: Path, words: list[str], rng: np.random.Generator) -> list[dict]:
    out = []
    for n, word in enumerate(words):
        side = int(rng.choice([320, 480, 640, 1024, 1920]))
        base = scene(side, 5000 + n) if n % 2 else demo_photo(PHOTOS[n % len(PHOTOS)], side)
        share = float(rng.choice([0.03, 0.05, 0.08, 0.12]))
        height = max(8, int(share * base.height))
        angle = 90 if n % 8 == 7 else int(rng.integers(-25, 26))
        font = FONTS[n % len(FONTS)]
        path = folder / f"w{n:03d}.jpg"
        draw_words(base, word, font, height, angle, centre=(rng.uniform(0.35, 0.65), rng.uniform(0.3, 0.7))).save(
            path, quality=90
        )
        out.append({"word": word, "path": str(path), "side": side, "share": share, "angle": angle, "font": font})
    return out


def angle_bin(a: int) -> str:
    return "90" if a == 90 else ("0-10" if abs(a) <= 10 else "11-25")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--words", type=int, default=40)
    parser.add_argument("--plain", type=int, default=16, help="pictures without text")
    parser.add_argument("--side", type=int, default=960, help="ocr_max_side")
    parser.add_argument("--model", default="shapes-vit-tiny", help="shapes-vit-tiny or starter (both offline)")
    args = parser.parse_args()
    rng = np.random.default_rng(14)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "pictures"
        folder.mkdir()
        rendered = render(folder, WORDS[: args.words], rng)
        plain = set()
        for n in range(args.plain):
            path = folder / f"plain{n:03d}.jpg"
            (scene(int(rng.choice([256, 640])), 9000 + n) if n % 2 else demo_photo(PHOTOS[n % len(PHOTOS)], 640)).save(
                path, quality=90
            )
            plain.add(str(path))
        library = Library(Settings(home=Path(tmp) / "home", ocr_max_side=args.side, model=args.model))
        Pipeline(library).index_folders([str(folder)])
        t = time.perf_counter()
        report = OcrPass(library).run([str(folder)])
        ocr_seconds = time.perf_counter() - t
        hits_at_1, false_positive, by = 0, 0, defaultdict(lambda: [0, 0])
        boost_on = boost_off = 0
        gaps: list[float] = []
        for r in rendered:
            hits = library.search(f'"{r["word"]}"', top=5, all_copies=True)
            ok = bool(hits) and hits[0].path == r["path"]
            hits_at_1 += ok
            false_positive += sum(h.path in plain for h in hits)
            for key in (
                f"angle {angle_bin(r['angle'])}",
                f"letters {int(r['share'] * 100)}% of height",
                f"picture {r['side']}px",
                f"font {r['font']}",
            ):
                by[key][0] += ok
                by[key][1] += 1
            query = f"a sign that says {r['word']}"
            boost_on += library.search(query, top=1, all_copies=True)[0].path == r["path"]
            plain_hits = library.search(query, top=len(rendered) + len(plain), text_boost=False, all_copies=True)
            boost_off += plain_hits[0].path == r["path"]
            own = next(h.score for h in plain_hits if h.path == r["path"])
            gaps.append(plain_hits[0].score - own)
        n = len(rendered)
        print(
            f"{n} rendered words, {len(plain)} pictures without text, ocr_max_side {args.side}, {os.cpu_count()} cores"
        )
        print(
            f"OCR pass: {report.read} files in {ocr_seconds:.1f} s, {report.lines} lines, {len(report.failed)} failed"
        )
        print(
            f"quoted search recall@1: {hits_at_1}/{n} = {hits_at_1 / n:.3f}; pictures without text returned: {false_positive}"
        )
        for key in sorted(by):
            ok, total = by[key]
            print(f"  {key}: {ok}/{total}")
        print(
            f'unquoted "a sign that says WORD" ({args.model}), R@1: boost off {boost_off}/{n}, boost on {boost_on}/{n}; '
            f"the best score minus the word picture's, without the boost: median {np.median(gaps):.3f}, "
            f"max {np.max(gaps):.3f}"
        )
        missed = [
            r for r in rendered if not (hits := library.search(f'"{r["word"]}"', top=1)) or hits[0].path != r["path"]
        ]
        for r in missed:
            read = [t for _, lines in library.text_of(r["path"]) for t, _, _ in lines]
            print(
                f"  missed {r['word']!r} ({r['side']}px, {int(r['share'] * 100)}%, {r['angle']} deg, {r['font']}): read {read}"
            )
        library.close()


if __name__ == "__main__":
    main()
