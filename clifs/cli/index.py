"""`clifs index PATH...`: one-shot indexing of folders."""

from __future__ import annotations

import argparse
import json
import os
import sys

from clifs.cli.common import (
    add_json_option,
    add_model_option,
    hold_indexer_lock,
    number,
    open_library,
    print_json,
    printable,
)
from clifs.cli.main import UsageError
from clifs.cli.text import add_ocr_option, ocr_summary, print_ocr_report, run_ocr_pass


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="index folders once (new, changed, moved and deleted files)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="folders to index")
    p.add_argument("--batch-size", type=number(1, integer=True), help="images per model batch")
    p.add_argument("--workers", type=number(1, integer=True), help="decode threads")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="decode and embed on a Ray cluster (host:port, ray://host:10001, auto; local: a Ray on this "
        "machine); the catalog is written here. Needs clifs[cluster] and the folders at the same paths on the workers",
    )
    p.add_argument(
        "--cluster-actors",
        type=number(1, integer=True),
        metavar="N",
        help="model actors on the cluster (default: one per GPU, else one per 4 CPUs)",
    )
    add_ocr_option(p)
    add_model_option(p)
    add_json_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    lock = hold_indexer_lock()  # at once, before the slow imports; released when this process exits
    from tqdm import tqdm

    from clifs.engine.paths import canonical_folder
    from indexer.disk_space import free_bytes, is_disk_full
    from indexer.pipeline import Pipeline, audio_not_indexed

    roots = [canonical_folder(p) for p in args.paths]
    for root in roots:
        if not os.path.isdir(root):
            raise UsageError(f"not a folder: {root}")
    cluster = join_cluster(args) if args.cluster else None
    library = open_library(args)
    if library.fallback_reason:
        print(f"clifs: {library.fallback_reason}", file=sys.stderr)
    bar = tqdm(unit="file", disable=args.no_progress or None, file=sys.stderr, dynamic_ncols=True)
    options = {"batch_size": args.batch_size, "workers": args.workers, "on_file": lambda f, err: bar.update(1)}
    if cluster is not None:
        from indexer.cluster import ClusterPipeline

        pipeline = ClusterPipeline(library, cluster, **options)
    else:
        pipeline = Pipeline(library, **options)
    try:
        scan = pipeline.scan(roots)
        bar.total = len(scan.to_index)
        bar.refresh()
        report = pipeline.index_folders(roots, scan)
        ocr = run_ocr_pass(library, roots, args)  # the second pass: the words in pictures
        store_skipped(library.catalog, {root: dict(scan.skipped_in(root)) for root in roots})
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        free = free_bytes(library.settings.home)
        raise UsageError(
            f"the disk holding the clifs home {library.settings.home} is full"
            + (f" ({free // (1 << 20)} MB free)" if free is not None else "")
            + ": every file committed so far is kept; free some space and run `clifs index` again for the rest"
        ) from None
    finally:
        bar.close()
        library.close()
        lock.release()
        if cluster is not None:
            from indexer.cluster import disconnect

            disconnect()
    encoder = library.loaded_encoder  # None when nothing needed encoding: no model was loaded
    encoded = encoder.images_encoded if encoder is not None else 0
    if cluster is not None:
        encoded += pipeline.images_encoded  # on the cluster's workers
    model_name = library.model.display_name
    summary = {
        "indexed": report.added,
        "moved": report.moved,
        "removed": report.removed,
        "unchanged": report.unchanged,
        "items": report.items,
        "encoded_images": encoded,
        "failed": [{"path": p, "error": e} for p, e in report.failed],
        "seconds": round(report.seconds, 3),
        "ocr": ocr_summary(ocr),
        "model": model_name,
        # files of types clifs does not read, by extension: passed over, neither indexed nor failed
        "skipped": dict(sorted(scan.skipped.items())),
        "described": scan.described,
        # audio files passed over because the model has no audio tower (not failures)
        "audio_not_indexed": report.audio_unindexed,
        # videos indexed by their frames alone: their soundtrack could not be read
        "soundtracks_not_indexed": [{"path": p, "error": e} for p, e in report.soundtracks_unread],
    }
    if report.audio_unindexed:
        print(audio_not_indexed(report.audio_unindexed, library.audio_unavailable), file=sys.stderr)
    if args.json:
        print_json([summary])
        return 0
    print(
        f"indexed {report.added} files ({report.items} items), moved {report.moved}, removed {report.removed}, "
        f"unchanged {report.unchanged}, failed {len(report.failed)} in {report.seconds:.1f} s "
        f"[{model_name}; {encoded} images encoded]"
    )
    for path, error in report.failed:
        print(f"  failed: {printable(path)}: {printable(error)}")
    for path, note in report.soundtracks_unread:
        print(f"  frames only: {printable(path)}: {printable(note)}")
    print_ocr_report(ocr, library.ocr.version)
    if scan.described:
        print(f"read the date, camera and place of {scan.described} files indexed before clifs kept them")
    if scan.skipped:
        from clifs.cli.listing import format_skipped

        print(format_skipped(dict(scan.skipped)) + " (see `clifs list --skipped`)")
    return 0


def join_cluster(args: argparse.Namespace):
    """Connect to the Ray cluster of ``--cluster``; its actor plan (indexer.cluster.ActorPlan), or exit 2."""
    try:
        from indexer.cluster import ActorPlan, ClusterUnavailable, connect
    except ImportError as exc:  # ray itself is imported inside connect(); this is a broken install
        raise UsageError(f"--cluster is unavailable: {exc}") from None
    try:
        return ActorPlan.for_resources(connect(args.cluster), args.cluster_actors)
    except ClusterUnavailable as exc:
        raise UsageError(str(exc)) from None


SKIPPED_KEY = "skipped_extensions"


def store_skipped(catalog, by_root: dict[str, dict[str, int]]) -> None:
    """Keep what this run passed over per folder (for `clifs list --skipped`), replacing older counts."""
    if catalog.read_only:
        return
    stored = stored_skipped(catalog)
    stored.update(by_root)
    catalog.set_meta(SKIPPED_KEY, json.dumps(stored, sort_keys=True))


def stored_skipped(catalog) -> dict[str, dict[str, int]]:
    raw = catalog.get_meta(SKIPPED_KEY)
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
