"""`clifs list [--failed]`: what the catalog holds."""

from __future__ import annotations

import argparse

from clifs.cli.common import add_json_option, add_model_option, note, print_json, printable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list indexed files (or only the failures, with reasons)")
    p.add_argument("--failed", action="store_true", help="only files that could not be indexed")
    p.add_argument(
        "--skipped",
        action="store_true",
        help="how many files of which extensions the last `clifs index` of each folder passed over (types clifs does not read)",
    )
    add_model_option(p)
    add_json_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clifs.engine.catalog import Catalog
    from clifs.engine.config import Settings

    catalog = Catalog(Settings.load().catalog_path)
    if args.skipped:
        return _skipped(catalog, args)
    rows = []
    sounds = catalog.sound_counts()
    for f, items in catalog.list_files(failed_only=args.failed):
        # items: everything searchable in the file; sounds: how many of them are windows of sound
        entry = {"path": f.path, "kind": f.kind, "items": items, "sounds": sounds.get(f.id, 0), "status": f.status}
        if f.status == "failed":
            entry["error"] = f.error
        else:
            entry["taken"] = f.taken
            entry["taken_from"] = f.taken_from
            entry["camera"] = f.camera
            entry["sound"] = f.sound_note  # "silent", why a soundtrack was not indexed, or null
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
        if r.get("sound"):
            detail += f"; {printable(r['sound'])}"
        print(f"{r['kind']:5}  {printable(r['path'])}  ({detail})")
    return 0


def _skipped(catalog, args: argparse.Namespace) -> int:
    """What the last `clifs index` of each folder passed over, by extension."""
    from clifs.cli.index import stored_skipped

    by_folder = stored_skipped(catalog)
    catalog.close()
    rows = [
        {"folder": folder, "extension": ext, "files": n}
        for folder, counts in sorted(by_folder.items())
        for ext, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        note("no files were passed over (or no folder has been indexed with `clifs index` yet)")
    for folder in sorted(by_folder):
        print(f"{printable(folder)}: {format_skipped(by_folder[folder])}")
    return 0


def format_skipped(counts: dict[str, int]) -> str:
    """ "12 files passed over: .txt 7, .xmp 4, (no extension) 1"."""
    total = sum(counts.values())
    parts = ", ".join(
        f"{ext or '(no extension)'} {n}" for ext, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    return f"{total} file{'s' if total != 1 else ''} passed over (types clifs does not read): {parts}"
