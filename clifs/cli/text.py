"""`clifs text PATH`: the words clifs read in one file; and the OCR pass of `clifs index`."""

from __future__ import annotations

import argparse
import sys

from clifs.cli.common import add_json_option, note, print_json, printable, require_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("text", help="print the words read in one file (from the catalog, or read now)")
    p.add_argument("path", metavar="PATH", help="an image or video file")
    p.add_argument(
        "--now",
        action="store_true",
        help="read the file now instead of showing what the indexer stored (works for files not indexed)",
    )
    add_json_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clifs.cli.common import open_library
    from clifs.engine.errors import UsageError
    from clifs.engine.media import kind_of
    from clifs.engine.paths import canonical_file

    require_file(args.path, "file")
    if kind_of(args.path) == "audio":
        raise UsageError(f"{args.path} is a sound: it has no pictures, so no words to read")
    path = canonical_file(args.path)
    library = open_library(args, need_model=False)
    try:
        state, items = library.catalog.ocr_state(path)
        if items and state is None and not args.now:
            note(f"the text of {path} has not been read yet (the indexer reads it after indexing); reading it now")
        if args.now or state is None:
            entries, where = _read_now(library, path, kind_of(path), items), "read now"
        else:
            lines = library.catalog.ocr_lines_of(i for i, _ in items)
            entries = [(ts, lines.get(i, [])) for i, ts in items]
            where = "stored"
    finally:
        library.close()
    if where == "stored" and state.status == "failed":
        reason = state.error or "unknown reason"
        if args.json:
            print_json([{"path": path, "status": "failed", "error": reason, "engine": state.engine, "lines": []}])
        else:
            print(f"{printable(path)}: text could not be read: {printable(reason)}")
        return 0
    lines_out = [
        {"text": t, "confidence": round(c, 4), "box": b, **({"timestamp": ts} if ts is not None else {})}
        for ts, lines in entries
        for t, c, b in lines
    ]
    if args.json:
        print_json(
            [
                {
                    "path": path,
                    "status": "ok",
                    "engine": state.engine if where == "stored" else library.ocr.version,
                    "source": where,
                    "lines": lines_out,
                }
            ]
        )
        return 0
    if not lines_out:
        note(f"no text found in {path} ({where})")
        return 0
    for line in lines_out:
        at = f"[{_clock(line['timestamp'])}] " if "timestamp" in line else ""
        print(f"{at}{printable(line['text'])}")
    return 0


def _read_now(library, path: str, kind: str | None, items: list) -> list:
    from clifs.engine.errors import UsageError
    from clifs.engine.media import MediaError
    from clifs.engine.ocr import OcrUnavailable
    from clifs.engine.video import sample_frames

    try:
        if kind == "video":
            if not items:  # not indexed: the frames the indexer would keep
                video = sample_frames(path)
                return [(t, _tuples(library.ocr.read(im, (video.width, video.height)))) for t, im in video.frames]
            return [
                (
                    ts,
                    _tuples(
                        library.ocr.read_file(path, "video", [(i, ts)], library.settings.max_image_pixels)[0].lines
                    ),
                )
                for i, ts in items
            ]
        results = library.ocr.read_file(path, "image", [(0, None)], library.settings.max_image_pixels)
        return [(None, _tuples(results[0].lines))]
    except MediaError as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    except OcrUnavailable as exc:
        raise UsageError(str(exc)) from None


def _tuples(lines) -> list:
    return [(line.text, line.confidence, line.box) for line in lines]


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


# -- the OCR pass of `clifs index` -----------------------------------------------------------------
def add_ocr_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-ocr", action="store_true", help="skip the second pass that reads the words in pictures (OCR)"
    )


def run_ocr_pass(library, roots: list[str], args: argparse.Namespace):
    """The OCR pass over ``roots`` with its own progress bar; None when switched off."""
    if getattr(args, "no_ocr", False) or not library.settings.ocr:
        return None
    from tqdm import tqdm

    from indexer.ocr_pass import OcrPass

    bar = tqdm(
        unit="file",
        desc="reading text",
        disable=args.no_progress or None,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    ocr = OcrPass(library, on_file=lambda path, error, lines: bar.update(1))
    try:
        bar.total = ocr.todo_count(roots)
        bar.refresh()
        return ocr.run(roots)
    finally:
        ocr.close()
        bar.close()


def ocr_summary(report) -> dict | None:
    if report is None:
        return None
    return {
        "read": report.read,
        "with_text": report.with_text,
        "lines": report.lines,
        "failed": [{"path": p, "error": e} for p, e in report.failed],
        "seconds": round(report.seconds, 3),
        **({"unavailable": report.unavailable} if report.unavailable else {}),
    }


def print_ocr_report(report, engine_version: str) -> None:
    if report is None:
        return
    if report.unavailable:
        note(f"the words in pictures were not read: {report.unavailable}")
        return
    print(
        f"read text in {report.read} files ({report.with_text} with text, {report.lines} lines), "
        f"failed {len(report.failed)} in {report.seconds:.1f} s [{engine_version}]"
    )
    for path, error in report.failed:
        print(f"  text failed: {printable(path)}: {printable(error)}")


__all__ = ["register", "run", "add_ocr_option", "run_ocr_pass", "ocr_summary", "print_ocr_report"]
