"""Shared by the indexer tests: the folder's truth, whether catalog + FAISS agree with it, polling with a deadline."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import faiss

from clifs.engine.library import Library
from devkit.shapes import HELD_OUT_SEED_BASE, render_scene, scene_rng

IMAGE_SUFFIXES = (".png", ".jpg")


def write_image(path: Path, seed: int, size: int = 32) -> None:
    """A small shapes-world scene (held-out seeds); different seeds give different pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    render_scene(scene_rng(HELD_OUT_SEED_BASE + 5000 + seed), size).image.save(path)


def media_on_disk(folder: Path) -> set[str]:
    """What the catalog should hold: images under ``folder``, minus hidden and node_modules paths."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "node_modules"]
        found |= {os.path.join(dirpath, f) for f in filenames if not f.startswith(".") and f.endswith(IMAGE_SUFFIXES)}
    return found


def item_ids_by_path(library: Library) -> dict[str, list[int]]:
    return {f.path: library.catalog.item_ids_of_path(f.path) for f, _ in library.catalog.list_files()}


def disagreements(home: Path, folder: Path, encoder) -> list[str]:
    """How the catalog and the vector index differ from the folder (empty when they agree).

    Opens the library afresh, as a restarted indexer or a search would: the saved FAISS file,
    patched from the catalog. Checks every file is indexed exactly once (one ok row, one item),
    FAISS ids == catalog item ids, and no search result points at a file that is not there.
    """
    library = Library(home, encoder=encoder)
    try:
        disk = media_on_disk(folder)
        rows = {f.path: (f.status, n, f.error) for f, n in library.catalog.list_files()}
        problems = []
        if set(rows) != disk:
            problems.append(f"only in catalog: {sorted(set(rows) - disk)}; only on disk: {sorted(disk - set(rows))}")
        problems += [f"{p}: status {s}, {n} items, error {e}" for p, (s, n, e) in rows.items() if s != "ok" or n != 1]
        in_faiss = set(faiss.vector_to_array(library.vectors.index.id_map).tolist())
        in_catalog = set(library.catalog.item_ids_matching().tolist())
        if in_faiss != in_catalog:
            problems.append(
                f"FAISS-only ids {sorted(in_faiss - in_catalog)}; catalog-only {sorted(in_catalog - in_faiss)}"
            )
        if disk:
            ghosts = [h.path for h in library.search("a red circle", top=len(disk)) if h.path not in disk]
            if ghosts:
                problems.append(f"ghost search results: {ghosts}")
        return problems
    finally:
        library.close()  # every connection it opened, so the last one to close takes SQLite's -wal with it


def wait_until(check: Callable[[], bool], timeout: float, explain: Callable[[], object] = lambda: "") -> float:
    """Poll ``check`` until it holds; returns the seconds it took, fails with ``explain()`` at the deadline."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not reached within {timeout:.0f} s: {explain()}")
        time.sleep(0.05)
    return time.monotonic() - start


def wait_agreement(home: Path, folder: Path, encoder, timeout: float) -> float:
    """Seconds until catalog, FAISS and folder agree (see ``disagreements``)."""
    return wait_until(
        lambda: not disagreements(home, folder, encoder), timeout, lambda: disagreements(home, folder, encoder)
    )
