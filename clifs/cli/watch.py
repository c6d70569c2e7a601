"""`clifs watch`, `clifs folders`, `clifs status`: the live indexer and the folders it keeps indexed.

`watch` runs the indexer service in the foreground (Ctrl+C or SIGTERM stop it
cleanly). `folders` edits the list in the catalog; a running indexer picks the
edit up within seconds. `status` reads what the indexer last wrote and never
takes its lock, so it answers while one runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading
import time

from clifs.cli.common import (
    add_json_option,
    add_model_option,
    hold_indexer_lock,
    note,
    number,
    open_library,
    print_json,
    printable,
)
from clifs.cli.main import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("watch", help="index the folder list, then keep it indexed as files change")
    p.add_argument("paths", nargs="*", metavar="PATH", help="folders to add to the list first")
    p.add_argument(
        "--debounce",
        type=number(0.0, 3600.0, meaning="seconds of quiet before a changed file is read"),
        default=1.0,
        metavar="SECONDS",
        help="quiet time before a file is read (0-3600, default 1)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress line")
    add_model_option(p)
    p.set_defaults(func=run_watch)

    p = sub.add_parser("folders", help="the folders clifs keeps indexed (add, remove, list, pause, resume)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (
        ("add", "add folders to the list"),
        ("remove", "take folders off the list and their files out of the index"),
        ("pause", "stop watching folders (their files stay searchable)"),
        ("resume", "watch paused folders again"),
    ):
        a = actions.add_parser(name, help=text)
        a.add_argument("paths", nargs="+", metavar="PATH")
        add_model_option(a)
        a.set_defaults(func=run_folders)
    a = actions.add_parser("list", help="show the list")
    add_model_option(a)
    add_json_option(a)
    a.set_defaults(func=run_folders, paths=[])

    p = sub.add_parser("status", help="what the indexer is doing (works while it runs)")
    add_model_option(p)
    add_json_option(p)
    p.set_defaults(func=run_status)


# -- watch ----------------------------------------------------------------------------------------
class ProgressLine:
    """The service's status on one line: redrawn in place on a terminal, a line every few seconds otherwise."""

    def __init__(self, enabled: bool, stream=sys.stderr):
        self.stream = stream
        self.enabled = enabled
        self.tty = stream.isatty()
        self._last_state = ""
        self._last_print = 0.0

    def __call__(self, status) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not self.tty and status.state == self._last_state and now - self._last_print < 5.0:
            return
        self._last_state, self._last_print = status.state, now
        line = (
            f"{status.state}: {status.done} done, {status.queued} queued, {status.failed} failed, "
            f"{status.rate:.1f} files/s"
        )
        if status.reading_text:
            line = (
                f"reading text: {status.text_done} read, {status.text_queued} queued, {status.text_failed} failed, "
                f"{status.text_rate:.1f} files/s"
            )
        if status.current:
            line += f" - {printable(os.path.basename(status.current))}"
        if self.tty:
            width = shutil.get_terminal_size().columns - 1
            self.stream.write("\r" + line[:width].ljust(width))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")


def run_watch(args: argparse.Namespace) -> int:
    from clifs.engine.paths import canonical_folder

    roots = [canonical_folder(p) for p in args.paths]
    for root in roots:
        if not os.path.isdir(root):
            raise UsageError(f"not a folder: {root}")
    lock = hold_indexer_lock()
    library = None
    try:
        library = open_library(args)
        for root in roots:
            library.catalog.add_folder(root)
        if not library.catalog.folders():
            raise UsageError("no folders to watch: give PATH, or add some with `clifs folders add PATH`")
        if library.fallback_reason:
            print(f"clifs: {library.fallback_reason}", file=sys.stderr)
        return _serve(library, lock, args)
    finally:
        if library is not None:
            library.close()
        lock.release()


def _serve(library, lock, args: argparse.Namespace) -> int:
    from indexer.service import IndexerService

    service = IndexerService(library, watch=True, debounce_seconds=args.debounce, lock=lock)
    progress = ProgressLine(enabled=not args.no_progress)
    service.add_listener(progress)
    missing: set[str] = set()

    def folder_notices(status) -> None:
        """A line when a watched folder goes missing (an unplugged drive) or comes back."""
        from indexer.status import missing_folder_line

        now = set(status.missing_folders)
        lines = [missing_folder_line(p) for p in sorted(now - missing)]
        lines += [f"folder back: {p}" for p in sorted(missing - now)]
        missing.clear()
        missing.update(now)
        if lines and progress.enabled and progress.tty:
            sys.stderr.write("\n")  # off the line the progress redraws
        for line in lines:
            print(f"clifs: {line}", file=sys.stderr)

    service.add_listener(folder_notices)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    service.start()
    try:
        while not stop.wait(0.5) and service.status().state != "stopped":
            pass
    except KeyboardInterrupt:
        pass
    service.stop()
    progress.close()
    status = service.status()
    crashed = not stop.is_set() and status.state == "stopped" and status.recent_errors
    if crashed:
        note(status.recent_errors[-1][1])
        return 1
    return 0


# -- folders --------------------------------------------------------------------------------------
def run_folders(args: argparse.Namespace) -> int:
    from clifs.engine.catalog import Catalog
    from clifs.engine.config import Settings
    from clifs.engine.paths import canonical_folder

    catalog = Catalog(Settings.load().catalog_path)
    try:
        listed = {f.path for f in catalog.folders()}
        paths = [canonical_folder(p) for p in args.paths]
        if args.action == "add":
            for path in paths:
                if not os.path.isdir(path):
                    raise UsageError(f"not a folder: {path}")
            for path in paths:
                catalog.add_folder(path)
        elif args.action in ("remove", "pause", "resume"):
            for path in paths:
                if path not in listed:
                    raise UsageError(f"not in the folder list: {path} (see `clifs folders list`)")
            for path in paths:
                if args.action == "remove":
                    removed = catalog.forget_folder(path)
                    print(f"removed {printable(path)} ({removed} files left the index)")
                else:
                    catalog.set_folder_paused(path, args.action == "pause")
        else:
            rows = [
                {"path": f.path, "paused": bool(f.paused), "exists": os.path.isdir(f.path)} for f in catalog.folders()
            ]
            if not rows:
                note("no folders in the list yet: add one with `clifs folders add PATH`")
            if args.json:
                print_json(rows)
            for r in rows if not args.json else []:
                notes = [n for n, on in (("paused", r["paused"]), ("missing", not r["exists"])) if on]
                print(printable(r["path"]) + (f"  ({', '.join(notes)})" if notes else ""))
        return 0
    finally:
        catalog.close()


# -- status ---------------------------------------------------------------------------------------
def run_status(args: argparse.Namespace) -> int:
    from clifs.engine.catalog import Catalog
    from clifs.engine.config import Settings
    from indexer.lock import holder
    from indexer.status import DISK_FULL_STATE, missing_folder_line, read_status_file

    settings = Settings.load()
    pid = holder(settings.home)
    last = read_status_file(settings.home) or {}
    running = pid is not None and last.get("pid") == pid
    catalog = Catalog(settings.catalog_path)
    try:
        counts = catalog.counts()
        folders = [{"path": f.path, "paused": bool(f.paused)} for f in catalog.folders()]
    finally:
        catalog.close()
    out = {
        "running": pid is not None,
        "pid": pid,
        "state": last.get("state", "idle") if running else ("starting" if pid else "stopped"),
        "queued": last.get("queued", 0) if running else 0,
        "done": last.get("done", 0),
        "failed": last.get("failed", 0),
        "rate": last.get("rate", 0.0) if running else 0.0,
        "current": last.get("current") if running else None,
        "paused": bool(last.get("paused")) if running else False,
        "recent_errors": [list(e) for e in last.get("recent_errors", [])],
        # the OCR pass (the words in pictures): its own progress
        "reading_text": bool(last.get("reading_text")) if running else False,
        "text_queued": last.get("text_queued", 0) if running else 0,
        "text_done": last.get("text_done", 0),
        "text_failed": last.get("text_failed", 0),
        "text_rate": last.get("text_rate", 0.0) if running else 0.0,
        "model": last.get("model"),
        "updated": last.get("updated"),
        "catalog": counts,
        "folders": folders,
        # Listed, active folders not on disk (results kept): as the running indexer saw them, else as seen now.
        "missing_folders": list(last.get("missing_folders", []))
        if running
        else [f["path"] for f in folders if not f["paused"] and not os.path.isdir(f["path"])],
    }
    if args.json:
        print_json([out])
        return 0
    if out["running"]:
        print(
            f"indexer: running (pid {pid}), {out['state']}: {out['done']} done, {out['queued']} queued, "
            f"{out['failed']} failed, {out['rate']:.1f} files/s"
        )
        if out["current"]:
            print(f"  current: {printable(out['current'])}")
        if out["text_queued"] or out["reading_text"]:
            print(
                f"  reading text: {out['text_done']} read, {out['text_queued']} queued, {out['text_failed']} failed, "
                f"{out['text_rate']:.1f} files/s"
            )
        if str(out["state"]).startswith(DISK_FULL_STATE):
            print(f"  writing waits for free space on the disk holding {settings.home}; nothing is lost")
    else:
        print("indexer: not running")
    print(f"catalog: {counts['files']} files indexed ({counts['items']} items), {counts['failed']} failed")
    for f in folders:
        print(f"  folder: {printable(f['path'])}" + ("  (paused)" if f["paused"] else ""))
    for path in out["missing_folders"]:
        print(f"  {missing_folder_line(path)}")
    for path, reason in out["recent_errors"][-10:]:
        print(f"  error: {printable(path)}: {printable(reason)}")
    return 0
