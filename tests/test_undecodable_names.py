"""File names that are not valid UTF-8 (old zip archives, Samba shares) index like any other, are
listed exactly in JSON and readably in text, and never stop the rest of their folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import run_clifs, write_single_objects


def _json(proc) -> list:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_name_that_is_not_utf8_indexes_with_its_whole_folder(tmp_path):
    photos = tmp_path / "photos"
    singles = write_single_objects(photos)
    odd = [os.fsencode(photos) + b"/bad\xff.png", os.fsencode(photos) + b"/latin1-caf\xe9.png"]
    for name, source in zip(odd, [singles["red circle"], singles["blue square"]]):
        with open(name, "wb") as out:
            out.write(Path(source).read_bytes())
    home = tmp_path / "home"
    summary = _json(run_clifs(home, "index", str(photos), "--json", "--no-progress"))[0]
    assert summary["indexed"] == len(singles) + 2 and summary["failed"] == []

    listed = {os.fsencode(e["path"]) for e in _json(run_clifs(home, "list", "--json"))}
    assert set(odd) <= listed and len(listed) == len(singles) + 2

    text = run_clifs(home, "list")
    assert text.returncode == 0, text.stderr
    assert "bad\\xff.png" in text.stdout and "latin1-caf\\xe9.png" in text.stdout

    # bad\xff.png is a byte-for-byte copy of the red circle: --all-copies lists both, not one "+1 similar" group.
    hits = _json(run_clifs(home, "search", "a red circle", "--top", "2", "--all-copies", "--json"))
    assert {os.fsencode(h["path"]) for h in hits} == {odd[0], os.fsencode(singles["red circle"])}

    again = _json(run_clifs(home, "index", str(photos), "--json", "--no-progress"))[0]
    assert (again["indexed"], again["unchanged"]) == (0, len(singles) + 2)
