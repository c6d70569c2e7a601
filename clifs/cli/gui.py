"""`clifs gui [FOLDER...]`: open the desktop window (and index the folders given)."""

from __future__ import annotations

import argparse
import os
import sys

from clifs.cli.common import add_model_option
from clifs.cli.main import UsageError
from clifs.engine.paths import canonical_folder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="open the desktop window")
    p.add_argument("folders", nargs="*", metavar="FOLDER", help="folders to add to the index")
    add_model_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    folders = [canonical_folder(p) for p in args.folders]
    for folder in folders:
        if not os.path.isdir(folder):
            raise UsageError(f"not a folder: {folder}")
    if _no_display():
        raise UsageError(
            "no display to open a window on (DISPLAY and WAYLAND_DISPLAY are unset); "
            "use `clifs search` here, or set QT_QPA_PLATFORM=offscreen to run without showing anything"
        )
    from clifs.engine.config import Settings
    from gui.app import run as run_gui

    settings = Settings.load()
    if args.model:
        settings.model = args.model
    return run_gui(settings, folders)


def _no_display() -> bool:
    """On Linux without X11 or Wayland, Qt would abort the process instead of raising."""
    return (
        sys.platform.startswith("linux")
        and not os.environ.get("QT_QPA_PLATFORM")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    )
