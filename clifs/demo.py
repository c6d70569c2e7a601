"""The main job behind `make run`: index the demo folder with whichever model is available,
then open the window on it, or, with no display, print a few example searches.

    python -m clifs.demo [--no-gui] [--model NAME]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from clifs.engine.assets import demo_folder
from clifs.engine.config import Settings

DEMO_FOLDER = demo_folder()
EXAMPLE_QUERIES = ["a cat", "a dog", "a cup of coffee", "a rocket", "a bird"]


def has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        return False
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def index_demo(settings: Settings):
    from clifs.engine.library import Library
    from indexer.pipeline import Pipeline

    library = Library(settings)
    print(f"model: {library.encoder.display_name}")
    if library.fallback_reason:
        print(f"note: {library.fallback_reason}")
    library.catalog.add_folder(str(DEMO_FOLDER))
    report = Pipeline(library).index_folders([str(DEMO_FOLDER)])
    print(
        f"indexed {report.added} new files ({report.items} items), {report.unchanged} unchanged, "
        f"{len(report.failed)} failed, in {report.seconds:.1f} s"
    )
    return library


def print_examples(library, queries: list[str], top: int = 3) -> None:
    from clifs.cli.search import format_timestamp

    for query in queries:
        print(f'\n"{query}"')
        for hit in library.search(text=query, top=top):
            where = f" @ {format_timestamp(hit.timestamp)}" if hit.timestamp is not None else ""
            print(f"  {hit.score:.3f}  {Path(hit.path).name}{where}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-gui", action="store_true", help="print example searches instead of opening the window")
    parser.add_argument("--model", help="model name or path (default: CLIP if available, else the starter model)")
    args = parser.parse_args(argv)
    from clifs.engine.models.base import ModelUnavailable

    settings = Settings.load()
    if args.model:
        settings.model = args.model
    # The registry logs the missing-weights fallback and hands back the same reason, which index_demo
    # prints as a note: without this the person reads it twice.
    logging.getLogger("clifs.engine.models.registry").setLevel(logging.ERROR)
    try:
        library = index_demo(settings)
    except ModelUnavailable as exc:
        print(f"clifs: error: {exc}", file=sys.stderr)
        return 2
    if args.no_gui or not has_display():
        queries_file = DEMO_FOLDER / "queries.json"
        queries = EXAMPLE_QUERIES
        if queries_file.is_file():
            queries = [q["query"] for q in json.loads(queries_file.read_text())["queries"]][:6]
        print_examples(library, queries)
        library.close()
        return 0
    library.close()
    from gui.app import run

    return run(settings, [str(DEMO_FOLDER)])


if __name__ == "__main__":
    sys.exit(main())
