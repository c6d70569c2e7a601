"""The command line never stays silent, never accepts nonsense, and always says why (issue 11).

Real files, real FIFOs, real pseudo-terminals and the real `clifs` command in subprocesses, with
the test model. The argument checks run before any model is loaded, so most error cases run
in-process through ``clifs.cli.main.main``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading

import pytest

from clifs.cli.common import Progress, print_json, printable
from clifs.cli.main import main
from tests.conftest import TEST_MODEL, clifs_env, run_clifs, write_single_objects

NEWLINE_NAME = "new\nline\x1b[31m.png"
LABELS_MESSAGE = "--labels needs at least one label"


def _json(proc) -> list:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """Singles, a copy of the red circle whose name holds a newline and an escape, and a broken
    file whose name holds a newline; indexed once in text mode."""
    root = tmp_path_factory.mktemp("messages")
    photos = root / "photos"
    singles = write_single_objects(photos)
    shutil.copy(singles["red circle"], photos / NEWLINE_NAME)
    (photos / "bro\nken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    home = root / "home"
    indexed = run_clifs(home, "index", str(photos), "--no-progress")
    assert indexed.returncode == 0, indexed.stderr
    return home, photos, singles, indexed


@pytest.fixture
def in_process_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIFS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLIFS_MODEL", TEST_MODEL)
    return tmp_path


# -- 1. quiet nonsense ----------------------------------------------------------------------------
def test_an_empty_catalog_says_nothing_is_indexed_yet(tmp_path):
    home = tmp_path / "home"
    text = run_clifs(home, "search", "a red circle")
    assert text.returncode == 0 and text.stdout == ""
    assert "nothing indexed yet: run `clifs index FOLDER`" in text.stderr
    as_json = run_clifs(home, "search", "a red circle", "--json")
    assert as_json.returncode == 0 and as_json.stdout == "[]\n"  # the array stays plain
    assert "nothing indexed yet" in as_json.stderr
    listed = run_clifs(home, "list")
    assert listed.returncode == 0 and listed.stdout == "" and "nothing indexed yet" in listed.stderr
    assert run_clifs(home, "list", "--json").stdout == "[]\n"


def test_a_blank_query_is_a_usage_error(library, in_process_home, capsys):
    home, _, singles, _ = library
    for blank in ("   ", "", "\t\n"):
        proc = run_clifs(home, "search", blank)
        assert proc.returncode == 2 and "the TEXT query is blank" in proc.stderr, blank
        assert proc.stdout == ""
    assert main(["search", "a red circle", "--not", "  "]) == 2
    assert "--not needs some text" in capsys.readouterr().err
    # Blank text next to an image is an image search.
    hits = _json(run_clifs(home, "search", "  ", "--image", str(singles["blue square"]), "--top", "1", "--json"))
    assert hits[0]["path"] == str(singles["blue square"])


def test_no_results_names_the_cut_off_that_removed_everything(library):
    home, _, _, _ = library
    proc = run_clifs(home, "search", "a red circle", "--min-score", "0.99", "--relative", "0.1")
    assert proc.returncode == 0 and proc.stdout == ""
    assert "no results for 'a red circle'" in proc.stderr
    assert "is cut off by --min-score 0.99 and --relative 0.1" in proc.stderr
    best = float(proc.stderr.split("the best score, ")[1].split(",")[0])
    assert 0.5 < best < 0.99  # the red circle is the best hit, just not good enough
    as_json = run_clifs(home, "search", "a red circle", "--min-score", "0.99", "--json")
    assert as_json.returncode == 0 and json.loads(as_json.stdout) == []
    assert "no results for 'a red circle'" in as_json.stderr  # the message never reaches stdout

    filtered = run_clifs(home, "search", "a red circle", "--kind", "video")
    assert filtered.returncode == 0 and filtered.stdout == ""
    assert "no results for 'a red circle' among videos (no indexed file matches these filters)" in filtered.stderr


def test_list_failed_says_when_nothing_failed(tmp_path):
    photos = tmp_path / "photos"
    write_single_objects(photos)
    home = tmp_path / "home"
    assert run_clifs(home, "index", str(photos), "--no-progress").returncode == 0
    proc = run_clifs(home, "list", "--failed")
    assert proc.returncode == 0 and proc.stdout == ""
    assert "no failed files (24 indexed)" in proc.stderr


# -- 2. impossible numbers ------------------------------------------------------------------------
IMPOSSIBLE = [
    (["search", "x", "--relative", "-1"], "--relative: -1 must be at least 0 (a margin below the best score"),
    (["search", "x", "--relative", "nan"], "--relative: 'nan' is not a finite number"),
    (["search", "x", "--min-score", "2"], "--min-score: 2 must be between -1 and 1 (cosine scores lie in [-1, 1])"),
    (["search", "x", "--min-score", "-1.5"], "--min-score: -1.5 must be between -1 and 1"),
    (["search", "x", "--min-score", "nan"], "--min-score: 'nan' is not a finite number"),
    (["search", "x", "--min-score=-inf"], "--min-score: '-inf' is not a finite number"),
    (["search", "x", "--image-weight", "nan"], "--image-weight: 'nan' is not a finite number"),
    (["search", "x", "--image-weight", "1.5"], "--image-weight: 1.5 must be between 0 and 1"),
    (["search", "x", "--min-score", "high"], "--min-score: 'high' is not a number"),
    (["search", "x", "--top", "0"], "--top: 0 must be at least 1"),
    (["detect", "a.png", "--labels", "a", "--threshold", "inf"], "--threshold: 'inf' is not a finite number"),
    (["detect", "a.png", "--labels", "a", "--threshold", "1.01"], "--threshold: 1.01 must be between 0 and 1"),
    (["detect", "a.png", "--labels", "a", "--size", "nan"], "--size: 'nan' is not a whole number"),
    (["segment", "a.png", "--labels", "a", "--size", "8"], "--size: 8 must be between 16 and 4096"),
    (["label", "a.png", "--top", "-3"], "--top: -3 must be at least 1"),
    (["index", "photos", "--workers", "-1"], "--workers: -1 must be at least 1"),
    (["index", "photos", "--batch-size", "0"], "--batch-size: 0 must be at least 1"),
    (["watch", "--debounce", "inf"], "--debounce: 'inf' is not a finite number"),
    (["watch", "--debounce", "-1"], "--debounce: -1 must be between 0 and 3600"),
]


@pytest.mark.parametrize(("argv", "message"), IMPOSSIBLE, ids=[" ".join(a[2:] or a) for a, _ in IMPOSSIBLE])
def test_impossible_values_exit_2_saying_why(argv, message, in_process_home, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_an_impossible_value_exits_2_from_the_real_command(tmp_path):
    proc = run_clifs(tmp_path / "home", "search", "x", "--relative", "-1")
    assert proc.returncode == 2 and "must be at least 0" in proc.stderr and "Traceback" not in proc.stderr


# -- 3. image paths say what they are ---------------------------------------------------------------
@pytest.fixture
def odd_paths(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.png"
    folder.mkdir()
    dangling = tmp_path / "dangling.png"
    dangling.symlink_to(tmp_path / "gone.png")
    return {"fifo": fifo, "folder": folder, "missing": tmp_path / "missing.png", "dangling": dangling}


EXPECTED = {
    "fifo": "is not a regular file (a FIFO, device or socket)",
    "folder": "is a folder, not an image",
    "missing": "not found",
    "dangling": "not found",
}


@pytest.mark.parametrize("what", list(EXPECTED))
def test_every_image_argument_says_what_the_path_is(what, odd_paths, tmp_path):
    """A FIFO is never opened: opening one would block until a writer came, so a timeout here is the bug."""
    path = str(odd_paths[what])
    commands = [
        ["search", "--image", path],
        ["label", path],
        ["segment", path, "--labels", "a red circle"],
        ["detect", path, "--labels", "a red circle"],
    ]
    for argv in commands:
        proc = run_clifs(tmp_path / "home", *argv, timeout=60)
        assert proc.returncode == 2, (argv, proc.stderr)
        assert EXPECTED[what] in proc.stderr and path in proc.stderr, (argv, proc.stderr)
        assert "Traceback" not in proc.stderr
    if what == "dangling":
        assert "is a link to nothing" in proc.stderr


def test_a_vocabulary_fifo_or_folder_is_refused_without_blocking(odd_paths, library):
    home, _, singles, _ = library
    image = str(singles["red circle"])
    proc = run_clifs(home, "label", image, "--vocab", str(odd_paths["fifo"]), timeout=60)
    assert proc.returncode == 2 and "vocabulary" in proc.stderr and EXPECTED["fifo"] in proc.stderr
    proc = run_clifs(home, "label", image, "--vocab", str(odd_paths["folder"]), timeout=60)
    assert proc.returncode == 2 and "is a folder, not a vocabulary file" in proc.stderr


def test_out_that_is_a_file_is_refused(library, tmp_path, in_process_home, capsys):
    _, _, singles, _ = library
    out = tmp_path / "out"
    out.write_text("a file")
    assert main(["segment", str(singles["red circle"]), "--labels", "red circle", "--out", str(out)]) == 2
    assert f"--out {out} is not a folder" in capsys.readouterr().err
    assert out.read_text() == "a file"


# -- 4. empty label lists -----------------------------------------------------------------------------
def test_empty_label_lists_are_refused_by_every_command(library, in_process_home, capsys):
    _, _, singles, _ = library
    image = str(singles["red circle"])
    for command in ("label", "segment", "detect"):
        for empty in ("", " , ,", ","):
            assert main([command, image, "--labels", empty]) == 2, (command, empty)
            err = capsys.readouterr().err
            assert err.strip() == f"clifs: error: {LABELS_MESSAGE}, e.g. --labels 'dog,person'", (command, empty)


# -- 5. names with control characters and undecodable bytes -------------------------------------------
def test_printable_escapes_controls_and_undecodable_bytes():
    assert printable("a\nb\tc\rd\x1b[31me\x7f\x00") == "a\\nb\\tc\\rd\\x1b[31me\\x7f\\0"
    assert printable(os.fsdecode(b"caf\xe9-\xff.png")) == "caf\\xe9-\\xff.png"  # the bytes as they are on disk
    assert printable("\u202egnp.exe \u2028x \x85") == "\\u202egnp.exe \\u2028x \\x85"
    assert printable("café ☕ 東京 C:\\photos") == "café ☕ 東京 C:\\photos"  # printable text is left alone
    assert printable(printable("a\nb")) == "a\\nb"


def test_print_json_writes_lone_surrogates_as_escapes(capsys):
    raw = b"/photos/caf\xe9 \xff\xfe.png"
    name = os.fsdecode(raw)
    print_json([{"path": name, "label": "ok ☕"}])
    out = capsys.readouterr().out
    assert "\\udce9" in out and "\\udcff" in out and "☕" in out  # UTF-8 stays readable
    [row] = json.loads(out)
    assert os.fsencode(row["path"]) == raw and row["label"] == "ok ☕"


@pytest.mark.parametrize("encoding", ["utf-8", "ascii"])
def test_print_json_survives_a_real_stdout(encoding, tmp_path):
    """A real pipe: strict UTF-8 (where a raw surrogate would raise) and ASCII (where ☕ would)."""
    raw = b"/photos/bad\xff\x80name\n.png"
    code = (
        "import os, sys; from clifs.cli.common import print_json; "
        f"print_json([{{'path': os.fsdecode({raw!r}), 'label': 'ok \\u2615'}}])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**clifs_env(tmp_path / "home"), "PYTHONIOENCODING": f"{encoding}:strict"},
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    [row] = json.loads(proc.stdout.decode("utf-8"))
    assert os.fsencode(row["path"]) == raw and row["label"] == "ok ☕"


def test_names_with_a_newline_print_escaped_in_text_and_exact_in_json(library):
    home, photos, singles, indexed = library
    odd = photos / NEWLINE_NAME
    escaped = printable(str(odd))
    assert escaped.endswith("new\\nline\\x1b[31m.png")

    # The odd name is a copy of the red circle: --all-copies shows it as its own hit, not "+1 similar".
    text = run_clifs(home, "search", "a red circle", "--top", "2", "--all-copies")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert len(lines) == 2 and "\x1b" not in text.stdout  # one line per hit, no raw escape
    assert {line.split("  ", 1)[1] for line in lines} == {escaped, str(singles["red circle"])}
    hits = _json(run_clifs(home, "search", "a red circle", "--top", "2", "--all-copies", "--json"))
    assert str(odd) in {h["path"] for h in hits}  # JSON gives the exact name back

    listed = run_clifs(home, "list")
    assert f"image  {escaped}  (1 item(s))" in listed.stdout.splitlines()
    assert str(odd) in {e["path"] for e in _json(run_clifs(home, "list", "--json"))}

    broken = printable(str(photos / "bro\nken.png"))
    assert any(line.startswith(f"  failed: {broken}: ") for line in indexed.stdout.splitlines())
    failed = run_clifs(home, "list", "--failed")
    assert any(line.startswith(f"image  {broken}  (failed: ") for line in failed.stdout.splitlines())


def test_folder_names_print_escaped_in_folders_status_and_errors(tmp_path, in_process_home, capsys):
    folder = tmp_path / "odd\nfolder\t\x1b[2J"
    folder.mkdir()
    assert main(["folders", "add", str(folder)]) == 0
    assert main(["folders", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == [printable(str(folder))]
    assert main(["folders", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"path": str(folder), "paused": False, "exists": True}]
    assert main(["status"]) == 0
    assert f"  folder: {printable(str(folder))}" in capsys.readouterr().out.splitlines()
    # An error naming a path is one line too, whatever bytes the name holds.
    undecodable = tmp_path / os.fsdecode(b"odd\nfolder \xff")
    undecodable.mkdir()
    assert main(["label", str(undecodable)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "odd\\nfolder \\xff is a folder, not an image" in err


def test_the_watch_progress_line_escapes_the_current_file(tmp_path):
    from clifs.cli.watch import ProgressLine
    from indexer.status import IndexerStatus

    read, write = os.pipe()
    with os.fdopen(write, "w") as stream:
        line = ProgressLine(enabled=True, stream=stream)
        line(IndexerStatus(state="indexing", done=3, queued=1, current=str(tmp_path / "a\nb\x1b.png")))
    with os.fdopen(read) as got:
        assert got.read() == "indexing: 3 done, 1 queued, 0 failed, 0.0 files/s - a\\nb\\x1b.png\n"


def test_a_label_with_a_newline_prints_escaped(library):
    home, _, singles, _ = library
    proc = run_clifs(home, "label", str(singles["red circle"]), "--labels", "red circle,blue\nsquare")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and lines[0].endswith("  red circle") and lines[1].endswith("  blue\\nsquare  (guess)")


def test_a_damaged_home_is_one_line_and_exit_2(tmp_path):
    home = tmp_path / "home-is-a-file"
    home.write_text("not a folder")
    for argv in (["list"], ["status"], ["folders", "list"], ["search", "x"]):
        proc = run_clifs(home, *argv)
        assert proc.returncode == 2, (argv, proc.stderr)
        assert proc.stderr.startswith("clifs: error: ") and proc.stderr.count("\n") == 1, proc.stderr
        assert str(home) in proc.stderr and "Traceback" not in proc.stderr


# -- 6. progress for long label work ------------------------------------------------------------------
def test_embed_labels_reports_increasing_progress_up_to_the_total(test_encoder):
    from clifs.engine.vision.labels import _TEXT_BATCH, embed_labels, templates

    labels = [f"progress probe {i}" for i in range(7)]
    calls: list[tuple[int, int]] = []
    embedded = embed_labels(test_encoder, labels, "ensemble", on_progress=lambda d, t: calls.append((d, t)))
    total = len(labels) * len(templates("ensemble"))
    assert embedded.shape == (len(labels), test_encoder.dim)
    assert total > 2 * _TEXT_BATCH  # several batches, so several reports
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert all(t == total for _, t in calls)
    done = [d for d, _ in calls]
    assert done == sorted(set(done)) and len(done) == -(-total // _TEXT_BATCH) + 1

    again: list[tuple[int, int]] = []
    embed_labels(test_encoder, labels, "ensemble", on_progress=lambda d, t: again.append((d, t)))
    assert again == []  # all cached: nothing to report


def test_progress_on_a_pipe_prints_a_line_when_the_work_takes_long():
    read, write = os.pipe()
    with os.fdopen(write, "w") as stream:
        progress = Progress("embedding labels", "prompt", after=0.0, every=0.0, stream=stream)
        for done in (0, 256, 512):
            progress(done, 512)
        progress.close()
    with os.fdopen(read) as got:
        lines = got.read().splitlines()
    assert lines == ["clifs: embedding labels: 0/512 prompts", "clifs: embedding labels: 256/512 prompts"]


def test_label_shows_a_bar_on_a_terminal_and_keeps_json_stdout_clean(library, tmp_path):
    """stderr on a real pseudo-terminal, stdout on a pipe: the bar goes to the terminal only."""
    home, _, singles, _ = library
    vocab = tmp_path / "many.txt"
    vocab.write_text("\n".join(f"thing number {i}" for i in range(150)) + "\n")
    leader, follower = os.openpty()
    chunks: list[bytes] = []

    def drain() -> None:  # read while the child writes, so a full terminal buffer never blocks it
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child side is closed and drained
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "clifs.cli.main", "label", str(singles["red circle"]), "--vocab", str(vocab)]
            + ["--json", "--top", "3"],
            env=clifs_env(home),
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=180,
        )
    finally:
        os.close(follower)
        reader.join(timeout=30)
        os.close(leader)
    terminal = b"".join(chunks)
    assert proc.returncode == 0, terminal
    rows = json.loads(proc.stdout)  # nothing but the JSON on stdout
    assert len(rows) == 3 and all(r["label"].startswith("thing number") for r in rows)
    shown = terminal.decode("utf-8", "replace")
    total = 150 * 80
    assert "embedding labels" in shown and f"{total}/{total}" in shown and "100%" in shown
