"""`clifs list [--failed]`: what the catalog holds."""

from __future__ import annotations

import argparse

from clifs.cli.common import add_json_option, add_model_option, note, print_json, printable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list indexed files (or only the failures, with reasons)")
    p.add_argument("--failed", action="store_true", help="only files that could not be indexed")
    add_model_option(p)
    add_json_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clifs.engine.catalog import Catalog
    from clifs.engine.config import Settings

    catalog = Catalog(Settings.load().catalog_path)
    rows = []
    for f, items in catalog.list_files(failed_only=args.failed):
        entry = {"path": f.path, "kind": f.kind, "items": items, "status": f.status}
        if f.status == "failed":
            entry["error"] = f.error
        rows.append(entry)
    counts = catalog.counts() if not rows else None
    catalog.close()
    if counts is not None:
        if counts["files"] + counts["failed"] == 0:
            note("nothing indexed yet: run `clifs index FOLDER`")
        elif args.failed:
            note(f"no failed files ({counts['files']} indexed)")
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        detail = f"failed: {printable(r['error'])}" if r["status"] == "failed" else f"{r['items']} item(s)"
        print(f"{r['kind']:5}  {printable(r['path'])}  ({detail})")
    return 0
