"""One spelling of a path (clifs/engine/paths.py): a folder indexed through a symlink is the same folder
as its real name, for filters, image queries and re-indexing."""

from __future__ import annotations

import json
import os

from clifs.engine.paths import canonical_file, canonical_folder, is_under
from tests.conftest import run_clifs, write_single_objects


def _json(proc) -> list:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_rule_resolves_folders_and_keeps_a_linked_files_own_name(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.png").write_bytes(b"x")
    (tmp_path / "link").symlink_to(real)
    (real / "alias.png").symlink_to(real / "a.png")
    assert canonical_folder(tmp_path / "link") == str(real.resolve())
    assert canonical_file(tmp_path / "link" / "a.png") == str(real.resolve() / "a.png")
    assert canonical_file(real / "alias.png") == str(real.resolve() / "alias.png")  # not resolved to a.png
    assert is_under(str(real / "x" / "y.png"), str(real)) and not is_under(str(tmp_path / "realx.png"), str(real))


def test_a_folder_indexed_through_a_symlink_is_found_by_either_spelling(tmp_path):
    real = tmp_path / "real"
    singles = write_single_objects(real / "photos")
    link = tmp_path / "link"
    link.symlink_to(real)
    home = tmp_path / "home"
    summary = _json(run_clifs(home, "index", str(link / "photos"), "--json", "--no-progress"))[0]
    assert summary["indexed"] == len(singles)

    stored = {h["path"] for h in _json(run_clifs(home, "list", "--json"))}
    assert stored == {canonical_file(p) for p in singles.values()}

    by_link = _json(run_clifs(home, "search", "a red circle", "--in", str(link / "photos"), "--top", "50", "--json"))
    by_real = _json(run_clifs(home, "search", "a red circle", "--in", str(real / "photos"), "--top", "50", "--json"))
    assert len(by_link) == len(singles)
    assert [h["path"] for h in by_link] == [h["path"] for h in by_real]
    assert by_link[0]["path"] == canonical_file(singles["red circle"])

    query = link / "photos" / os.path.basename(singles["blue triangle"])
    hits = _json(run_clifs(home, "search", "--image", str(query), "--top", "1", "--json"))
    assert hits[0]["path"] == canonical_file(singles["blue triangle"])
    assert hits[0]["score"] > 0.999  # its own stored vector

    again = _json(run_clifs(home, "index", str(real / "photos"), "--json", "--no-progress"))[0]
    assert (again["indexed"], again["unchanged"], again["removed"]) == (0, len(singles), 0)
