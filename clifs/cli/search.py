"""`clifs search [TEXT] [--image PATH]`: find files by meaning."""

from __future__ import annotations

import argparse
import os
import sys

from clifs.cli.common import add_json_option, add_model_option, open_library, print_json
from clifs.cli.main import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search by text, by image, or both")
    p.add_argument("text", nargs="?", help='what to look for, e.g. "a dog on a beach"')
    p.add_argument("--image", metavar="PATH", help="an image to search by (combined with TEXT when both are given)")
    p.add_argument("--image-weight", type=float, default=0.5, help="share of the image when combined (0-1)")
    p.add_argument("--not", dest="negative", metavar="TEXT", help="push results away from this text")
    p.add_argument("--top", type=int, default=10, help="number of results (default 10)")
    p.add_argument("--in", dest="folder", metavar="FOLDER", help="only files under this folder")
    p.add_argument("--kind", choices=["image", "video"], help="only images or only videos")
    p.add_argument("--min-score", type=float, help="drop hits whose cosine is below this")
    p.add_argument("--relative", type=float, metavar="MARGIN", help="drop hits more than MARGIN below the best")
    add_model_option(p)
    add_json_option(p)
    p.set_defaults(func=run)


def format_timestamp(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def run(args: argparse.Namespace) -> int:
    if not args.text and not args.image:
        raise UsageError("give a TEXT query, --image PATH, or both")
    if args.image and not os.path.exists(args.image):
        raise UsageError(f"query image not found: {args.image}")
    if args.top < 1:
        raise UsageError("--top must be at least 1")
    if not 0.0 <= args.image_weight <= 1.0:
        raise UsageError("--image-weight must be between 0 and 1")
    from clifs.engine.media import MediaError

    library = open_library(args)
    try:
        hits = library.search(
            text=args.text,
            image=args.image,
            top=args.top,
            negative=args.negative,
            image_weight=args.image_weight,
            folder=args.folder,
            kind=args.kind,
            min_score=args.min_score,
            max_below_best=args.relative,
        )
    except MediaError as exc:
        raise UsageError(f"cannot read query image {args.image}: {exc}") from None
    finally:
        library.close()
    unembedded = library.catalog.counts()["items"] - len(library.vectors)
    if unembedded > 0:
        print(
            f"clifs: {unembedded} indexed items have no vectors for {library.model.display_name} yet "
            "(indexed with another model); run `clifs index` on their folders to embed them.",
            file=sys.stderr,
        )
    if args.json:
        print_json([h.to_json() for h in hits])
        return 0
    if library.fallback_reason:
        print(f"(model: {library.model.display_name})")
    for h in hits:
        where = f" @ {format_timestamp(h.timestamp)}" if h.timestamp is not None else ""
        print(f"{h.score:.3f}  {h.path}{where}")
    return 0
