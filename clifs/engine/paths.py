"""The one rule for spelling a path in the catalog; everything that stores or looks up a path uses it.

A folder is stored resolved (``~`` expanded, symlinks followed), so a folder reached through a
link and by its real name is one folder. A file is stored as the scanner meets it: the resolved
folder it sits in plus its own name. The scanner walks from a resolved root and does not follow
symlinked folders, so every folder part of a stored path is already real; a symlinked *file*
keeps its own name (the name a person sees), which is why only the folder part is resolved.
"""

from __future__ import annotations

import os
from pathlib import Path


def canonical_folder(path: str | Path) -> str:
    """How the catalog spells a folder: absolute, symlinks resolved."""
    return os.path.realpath(os.path.expanduser(os.fspath(path)))


def canonical_file(path: str | Path) -> str:
    """How the catalog spells a file: its resolved folder, then its own name."""
    absolute = os.path.abspath(os.path.expanduser(os.fspath(path)))
    folder, name = os.path.split(absolute)
    return os.path.join(os.path.realpath(folder), name)


def is_under(path: str, folder: str) -> bool:
    """True when ``path`` is ``folder`` or inside it (both in catalog spelling)."""
    return path == folder or path.startswith(folder_prefix(folder))


def folder_prefix(folder: str) -> str:
    """The prefix every path inside ``folder`` starts with."""
    return folder.rstrip("/\\") + os.sep
