"""Words in pictures, end to end: real rendered words on real pictures, the real RapidOCR models,
real SQLite FTS5, the real `clifs` command."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from clifs.engine.catalog import Catalog, OcrRead
from clifs.engine.library import Library
from clifs.engine.text_search import matching_items
from tests.conftest import clifs_env, run_clifs
from tests.ocr_helpers import draw_words, scene, write_no_text, write_word_set


def _json(result: subprocess.CompletedProcess):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def word_library(tmp_path_factory):
    """The rendered set indexed once by `clifs index` (both passes): (home, folder, rendered, plain)."""
    root = tmp_path_factory.mktemp("ocr")
    folder, home = root / "pictures", root / "home"
    rendered = write_word_set(folder)
    plain = write_no_text(folder)
    summary = _json(run_clifs(home, "index", str(folder), "--json", "--no-progress", timeout=600))[0]
    return home, folder, rendered, plain, summary


def test_index_runs_both_passes_and_quoted_search_finds_each_word_first(word_library, test_encoder):
    home, folder, rendered, plain, summary = word_library
    total = len(rendered) + len(plain)
    assert summary["indexed"] == total and summary["failed"] == []
    ocr = summary["ocr"]
    assert ocr["read"] == total and ocr["failed"] == []
    assert ocr["with_text"] >= len(rendered)
    library = Library(home, encoder=test_encoder)
    try:
        found = 0
        for r in rendered:
            hits = library.search(f'"{r.word}"', top=5)
            assert all(h.path not in {str(p) for p in plain} for h in hits), r.word  # never a picture without it
            if hits and hits[0].path == str(r.path):
                found += 1
                assert r.word in hits[0].text.lower()
                assert hits[0].text_boxes and len(hits[0].text_boxes[0]["box"]) == 4
        assert found == len(rendered), f"quoted recall {found}/{len(rendered)}"
        # case and accents do not matter; one OCR error in a long word is forgiven; a short word must be whole
        assert library.search('"ODWALLÁ"', top=1)[0].path == str(rendered[0].path)
        assert library.search('"marmelade"', top=1)[0].path == str(rendered[4].path)
        assert library.search('"odw"') == []  # a word under 4 letters must be whole
        assert library.search('"odwal"', top=1)[0].path == str(rendered[0].path)  # a longer one may start a word
        assert library.search('"walla"') == []  # not from the middle of a word
        assert library.search('"nothing-like-this"') == []
    finally:
        library.close()


def test_the_text_boost_is_bounded_and_lowers_nothing(word_library, test_encoder):
    from clifs.engine.text_search import TEXT_BOOST

    home, folder, rendered, plain, _ = word_library
    library = Library(home, encoder=test_encoder)
    try:
        query = "a sign that says gazpacho"  # "sign" is in no picture: it does not dilute the share
        total = len(rendered) + len(plain)
        before = {h.path: h.score for h in library.search(query, top=total, text_boost=False)}
        after = {h.path: h for h in library.search(query, top=total)}
        assert set(before) == set(after)
        target = str(rendered[6].path)
        assert after[target].score == pytest.approx(before[target] + TEXT_BOOST, abs=1e-5)
        assert after[target].text.lower() == "gazpacho" and after[target].text_boxes
        assert all(after[p].score == pytest.approx(s, abs=1e-6) for p, s in before.items() if p != target)
    finally:
        library.close()


def test_quoted_search_from_the_command_line_carries_text_and_boxes(word_library):
    home, folder, rendered, plain, _ = word_library
    hits = _json(run_clifs(home, "search", '"quokka"', "--json"))
    assert [h["path"] for h in hits] == [str(rendered[3].path)]
    assert hits[0]["text"].lower() == "quokka"
    box = hits[0]["text_boxes"][0]
    assert box["text"].lower() == "quokka" and box["confidence"] > 0.8
    xs, ys = [p[0] for p in box["box"]], [p[1] for p in box["box"]]
    assert 0 <= min(xs) < max(xs) <= 512 and 0 <= min(ys) < max(ys) <= 512  # in the file's own pixels
    # an ordinary search carries no text fields
    plain_hits = _json(run_clifs(home, "search", "a red circle", "--json", "--top", "3"))
    assert all("text" not in h for h in plain_hits if h["path"] in {str(p) for p in plain})
    empty = run_clifs(home, "search", '"absent"')
    assert empty.returncode == 0 and "no results" in empty.stderr


def test_clifs_text_prints_what_was_read(word_library):
    home, folder, rendered, plain, _ = word_library
    out = run_clifs(home, "text", str(rendered[1].path))
    assert out.returncode == 0 and out.stdout.strip().lower() == "harbour", out.stderr
    data = _json(run_clifs(home, "text", str(rendered[5].path), "--json"))[0]
    assert data["status"] == "ok" and data["source"] == "stored" and data["engine"].startswith("rapidocr")
    assert [line["text"].lower() for line in data["lines"]] == ["brixton"]  # turned 90 degrees
    none = run_clifs(home, "text", str(plain[2]))
    assert none.returncode == 0 and none.stdout == "" and "no text found" in none.stderr
    missing = run_clifs(home, "text", str(folder / "nope.jpg"))
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_hybrid_query_ranks_the_pictures_with_the_words_by_meaning(tmp_path, test_encoder):
    folder, home = tmp_path / "pictures", tmp_path / "home"
    folder.mkdir()
    objects = {"red circle": ("red", "circle"), "blue square": ("blue", "square")}
    for n, (colour, shape) in enumerate(objects.values()):
        image = scene(128, 300 + n, n_objects=1, colours=(colour,), shapes=(shape,))
        big = image.resize((384, 384))
        draw_words(big, "SALE", "Lato-Bold", 44, centre=(0.5, 0.9)).save(folder / f"sale_{n}.jpg", quality=92)
        big.save(folder / f"nosale_{n}.png")
    _json(run_clifs(home, "index", str(folder), "--json", "--no-progress", timeout=300))
    for name in objects:
        hits = _json(run_clifs(home, "search", f'a {name} "sale"', "--json"))
        assert {Path(h["path"]).name for h in hits} == {"sale_0.jpg", "sale_1.jpg"}
        assert Path(hits[0]["path"]).name == f"sale_{list(objects).index(name)}.jpg"


def test_video_words_shown_from_3_to_5_seconds_are_found_there(tmp_path):
    folder, home = tmp_path / "videos", tmp_path / "home"
    folder.mkdir()
    path = folder / "clip.avi"
    fps, seconds = 5, 8
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (320, 240))
    background = scene(320, 400).resize((320, 240))
    with_words = draw_words(background, "pineapple", "Lato-Bold", 40)
    for n in range(fps * seconds):
        frame = with_words if 3.0 <= n / fps < 5.0 else background
        writer.write(cv2.cvtColor(np.asarray(frame), cv2.COLOR_RGB2BGR))
    writer.release()
    summary = _json(run_clifs(home, "index", str(folder), "--json", "--no-progress", timeout=300))[0]
    assert summary["ocr"]["read"] == 1 and summary["ocr"]["with_text"] == 1
    hits = _json(run_clifs(home, "search", '"pineapple"', "--json"))
    assert len(hits) == 1 and hits[0]["kind"] == "video"
    assert 3.0 <= hits[0]["timestamp"] < 5.0
    assert all(3.0 <= m["timestamp"] < 5.0 for m in hits[0]["moments"])
    text = _json(run_clifs(home, "text", str(path), "--json"))[0]
    assert text["lines"] and all(3.0 <= line["timestamp"] < 5.0 for line in text["lines"])


def test_a_corrupt_picture_fails_once_with_a_reason_in_each_pass(tmp_path):
    folder, home = tmp_path / "pictures", tmp_path / "home"
    folder.mkdir()
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is no JPEG")
    good = folder / "good.jpg"
    draw_words(scene(256, 500), "lantern", "Lato-Bold", 40).save(good, quality=90)
    later = folder / "later.jpg"
    draw_words(scene(256, 501), "biscuit", "Lato-Bold", 40).save(later, quality=90)
    first = _json(run_clifs(home, "index", str(folder), "--json", "--no-progress", "--no-ocr", timeout=300))[0]
    assert [f["path"] for f in first["failed"]] == [str(folder / "broken.jpg")]
    assert first["ocr"] is None  # --no-ocr
    # later.jpg is damaged after its embedding, keeping its size and time: only the OCR pass sees it
    st = later.stat()
    later.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * (st.st_size - 4))
    os.utime(later, ns=(st.st_atime_ns, st.st_mtime_ns))
    second = _json(run_clifs(home, "index", str(folder), "--json", "--no-progress", timeout=300))[0]
    assert second["failed"] == []  # the embedding pass does not try broken.jpg again
    assert second["ocr"]["read"] == 1 and [f["path"] for f in second["ocr"]["failed"]] == [str(later)]
    assert second["ocr"]["failed"][0]["error"]  # a reason a person can read
    third = _json(run_clifs(home, "index", str(folder), "--json", "--no-progress", timeout=300))[0]
    assert third["failed"] == [] and third["ocr"]["read"] == 0 and third["ocr"]["failed"] == []
    listed = _json(run_clifs(home, "list", "--failed", "--json"))
    assert [e["path"] for e in listed] == [str(folder / "broken.jpg")]
    text = _json(run_clifs(home, "text", str(later), "--json"))[0]
    assert text["status"] == "failed" and text["error"] == second["ocr"]["failed"][0]["error"]
    # its embedding is untouched: it is still found by meaning
    assert str(later) in {h["path"] for h in _json(run_clifs(home, "search", "a circle", "--json", "--top", "5"))}
    assert [h["path"] for h in _json(run_clifs(home, "search", '"lantern"', "--json"))] == [str(good)]


def _files_read(catalog: Path) -> int:
    """Files the OCR pass has committed, read from another process while it writes (0 before it exists)."""
    try:
        db = sqlite3.connect(f"{catalog.as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT count(*) FROM ocr_files WHERE status = 'ok'").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def test_killing_the_indexer_during_the_ocr_pass_loses_nothing(tmp_path, test_encoder):
    folder, home = tmp_path / "pictures", tmp_path / "home"
    words = ["anchor", "bramble", "cobalt", "dolphin", "ember", "falcon", "garnet", "hazel"]
    folder.mkdir()
    for n, word in enumerate(words):
        draw_words(scene(512, 600 + n), word, "Lato-Bold", 44).save(folder / f"{word}.jpg", quality=90)
    process = subprocess.Popen(
        [sys.executable, "-m", "clifs.cli.main", "index", str(folder), "--no-progress"],
        env=clifs_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        read = 0
        while time.monotonic() < deadline and process.poll() is None:
            read = _files_read(home / "catalog.sqlite3")
            if 1 <= read < len(words) - 2:
                break
            time.sleep(0.05)
        assert process.poll() is None, f"the run ended before it could be killed: {process.stderr.read()}"
        process.kill()  # SIGKILL: no cleanup of any kind
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    done_before = _files_read(home / "catalog.sqlite3")
    assert 1 <= done_before < len(words)
    again = _json(run_clifs(home, "index", str(folder), "--json", "--no-progress", timeout=300))[0]
    assert again["indexed"] == 0 and again["unchanged"] == len(words)  # the embeddings were all kept
    assert again["ocr"]["read"] == len(words) - done_before  # only the unfinished files are read again
    library = Library(home, encoder=test_encoder)
    try:
        for word in words:
            hits = library.search(f'"{word}"')
            assert [Path(h.path).name for h in hits] == [f"{word}.jpg"], word
            (_, lines), *others = library.text_of(hits[0].path)
            assert [t.lower() for t, _, _ in lines].count(word) == 1 and not others  # read once, stored once
    finally:
        library.close()


# -- the catalog's side, without the OCR models -----------------------------------------------------
def test_full_text_search_folds_case_and_accents_and_finds_cjk_inside_runs(tmp_path):
    catalog = Catalog(tmp_path / "catalog.sqlite3")
    from clifs.engine.catalog import IndexedFile, NewItem

    files = [
        IndexedFile(f"/p/{n}.jpg", "image", 1, 1.0, f"h{n}", [NewItem(None, np.ones(4, np.float32))]) for n in range(4)
    ]
    ids = [i[0] for i in catalog.commit_indexed(files, "m")]
    file_ids = {path: state.id for path, state in catalog.file_states([f.path for f in files]).items()}
    texts = ["Crème Brûlée CAFÉ", "東京タワーへようこそ", "STRASSE 12", "odwalla juice"]
    catalog.commit_ocr(
        [
            OcrRead(file_ids[f.path], "test-engine", {item: [(t, 0.99, [[0, 0], [9, 0], [9, 9], [0, 9]])]})
            for f, item, t in zip(files, ids, texts)
        ]
    )
    assert set(matching_items(catalog, ["creme brulee"])) == {ids[0]}
    assert set(matching_items(catalog, ["Café"])) == {ids[0]}
    assert set(matching_items(catalog, ["タワー"])) == {ids[1]}  # inside a run without spaces
    assert set(matching_items(catalog, ["東京"])) == {ids[1]}  # two characters: too short for trigrams, scanned
    assert set(matching_items(catalog, ["straße"])) == {ids[2]}
    assert set(matching_items(catalog, ["odwala"])) == {ids[3]}  # one letter missing in a long word
    assert matching_items(catalog, ["odwalla", "tower"]) == {}  # every phrase must match
    # the text goes with its file: removed, moved and re-read
    catalog.delete_files([files[3].path])
    assert matching_items(catalog, ["odwalla"]) == {}
    catalog.move_file(files[2].path, "/q/moved.jpg", 2.0)
    assert set(matching_items(catalog, ["strasse"])) == {ids[2]}
    catalog.commit_ocr(
        [OcrRead(file_ids[files[0].path], "newer-engine", {ids[0]: [("Tarte Tatin", 0.9, [[0, 0]] * 4)]})]
    )
    assert matching_items(catalog, ["creme"]) == {} and set(matching_items(catalog, ["tatin"])) == {ids[0]}
    assert [t.path for t in catalog.ocr_todo("newer-engine")] == ["/p/1.jpg", "/q/moved.jpg"]
    catalog.close()


def test_an_older_catalog_upgrades_and_its_files_are_read_on_the_next_run(tmp_path):
    folder, home = tmp_path / "pictures", tmp_path / "home"
    folder.mkdir()
    draw_words(scene(256, 700), "mustard", "Lato-Bold", 40).save(folder / "a.jpg", quality=90)
    _json(run_clifs(home, "index", str(folder), "--json", "--no-progress", "--no-ocr", timeout=300))
    db = sqlite3.connect(home / "catalog.sqlite3")  # back to the schema before the words in pictures
    db.executescript(  # and before sound (schema 5), which came after
        "DROP TRIGGER ocr_fts_item_gone; DROP TABLE ocr_fts; DROP TABLE ocr_lines; DROP TABLE ocr_files;"
        "ALTER TABLE items DROP COLUMN modality; ALTER TABLE files DROP COLUMN sound_note;"
        "UPDATE schema_version SET version = 3;"
    )
    db.commit()
    db.close()
    summary = _json(run_clifs(home, "index", str(folder), "--json", "--no-progress", timeout=300))[0]
    assert summary["unchanged"] == 1 and summary["ocr"]["read"] == 1 and summary["ocr"]["with_text"] == 1
    assert [Path(h["path"]).name for h in _json(run_clifs(home, "search", '"mustard"', "--json"))] == ["a.jpg"]


def test_a_file_deleted_before_its_text_is_read_is_no_failure(tmp_path, test_encoder):
    from indexer.ocr_pass import OcrPass
    from indexer.pipeline import Pipeline

    folder = tmp_path / "pictures"
    folder.mkdir()
    draw_words(scene(256, 950), "walrus", "Lato-Bold", 40).save(folder / "kept.jpg", quality=90)
    draw_words(scene(256, 951), "pebble", "Lato-Bold", 40).save(folder / "gone.jpg", quality=90)
    library = Library(tmp_path / "home", encoder=test_encoder)
    try:
        Pipeline(library).index_folders([str(folder)])
        (folder / "gone.jpg").unlink()  # the watcher has not seen it go yet
        report = OcrPass(library).run([str(folder)])
        assert report.read == 1 and report.vanished == 1 and report.failed == []
        assert library.catalog.ocr_counts()["failed"] == 0
        assert [Path(t.path).name for t in library.catalog.ocr_todo(library.ocr.version)] == ["gone.jpg"]
    finally:
        library.close()
