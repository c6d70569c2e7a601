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
    missing = missing_xcb_libraries() if _uses_xcb() else []
    if missing:
        packages = " ".join(dict.fromkeys(XCB_PACKAGES.get(lib, lib) for lib in missing))
        raise UsageError(
            f"Qt's X11 (xcb) platform plugin cannot load: this system lacks {', '.join(missing)}. "
            f"Install them (Debian/Ubuntu: sudo apt-get install {packages}; "
            "Fedora: sudo dnf install xcb-util-cursor xcb-util-wm xcb-util-keysyms xcb-util-image "
            "xcb-util-renderutil libxkbcommon-x11), or run on Wayland with QT_QPA_PLATFORM=wayland"
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


#: The X11 libraries Qt 6's xcb platform plugin needs beyond libxcb itself, and the Debian/Ubuntu
#: packages that hold them (https://doc.qt.io/qt-6/linux-requirements.html).
XCB_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb.so.1": "libxcb1",
}


def _uses_xcb() -> bool:
    """Qt would pick its X11 plugin: Linux, an X display, and no platform or Wayland session chosen instead."""
    if not sys.platform.startswith("linux"):
        return False
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(":")[0] == "xcb"
    wayland = os.environ.get("WAYLAND_DISPLAY") and os.environ.get("XDG_SESSION_TYPE") == "wayland"
    return bool(os.environ.get("DISPLAY")) and not wayland


def missing_xcb_libraries() -> list[str]:
    """The libraries Qt's xcb plugin would fail to load, found before Qt aborts the process with its
    generic "could not load the Qt platform plugin" message: what ``ldd`` says its Qt library lacks,
    else which of the known ones cannot be loaded."""
    import ctypes
    import shutil
    import subprocess
    from importlib.util import find_spec

    spec = find_spec("PySide6")
    qpa = None
    if spec and spec.submodule_search_locations:
        from pathlib import Path

        found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("Qt/lib/libQt6XcbQpa.so*"))
        qpa = found[0] if found else None
    if qpa is not None and shutil.which("ldd"):
        try:
            out = subprocess.run(["ldd", str(qpa)], capture_output=True, text=True, timeout=10).stdout
            return [line.split()[0] for line in out.splitlines() if "not found" in line]
        except (OSError, subprocess.SubprocessError):
            pass
    missing = []
    for lib in XCB_PACKAGES:
        try:
            ctypes.CDLL(lib)
        except OSError:
            missing.append(lib)
    return missing
