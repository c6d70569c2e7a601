"""Render the GUI to PNGs under docs/: the first-run empty state, results, and the detail pane.

Uses the demo photos and videos in assets/demo (or shapes-world scenes when they
are missing) in a throwaway CLIFS_HOME, with the default model if its weights
are cached (else the offline starter model; ``--model`` picks another). A text
query needs a model that knows real photos: with the shapes test model the
results come from an image query instead.

    QT_QPA_PLATFORM=offscreen python bench/screenshots.py [--model NAME] [--out docs]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # use cached CLIP weights or fall back at once, no network waits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402

from clifs.engine.config import Settings  # noqa: E402
from clifs.engine.library import Library  # noqa: E402
from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes  # noqa: E402
from gui.app import application  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402
from gui.results import THUMB_ERROR_ROLE  # noqa: E402

DEMO = ROOT / "assets" / "demo"
TEXT_QUERY = "an animal"
IMAGE_QUERY = "IMG_20200124_231153.jpg"  # a dog: an image query works with any model
SIZE = (1120, 720)


def wait(condition: Callable[[], bool], what: str, timeout: float = 900.0) -> None:
    """Run the event loop until ``condition`` holds (the workers report through it)."""
    deadline = time.monotonic() + timeout
    loop = QEventLoop()
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        QTimer.singleShot(20, loop.quit)
        loop.exec()


def settle(ms: int = 300) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def shapes_folder(root: Path) -> Path:
    folder = root / "shapes"
    folder.mkdir()
    for i, scene in enumerate(iter_scenes(HELD_OUT_SEED_BASE + 500, 40, 192)):
        scene.image.save(folder / f"{scene.caption.rstrip('.').replace(' ', '_')[:60]}_{i}.png")
    return folder


def visible_thumbnails_loaded(window: MainWindow) -> bool:
    view, model = window.view, window.results
    for row in range(model.rowCount()):
        if not view.viewport().rect().intersects(view.visualRect(model.index(row))):
            continue
        if model.thumbnail(row) is None and not model.data(model.index(row), THUMB_ERROR_ROLE):
            return False
    return True


def open_window(library: Library) -> MainWindow:
    window = MainWindow(library, open_url=lambda url: True, watch=False)
    window.resize(*SIZE)
    window.show()
    wait(lambda: window.indexer is not None or window.model_error is not None, "the model")
    return window


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model name (default: CLIP if cached, else the starter model)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    application()
    with tempfile.TemporaryDirectory(prefix="clifs-shots-") as tmp:
        home = Path(tmp) / "home"
        os.environ["CLIFS_HOME"] = str(home)
        settings = Settings.load(home)
        settings.model = args.model or settings.model
        settings.torch_threads = settings.torch_threads or 1
        library = Library(settings, load_model=False)

        window = open_window(library)
        settle()
        window.grab().save(str(args.out / "gui-empty.png"))
        print("wrote", args.out / "gui-empty.png", "-", window.status.model_label.text())

        folder = DEMO if DEMO.is_dir() and any(DEMO.glob("*.jpg")) else shapes_folder(Path(tmp))
        window.add_folder(str(folder))
        wait(lambda: library.catalog.counts()["files"] > 0, "indexing to start")
        wait(lambda: window.indexer.service.wait_idle(0.01), "indexing to finish")
        settle(1500)

        test_model = "shapes" in library.encoder.display_name
        if folder == DEMO and test_model:
            window.set_query_image(str(DEMO / IMAGE_QUERY))
        elif folder == DEMO:
            window.search_field.setText(TEXT_QUERY)
            window.search_now()
        else:
            window.search_field.setText("a red circle")
            window.search_now()
        wait(lambda: window.results.rowCount() > 0, "results")
        wait(lambda: visible_thumbnails_loaded(window), "thumbnails")
        settle()
        window.grab().save(str(args.out / "gui-results.png"))
        print("wrote", args.out / "gui-results.png")

        hits = window.results.hits()
        row = next((i for i, h in enumerate(hits) if h.kind == "video"), 0)
        window.view.setFocus()
        window.view.setCurrentIndex(window.results.index(row))
        wait(window.detail.preview.has_image, "the preview")
        wait(lambda: not window.detail.vision.labels.text().endswith("…"), "the labels")
        wait(lambda: visible_thumbnails_loaded(window), "thumbnails")
        settle()
        window.grab().save(str(args.out / "gui-detail.png"))
        print("wrote", args.out / "gui-detail.png")
        window.close()
        library.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
