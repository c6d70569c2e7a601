"""Walk folders and diff them against the catalog: new, changed, unchanged, deleted.

Opens nothing: a file whose (size, mtime) matches its catalog row is skipped
without reading a byte. Symlinked folders are not followed (no loops); a
symlinked file is indexed under its own path.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections import Counter
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
    #: Files of types clifs does not read, per scanned root, by extension (".txt", ".xmp"; "" for none):
    #: passed over, neither indexed nor failed.
    skipped_by_root: dict[str, Counter] = field(default_factory=dict)
    described: int = 0  # indexed files whose metadata was read for the first time (an upgraded catalog)

    def skipped_in(self, root: str) -> Counter:
        """The counter ``walk`` fills for ``root``."""
        return self.skipped_by_root.setdefault(root, Counter())

    @property
    def skipped(self) -> Counter:
        """Passed-over files of every root, by extension."""
        return sum(self.skipped_by_root.values(), Counter())


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


def walk(root: str, excludes: Iterable[str], skipped: Counter | None = None) -> Iterator[DiskFile]:
    """Media files under ``root`` (absolute paths), skipping excluded names at any depth.

    Other files are passed over; ``skipped`` (when given) counts them by lower-case extension."""
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
            if kind is None:
                if skipped is not None and _is_file(entry):
                    skipped[os.path.splitext(entry.name)[1].lower()] += 1
                continue
            found = stat_entry(entry.path, kind)
            if found:
                yield found


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


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
