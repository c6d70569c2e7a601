"""Handing files to the desktop: open with the default application, show in the file manager, copy the path.

``OpenUrl`` is injectable so tests (and embedders) can see what would be opened
without leaving the program.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QDir, QProcess, QUrl
from PySide6.QtGui import QGuiApplication

OpenUrl = Callable[[QUrl], bool]


def open_file(path: str, open_url: OpenUrl) -> bool:
    return open_url(QUrl.fromLocalFile(path))


def reveal_in_folder(path: str, open_url: OpenUrl) -> bool:
    """Show the file selected in its folder where the platform can; else open the folder."""
    if sys.platform == "darwin":
        return QProcess.startDetached("open", ["-R", path])[0]
    if sys.platform == "win32":
        return QProcess.startDetached("explorer", [f"/select,{QDir.toNativeSeparators(path)}"])[0]
    return open_url(QUrl.fromLocalFile(str(Path(path).parent)))


def copy_path(path: str) -> None:
    QGuiApplication.clipboard().setText(path)
