"""Walk folders and diff them against the catalog: new, changed, unchanged, deleted.

Opens nothing: a file whose (size, mtime) matches its catalog row is skipped
without reading a byte. Symlinked folders are not followed (no loops); a
symlinked file is indexed under its own path.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from clifs.engine.catalog import FileState
from clifs.engine.media import kind_of


@dataclass(frozen=True)
class DiskFile:
    path: str
    size: int
    mtime: float
    kind: str
    #: Why this entry cannot be indexed (a FIFO, a broken link), found without opening it.
    problem: str | None = None


@dataclass
class ScanResult:
    to_index: list[DiskFile] = field(default_factory=list)  # new or changed
    unchanged: int = 0
    deleted: list[str] = field(default_factory=list)  # in the catalog, gone from disk


def is_excluded(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def stat_entry(path: str, kind: str) -> DiskFile | None:
    """The file as the scanner sees it, without opening it; None when it vanished meanwhile."""
    try:
        st = os.stat(path)
    except OSError as exc:
        try:
            lst = os.lstat(path)
        except OSError:
            return None
        reason = "symbolic link loop" if exc.errno == 40 else "broken symbolic link"
        if not stat.S_ISLNK(lst.st_mode):
            reason = f"cannot access file: {exc.strerror}"
        return DiskFile(path, 0, lst.st_mtime, kind, reason)
    if not stat.S_ISREG(st.st_mode):
        return DiskFile(path, 0, st.st_mtime, kind, "not a regular file (a FIFO, device or socket)")
    return DiskFile(path, st.st_size, st.st_mtime, kind)


def walk(root: str, excludes: Iterable[str]) -> Iterator[DiskFile]:
    """Media files under ``root`` (absolute paths), skipping excluded names at any depth."""
    excludes = tuple(excludes)
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # unreadable or vanished folder: its files simply are not there
        for entry in entries:
            if is_excluded(entry.name, excludes):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                    continue
            except OSError:
                continue
            kind = kind_of(entry.name)
            found = stat_entry(entry.path, kind) if kind else None
            if found:
                yield found


def diff(disk: Iterable[DiskFile], known: dict[str, FileState]) -> ScanResult:
    result = ScanResult()
    seen: set[str] = set()
    for f in disk:
        seen.add(f.path)
        row = known.get(f.path)
        if row is not None and row.size == f.size and abs(row.mtime - f.mtime) < 1e-6:
            result.unchanged += 1
        else:
            result.to_index.append(f)
    result.deleted = [p for p in known if p not in seen]
    return result
