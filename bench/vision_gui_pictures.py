"""Render the window's "What's in it?" overlay and the sketch pad to PNGs under docs/, with the test model.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/vision_gui_pictures.py [--out docs]

A throwaway CLIFS_HOME indexes shapes-world scenes (192 px: singles and scenes of two or three
objects). gui-whats-in-it.png: a three-object scene selected and "What's in it?" on.
gui-sketch.png: a red blob drawn on the pad (an outline, then the fill bucket) and what it finds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QPointF  # noqa: E402

from bench.screenshots import settle, visible_thumbnails_loaded, wait  # noqa: E402
from clifs.engine.config import Settings  # noqa: E402
from clifs.engine.library import Library  # noqa: E402
from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes  # noqa: E402
from devkit.sketches import drawing  # noqa: E402
from gui.app import application  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402

SIZE = (1180, 760)


def scenes_folder(root: Path) -> tuple[Path, Path]:
    folder = root / "shapes"
    folder.mkdir()
    three = None
    for i, scene in enumerate(iter_scenes(HELD_OUT_SEED_BASE + 800, 60, 192)):
        path = folder / f"scene_{i:02d}.png"
        scene.image.save(path)
        if three is None and len(scene.objects) == 3:
            three = path
    for i, scene in enumerate(iter_scenes(HELD_OUT_SEED_BASE + 801, 30, 192, n_objects=1)):
        scene.image.save(folder / f"single_{i:02d}.png")
    assert three is not None
    return folder, three


def main() -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    application()
    with tempfile.TemporaryDirectory(prefix="clifs-vision-shots-") as tmp:
        home = Path(tmp) / "home"
        os.environ["CLIFS_HOME"] = str(home)
        settings = Settings.load(home)
        settings.model = "shapes-vit-tiny"
        settings.torch_threads = 1
        library = Library(settings, load_model=False)
        folder, three = scenes_folder(Path(tmp))
        window = MainWindow(library, open_url=lambda url: True, watch=False)
        window.resize(*SIZE)
        window.show()
        wait(lambda: window.indexer is not None, "the model")
        window.add_folder(str(folder))
        wait(lambda: library.catalog.counts()["files"] >= 90, "indexing")
        wait(lambda: window.indexer.service.wait_idle(0.01), "indexing to finish")

        window.set_query_image(str(three))
        wait(lambda: window.results.rowCount() > 0, "results")
        window.view.setCurrentIndex(window.results.index(0))
        wait(window.detail.preview.has_image, "the preview")
        window.detail.vision.buttons["regions"].click()
        wait(lambda: window.detail.vision.found.isVisible(), "the regions")
        wait(lambda: visible_thumbnails_loaded(window), "thumbnails")
        settle()
        window.grab().save(str(args.out / "gui-whats-in-it.png"))
        print("wrote", args.out / "gui-whats-in-it.png", "-", window.detail.vision.found.text())

        window.clear_query_image()
        window.detail.hide()
        window.sketch_button.click()
        pad = window.sketch
        pad.choose_pen("red")
        d = drawing("circle", np.random.default_rng(3), style="filled")
        pad.canvas.stroke([QPointF(x, y) for x, y in d.strokes[0][1]])
        pad.choose_tool("fill")
        pad.canvas._fill(QPointF(*d.fills[0]))
        pad.canvas.stroke_finished.emit()
        wait(lambda: window.results.rowCount() > 0, "sketch results")
        wait(lambda: visible_thumbnails_loaded(window), "thumbnails")
        settle()
        window.grab().save(str(args.out / "gui-sketch.png"))
        print("wrote", args.out / "gui-sketch.png")
        window.close()
        library.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
