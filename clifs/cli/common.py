"""Options and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        metavar="NAME|PATH",
        help="model to use (default: $CLIFS_MODEL, config.toml, else CLIP ViT-B-32 with the offline fallback)",
    )


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON array")


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, ensure_ascii=False, indent=None)
    sys.stdout.write("\n")


def open_library(args: argparse.Namespace, need_model: bool = True):
    """The Library for this run: settings from CLIFS_HOME/config, the model from --model."""
    from clifs.engine.config import Settings
    from clifs.engine.library import Library

    settings = Settings.load()
    if getattr(args, "model", None):
        settings.model = args.model
    return Library(settings, load_model=need_model)


def hold_indexer_lock():
    """Take the one-indexer-per-catalog lock before anything slow, or fail at once (exit 2) naming its holder."""
    from clifs.cli.main import UsageError
    from clifs.engine.config import Settings
    from indexer.lock import IndexerLock, LockHeld

    lock = IndexerLock(Settings.load().home)
    try:
        lock.acquire()
    except LockHeld as exc:
        raise UsageError(str(exc)) from None
    return lock
