"""The list of folders clifs keeps indexed, stored in the catalog.

Folders may nest (``~/Pictures`` and ``~/Pictures/2024``); forgetting one keeps
the files another listed folder still covers. Light on imports: `clifs folders`
runs this without loading a model.
"""

from __future__ import annotations

import os

from sqlalchemy import delete

from clifs.engine.catalog import Catalog, Folder


def normalise(path: str) -> str:
    """The absolute spelling the catalog stores (symlinks kept, as the scanner walks them)."""
    return os.path.abspath(os.path.expanduser(path))


def is_under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def forget_folder(catalog: Catalog, path: str) -> int:
    """Take ``path`` off the list and its files out of the catalog; returns the files removed.

    Files come out first, then the row, so an interrupted removal is simply done again.
    """
    others = [f.path for f in catalog.folders() if f.path != path]
    gone = [p for p in catalog.paths_under(path) if not any(is_under(p, o) for o in others)]
    removed = catalog.delete_files(gone)
    with catalog.write() as (s, _):
        s.execute(delete(Folder).where(Folder.path == path))
    return removed
