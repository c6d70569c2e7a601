"""Nothing loads that a command does not need: an unchanged folder is re-indexed without a model, and
the listing commands never load one."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import clifs_env, run_clifs, write_single_objects

#: Runs one `clifs` command in this process, then says which heavy modules it imported.
RUN_AND_REPORT = """
import json, sys
from clifs.cli.main import main
rc = main(sys.argv[1:])
heavy = ["torch", "open_clip", "torchvision", "timm", "transformers"]
decoders = ["pillow_heif", "av", "rawpy", "cv2", "sqlalchemy.orm"]  # and the ORM: not needed to read
print(json.dumps({"rc": rc, "imported": [m for m in heavy if m in sys.modules],
                  "also": [m for m in decoders if m in sys.modules], "sqlalchemy": "sqlalchemy" in sys.modules}),
      file=sys.stderr)
"""


def run_and_report(home, *args: str) -> tuple[dict, str]:
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_REPORT, *args], env=clifs_env(home), capture_output=True, text=True, timeout=300
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report, done.stdout


def test_an_unchanged_folder_is_reindexed_without_loading_a_model(clifs_home, tmp_path):
    photos = tmp_path / "photos"
    write_single_objects(photos)
    first = run_clifs(clifs_home, "index", "--json", "--no-progress", str(photos))
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)[0]["encoded_images"] == 24

    report, out = run_and_report(clifs_home, "index", "--json", "--no-progress", str(photos))
    summary = json.loads(out)[0]
    assert (report["rc"], report["imported"]) == (0, [])
    assert summary["unchanged"] == 24 and summary["indexed"] == 0 and summary["encoded_images"] == 0
    assert summary["model"] == "shapes-vit-tiny (test model)"


def test_listing_commands_never_load_a_model(clifs_home, tmp_path):
    photos = tmp_path / "photos"
    write_single_objects(photos)
    assert run_clifs(clifs_home, "index", "--no-progress", str(photos)).returncode == 0
    for command in (["list", "--json"], ["status", "--json"], ["folders", "list"]):
        report, _ = run_and_report(clifs_home, *command)
        assert (report["rc"], report["imported"], report["also"]) == (0, [], []), command


def test_labels_on_the_cpu_runtime_import_neither_torch_nor_open_clip(clifs_home, tmp_path):
    photos = tmp_path / "photos"
    paths = write_single_objects(photos)
    assert run_clifs(clifs_home, "index", "--no-progress", str(photos)).returncode == 0  # exports the model
    report, out = run_and_report(clifs_home, "label", str(paths["red circle"]), "--vocab", "shapes", "--json")
    assert (report["rc"], report["imported"]) == (0, [])
    assert json.loads(out)[0]["label"] == "red circle"


def test_a_text_search_imports_no_model_framework_no_decoder_and_no_sqlalchemy(clifs_home, tmp_path):
    """A cold `clifs search "text"` pays only for what it runs: libheif's import alone was ~50 ms of it,
    SQLAlchemy's ~0.3 s (it reads through clifs.engine.catalog_reads)."""
    photos = tmp_path / "photos"
    write_single_objects(photos)
    assert run_clifs(clifs_home, "index", "--no-progress", str(photos)).returncode == 0
    report, out = run_and_report(clifs_home, "search", "a red circle", "--top", "1", "--json")
    assert report == {"rc": 0, "imported": [], "also": [], "sqlalchemy": False}
    assert "red_circle" in json.loads(out)[0]["path"]
