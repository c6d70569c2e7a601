"""`clifs search [TEXT] [--image PATH] [--audio PATH]`: find files by meaning."""

from __future__ import annotations

import argparse
import os
import sys

from clifs.cli.common import (
    add_json_option,
    add_model_option,
    note,
    number,
    open_library,
    prewarm_text_tower,
    print_json,
    printable,
    require_file,
)
from clifs.cli.main import UsageError

COSINE = "cosine scores lie in [-1, 1]"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search by text, by image, by a sound, or a mix")
    p.add_argument("text", nargs="?", help='what to look for, e.g. "a dog on a beach"')
    p.add_argument("--image", metavar="PATH", help="an image to search by (combined with TEXT when both are given)")
    p.add_argument(
        "--image-weight",
        type=number(0.0, 1.0, meaning="the image's share of the query"),
        default=0.5,
        help="share of the image when combined (0-1)",
    )
    p.add_argument(
        "--audio",
        metavar="PATH",
        help="a sound (an audio file, or a video's soundtrack) to search by: finds pictures, video moments and sounds",
    )
    p.add_argument(
        "--audio-weight",
        type=number(0.0, 1.0, meaning="the sound's share of the query"),
        default=0.5,
        help="share of the sound when combined with TEXT or --image (0-1)",
    )
    p.add_argument("--not", dest="negative", metavar="TEXT", help="push results away from this text")
    p.add_argument("--top", type=number(1, integer=True), default=10, help="number of results (default 10)")
    p.add_argument("--in", dest="folder", metavar="FOLDER", help="only files under this folder")
    p.add_argument(
        "--kind",
        choices=["image", "video", "audio"],
        help="only images, only videos, or only sounds (audio files and the soundtracks of videos)",
    )
    p.add_argument(
        "--min-score", type=number(-1.0, 1.0, meaning=COSINE), help="drop hits whose cosine is below this (-1 to 1)"
    )
    p.add_argument(
        "--taken-after",
        type=date_option,
        metavar="DATE",
        help="only photos taken on or after DATE (2019, 2019-07, 2019-07-14; the file's date when it records none)",
    )
    p.add_argument(
        "--taken-before",
        type=date_option,
        metavar="DATE",
        help="only photos taken before DATE begins (--taken-after 2019-07 --taken-before 2019-08 is July 2019)",
    )
    p.add_argument(
        "--camera", metavar="TEXT", help='only photos from a camera whose name holds TEXT (any case: "iphone")'
    )
    p.add_argument(
        "--sort",
        choices=["score", "taken"],
        default="score",
        help="order of the hits that pass the cut-offs: by score (default) or by date taken, oldest first",
    )
    p.add_argument(
        "--all-copies",
        action="store_true",
        help="list every near-duplicate copy as its own hit (default: one hit per group, the others in 'duplicates')",
    )
    p.add_argument(
        "--relative",
        type=number(0.0, meaning="a margin below the best score is 0 or more"),
        metavar="MARGIN",
        help="drop hits more than MARGIN below the best (0 or more)",
    )
    p.add_argument(
        "--no-text-boost",
        action="store_true",
        help="rank by meaning alone: no boost for pictures whose recognised text holds the query's words",
    )
    add_model_option(p)
    add_json_option(p)
    p.set_defaults(func=run)


def date_option(text: str) -> str:
    """An argparse ``type=`` for --taken-after/--taken-before: an ISO date, checked here so a typo is exit 2."""
    from clifs.engine.photo_metadata import date_bound

    try:
        date_bound(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


def format_timestamp(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def run(args: argparse.Namespace) -> int:
    if args.text is not None and not args.text.strip():
        if not args.image and not args.audio:
            raise UsageError("the TEXT query is blank; give some words, --image PATH, --audio PATH, or a mix")
        args.text = None  # blank text next to an image or a sound: a search by that alone
    if not args.text and not args.image and not args.audio:
        raise UsageError("give a TEXT query, --image PATH, --audio PATH, or a mix")
    if args.negative is not None and not args.negative.strip():
        raise UsageError("--not needs some text to push the results away from")
    if args.camera is not None and not args.camera.strip():
        raise UsageError("--camera needs some text of the camera's name, e.g. --camera iphone")
    if args.taken_after and args.taken_before:
        from clifs.engine.photo_metadata import date_bound

        if date_bound(args.taken_after) >= date_bound(args.taken_before):
            raise UsageError(
                f"--taken-after {args.taken_after} is not earlier than --taken-before {args.taken_before}: no date "
                "lies between them (before means before that date begins: --taken-after 2019-07 --taken-before "
                "2019-08 is July)"
            )
    if args.image:
        require_file(args.image, "query image")
    if args.audio:
        require_file(args.audio, "query sound", noun="sound file")
    if args.text:
        prewarm_text_tower(args)
    from clifs.engine.errors import MediaError

    library = open_library(args)
    try:
        counts = library.reads.counts()
        if counts["items"] == 0:
            library.vectors  # noqa: B018 -- loading it tells whether the catalog lost commits its vector file saw
            for warning in library.warnings:
                note(warning)
            failed = f" ({counts['failed']} files could not be indexed: see `clifs list --failed`)"
            note("nothing indexed yet: run `clifs index FOLDER`" + (failed if counts["failed"] else ""))
            if args.json:
                print_json([])
            return 0
        query = {
            "text": args.text,
            "image": args.image,
            "audio": args.audio,
            "audio_weight": args.audio_weight,
            "negative": args.negative,
            "image_weight": args.image_weight,
            "folder": args.folder,
            "kind": args.kind,
            "text_boost": not args.no_text_boost,
            "taken_after": args.taken_after,
            "taken_before": args.taken_before,
            "camera": args.camera,
            "all_copies": args.all_copies,
        }
        try:
            hits = library.search(
                top=args.top, min_score=args.min_score, max_below_best=args.relative, sort=args.sort, **query
            )
            best = None
            if not hits and (args.min_score is not None or args.relative is not None):
                uncut = library.search(top=1, **query)  # what the cut-offs removed, to say so
                best = uncut[0].score if uncut else None
        except MediaError as exc:
            raise UsageError(_unreadable_query(args, exc)) from None
        unembedded = counts["items"] - len(library.vectors)
    finally:
        library.close()
    for warning in library.warnings:
        note(warning)
    if unembedded > 0:
        print(
            f"clifs: {unembedded} indexed items have no vectors for {library.model.display_name} yet "
            "(indexed with another model); run `clifs index` on their folders to embed them.",
            file=sys.stderr,
        )
    if not hits:
        note(_no_results(args, best))
    from clifs.engine.models.languages import unreadable_query

    if unreadable := unreadable_query(library.model, args.text):
        note(unreadable)
    if library.fallback_reason:
        print(f"clifs: {library.fallback_reason}", file=sys.stderr)
    if args.json:
        print_json([h.to_json() for h in hits])
        return 0
    if library.fallback_reason:
        print(f"(model: {library.model.display_name})")
    for h in hits:
        where = f" @ {format_timestamp(h.timestamp)}" if h.timestamp is not None else ""
        where += " (sound)" if h.matched == "sound" and h.kind == "video" else ""
        where += f"  [text: {printable(h.text)}]" if h.text else ""
        taken = f"  [{format_taken(h.taken, h.taken_from)}]" if args.sort == "taken" else ""
        extra = ""
        if h.same_shot:
            extra += "  (+ " + ", ".join(printable(os.path.basename(p)) for p in h.same_shot) + ")"
        if h.duplicates:
            extra += f"  (+{len(h.duplicates)} similar)"
        print(f"{h.score:.3f}  {printable(h.path)}{where}{taken}{extra}")
    return 0


def _unreadable_query(args: argparse.Namespace, exc: Exception) -> str:
    """Which query file could not be read, and why."""
    from clifs.engine.media import kind_of
    from clifs.engine.search import SoundQueryError

    if isinstance(exc, SoundQueryError):
        return f"cannot read query sound {args.audio}: {exc}"
    hint = " (a sound: search by it with --audio)" if kind_of(args.image) == "audio" else ""
    return f"cannot read query image {args.image}: {exc}{hint}"


def format_taken(taken: str | None, source: str | None) -> str:
    if not taken:
        return "date unknown"
    return taken.replace("T", " ") + (" (file date)" if source == "mtime" else "")


def _no_results(args: argparse.Namespace, best: float | None) -> str:
    """ "no results for 'X'", with the filters that narrowed the search and the cut-offs that emptied it."""
    asked = [f"'{args.text}'"] if args.text else []
    if args.image:
        asked.append(f"the image {args.image}")
    if args.audio:
        asked.append(f"the sound {args.audio}")
    message = "no results for " + " + ".join(asked)
    if args.kind:
        message += " among sounds" if args.kind == "audio" else f" among {args.kind}s"
    if args.folder:
        message += f" under {args.folder}"
    if args.camera:
        message += f" from a camera named like '{args.camera}'"
    if args.taken_after or args.taken_before:
        span = " ".join(
            part
            for part in (
                f"on or after {args.taken_after}" if args.taken_after else "",
                "and" if args.taken_after and args.taken_before else "",
                f"before {args.taken_before}" if args.taken_before else "",
            )
            if part
        )
        message += f" taken {span}"
    if best is not None:
        cuts = (("--min-score", args.min_score), ("--relative", args.relative))
        active = " and ".join(f"{name} {value:g}" for name, value in cuts if value is not None)
        message += f": the best score, {best:.3f}, is cut off by {active}"
    elif args.folder or args.kind or args.camera or args.taken_after or args.taken_before:
        message += " (no indexed file matches these filters)"
    return message
