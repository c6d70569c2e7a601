"""The OCR pass in the live indexer: in the background, after (never before) the embedding of new files,
with its own progress in the status; real watchdog, real OCR models, real rendered words."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from clifs.engine.library import Library
from indexer.service import IndexerService
from indexer.status import read_status_file
from tests.conftest import run_clifs
from tests.indexer_helpers import wait_until
from tests.ocr_helpers import draw_words, scene

WORDS = ["lighthouse", "tangerine", "porcupine", "saxophone", "waterfall"]


@pytest.fixture
def service(clifs_home, test_encoder):
    clifs_home.mkdir(parents=True, exist_ok=True)
    started: list[IndexerService] = []

    def make(folder: Path, config: str = "") -> IndexerService:
        (clifs_home / "config.toml").write_text("batch_size = 8\ndecode_workers = 1\ntorch_threads = 1\n" + config)
        s = IndexerService(Library(clifs_home, encoder=test_encoder), debounce_seconds=0.3)
        s.add_folder(str(folder))
        s.start()
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop(timeout=60)
        s.library.close()


def _write(folder: Path, n: int, word: str) -> Path:
    path = folder / f"{word}.jpg"
    draw_words(scene(512, 800 + n), word, "Lato-Bold", 44).save(path, quality=90)
    return path


def test_the_watcher_reads_text_in_the_background_after_embedding(tmp_path, clifs_home, service, test_encoder):
    folder = tmp_path / "pictures"
    folder.mkdir()
    for n, word in enumerate(WORDS[:4]):
        _write(folder, n, word)
    states: list[tuple[bool, int, int]] = []
    embedded_when_reading_began: list[int] = []
    svc = service(folder)
    catalog = svc.library.catalog

    def listen(st) -> None:  # on the service thread
        if st.reading_text and not embedded_when_reading_began:
            embedded_when_reading_began.append(catalog.counts()["files"])
            assert st.state == "watching"  # the OCR pass is no state of its own: it has its own fields
        states.append((st.reading_text, st.text_queued, st.text_done))

    svc.add_listener(listen)
    # the embedding pass comes first: every file is searchable by meaning before the first text is read
    wait_until(lambda: embedded_when_reading_began, 120, lambda: states[-5:])
    assert embedded_when_reading_began == [4]

    # a file that arrives while text is read is embedded before the rest of the text is read
    new = _write(folder, 9, WORDS[4])
    wait_until(lambda: catalog.file_states([str(new)]), 60, lambda: states[-5:])
    left = catalog.ocr_todo_count(svc.library.ocr.version)
    assert left >= 1, "the OCR pass finished before the new file was embedded: the test proves nothing"

    assert svc.wait_idle(300), states[-5:]
    assert catalog.ocr_counts()["read"] == 5
    status = svc.status()
    assert status.text_done == 5 and status.text_queued == 0 and status.text_failed == 0
    assert max(q for reading, q, _ in states if reading) >= 1  # its own progress was shown
    assert status.state == "watching" and not status.reading_text
    on_disk = read_status_file(clifs_home)
    assert on_disk["text_done"] == 5 and "text_queued" in on_disk
    seen = json.loads(run_clifs(clifs_home, "status", "--json").stdout)[0]  # from another process
    assert seen["running"] and seen["text_done"] == 5 and seen["text_queued"] == 0 and not seen["reading_text"]

    reader = Library(clifs_home, encoder=test_encoder)
    try:
        for word in WORDS:
            assert [Path(h.path).name for h in reader.search(f'"{word}"')] == [f"{word}.jpg"], word
        # a removed file takes its words with it
        (folder / f"{WORDS[0]}.jpg").unlink()
        wait_until(lambda: not reader.search(f'"{WORDS[0]}"'), 60)
    finally:
        reader.close()


def test_ocr_can_be_switched_off(tmp_path, clifs_home, service):
    folder = tmp_path / "pictures"
    folder.mkdir()
    _write(folder, 0, WORDS[0])
    svc = service(folder, "ocr = false\n")
    assert svc.wait_idle(120)
    time.sleep(0.5)
    assert svc.library.catalog.counts()["files"] == 1
    assert svc.library.catalog.ocr_counts()["read"] == 0 and svc.status().text_done == 0
