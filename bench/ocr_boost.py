"""What the text boost does to the existing retrieval numbers (boost off vs on, same index).

    python bench/ocr_boost.py [--scenes 500] [--skip-starter]

Both go through the real path: Library + Pipeline (the embedding pass) + OcrPass (the text), then
Library.search with ``text_boost`` False and True.
  * the test model on held-out shapes scenes (devkit/evaluate.py's text->image R@1: "a {colour}
    {shape}", hit when the first image holds that object);
  * the offline starter model on assets/demo with its ground truth (bench/starter_quality.py's top-1
    over ImageNet-covered queries and R@5; a video counts at its best moment).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clifs.engine.config import Settings  # noqa: E402
from clifs.engine.library import Library  # noqa: E402
from devkit.evaluate import OBJECT_NAMES  # noqa: E402
from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes  # noqa: E402
from devkit.starter_quality import DEMO, load_queries  # noqa: E402
from indexer.ocr_pass import OcrPass  # noqa: E402
from indexer.pipeline import Pipeline  # noqa: E402


def index(library: Library, folder: Path) -> str:
    t = time.perf_counter()
    Pipeline(library).index_folders([str(folder)])
    embed = time.perf_counter() - t
    t = time.perf_counter()
    report = OcrPass(library).run([str(folder)])
    return (
        f"embedded in {embed:.0f} s; OCR {report.read} files in {time.perf_counter() - t:.0f} s, "
        f"{report.with_text} with text ({report.lines} lines)"
    )


def shapes(n: int) -> None:
    from clifs.engine.models.testmodel import load

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "scenes"
        folder.mkdir()
        scenes = list(iter_scenes(HELD_OUT_SEED_BASE + 2, n, 64))
        for i, s in enumerate(scenes):
            s.image.save(folder / f"{i:04d}.png")
        library = Library(Settings(home=Path(tmp) / "home"), encoder=load(device="cpu"))
        print(f"test model, {n} held-out scenes: {index(library, folder)}")
        present = [name for name in OBJECT_NAMES if any(o.name == name for s in scenes for o in s.objects)]
        for boost in (False, True):
            hits = 0
            for name in present:
                top = library.search(f"a {name}", top=1, text_boost=boost)[0]
                hits += any(o.name == name for o in scenes[int(Path(top.path).stem)].objects)
            print(
                f"  text->image R@1, boost {'on ' if boost else 'off'}: {hits / len(present):.3f} ({len(present)} queries)"
            )
        library.close()


def starter() -> None:
    queries = load_queries()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home", model="starter")
        library = Library(settings)
        print(f"starter model, assets/demo: {index(library, DEMO)}")
        texts = {
            Path(path).name: "; ".join(t for _, lines in library.text_of(path) for t, _, _ in lines)
            for path in sorted(str(p) for p in DEMO.iterdir())
        }
        print("  text read: " + ", ".join(f"{k}: {v[:40]!r}" for k, v in texts.items() if v))
        for boost in (False, True):
            top1, r5 = [], []
            for q in queries:
                hits = library.search(q.text, top=5, text_boost=boost)
                found = [_hit(q, h) for h in hits]
                if q.imagenet:
                    top1.append(bool(found) and found[0])
                r5.append(sum(found) / min(5, len(q.files)))
            print(
                f"  boost {'on ' if boost else 'off'}: top-1 {np.mean(top1):.3f} of {len(top1)} ImageNet-covered queries, "
                f"R@5 {np.mean(r5):.3f} over {len(queries)}"
            )
        library.close()


def _hit(q, h) -> bool:
    name = Path(h.path).name
    if h.timestamp is None:
        return name in q.images
    return any(a <= h.timestamp <= b for a, b in q.videos.get(name, []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=500)
    parser.add_argument("--skip-starter", action="store_true")
    args = parser.parse_args()
    shapes(args.scenes)
    if not args.skip_starter:
        starter()


if __name__ == "__main__":
    main()
