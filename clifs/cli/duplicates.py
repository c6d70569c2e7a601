"""`clifs duplicates [--in FOLDER]`: groups of near-identical photos, best copy first."""

from __future__ import annotations

import argparse
import os

from clifs.cli.common import add_json_option, add_model_option, note, open_library, print_json, printable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "duplicates",
        help="groups of near-identical photos (resized, recompressed, lightly cropped copies), best copy first",
    )
    p.add_argument("--in", dest="folder", metavar="FOLDER", help="only photos under this folder")
    add_model_option(p)
    add_json_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clifs.engine.duplicates import calibration_for

    if args.folder and not os.path.isdir(args.folder):
        from clifs.cli.main import UsageError

        raise UsageError(f"not a folder: {args.folder}")
    library = open_library(args, need_model=False)
    try:
        counts = library.catalog.counts()
        groups = library.duplicates(args.folder) if counts["items"] else []
        calibration = calibration_for(library.model.model_id)
        model = library.model.display_name
    finally:
        library.close()
    if not counts["items"]:
        note("nothing indexed yet: run `clifs index FOLDER`")
    elif not groups:
        where = f" under {args.folder}" if args.folder else ""
        note(f"no near-duplicate photos{where}")
    if args.json:
        print_json(groups)
        return 0
    copies = 0
    for group in groups:
        print(printable(group[0]))
        for path in group[1:]:
            print(f"  = {printable(path)}")
            copies += 1
    if groups:
        note(
            f"{len(groups)} group(s), {copies} extra cop{'y' if copies == 1 else 'ies'}; best copy first (most pixels, "
            f"then oldest). Copies: cosine >= {calibration.cosine:g} with {model} and perceptual hashes at most "
            f"{calibration.max_hash_distance} of 64 bits apart"
        )
    return 0
