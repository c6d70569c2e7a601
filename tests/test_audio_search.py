"""Sound end to end, as a user meets it: a folder of pictures, sounds in every format, a video with a
soundtrack, a silent file and each bad input of issue 15, indexed by the real `clifs` command with the
test model and its trained audio tower; then text finds sounds, a sound finds the video's moment,
a picture finds sounds, and the starter model passes sounds over with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from clifs.engine.catalog import Catalog
from devkit.shapes import COLOURS, SHAPES
from devkit.shapes_av import write_object_sound, write_shapes_video
from tests.audio_helpers import BAD_REASONS, write_bad_audio, write_silence, write_video_with_corrupt_soundtrack
from tests.conftest import clifs_env, run_clifs, write_single_objects

FORMATS = (".wav", ".flac", ".mp3", ".ogg", ".m4a")
#: The video: what is seen and heard when (start, end) in seconds.
SEGMENTS = [("green", "cross", 3.0), ("red", "circle", 3.0), ("blue", "square", 3.0)]
RED_CIRCLE_SPAN = (3.0, 6.0)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """The folder, indexed once: (home, folder, the `clifs index --json` summary, the query sound)."""
    root = tmp_path_factory.mktemp("audio")
    folder, home = root / "library", root / "home"
    pictures = write_single_objects(folder / "pictures")
    sounds = {}
    for i, (colour, shape) in enumerate((c, s) for c in COLOURS for s in SHAPES):
        path = folder / "sounds" / f"{colour}_{shape}{FORMATS[i % len(FORMATS)]}"
        path.parent.mkdir(parents=True, exist_ok=True)
        sounds[f"{colour} {shape}"] = write_object_sound(path, colour, shape, seconds=2.0, seed=100 + i)
    write_shapes_video(folder / "clip.mp4", SEGMENTS, seed=7)
    write_video_with_corrupt_soundtrack(folder / "bad_soundtrack.mp4")
    write_silence(folder / "sounds" / "quiet.flac")
    memo = write_object_sound(folder / "sounds" / "memo.m4a", "orange", "cross", seconds=2.0, seed=5)
    memo.rename(folder / "sounds" / "memo.mp4")  # an MP4 with no video track: a voice memo
    bad = write_bad_audio(folder / "bad")
    query = write_object_sound(root / "query_red_circle.wav", "red", "circle", seconds=2.0, seed=999)
    proc = run_clifs(home, "index", str(folder), "--json", "--no-ocr")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return home, folder, json.loads(proc.stdout)[0], query, pictures, sounds, bad


def _search(home: Path, *args: str) -> list[dict]:
    proc = run_clifs(home, "search", *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_each_bad_input_is_a_recorded_failure_while_the_rest_index(indexed):
    home, folder, summary, *_ = indexed
    failed = {Path(f["path"]).name: f["error"] for f in summary["failed"]}
    assert set(failed) == set(BAD_REASONS)
    for name, reason in BAD_REASONS.items():
        assert failed[name].startswith(reason), (name, failed[name])
    assert summary["audio_not_indexed"] == 0
    [unread] = summary["soundtracks_not_indexed"]  # its frames index: no failure
    assert Path(unread["path"]).name == "bad_soundtrack.mp4" and "no decodable audio" in unread["error"]
    # 24 pictures, 24 sounds, two videos, the silent file and the memo
    assert summary["indexed"] == 24 + 24 + 2 + 1 + 1

    proc = run_clifs(home, "list", "--json")
    listed = {Path(e["path"]).name: e for e in json.loads(proc.stdout)}
    quiet = listed["quiet.flac"]
    assert (quiet["kind"], quiet["status"], quiet["items"], quiet["sounds"], quiet["sound"]) == (
        "audio", "ok", 0, 0, "silent"
    )  # fmt: skip
    bad_soundtrack = listed["bad_soundtrack.mp4"]  # the soundtrack is lost, not the frames
    assert bad_soundtrack["status"] == "ok" and bad_soundtrack["items"] >= 1 and bad_soundtrack["sounds"] == 0
    assert bad_soundtrack["sound"].startswith("soundtrack not indexed: no decodable audio")
    clip = listed["clip.mp4"]
    assert clip["sounds"] >= 15 and clip["items"] > clip["sounds"]  # windows every half second, and frames
    assert listed["red_circle.wav"]["kind"] == "audio" and listed["red_circle.wav"]["sounds"] == 3
    assert listed["memo.mp4"]["kind"] == "audio" and listed["memo.mp4"]["sounds"] == 3  # indexed as a sound
    text = run_clifs(home, "list").stdout
    assert "quiet.flac  (0 item(s); silent)" in text


def test_text_finds_the_right_sound_first(indexed):
    home, _, _, _, _, sounds, _ = indexed
    for colour, shape in (("red", "circle"), ("blue", "square"), ("yellow", "triangle")):
        hits = _search(home, f"a {colour} {shape}", "--kind", "audio", "--top", "3")
        assert hits[0]["path"] == str(sounds[f"{colour} {shape}"]), [h["path"] for h in hits]
        assert hits[0]["kind"] == "audio" and hits[0]["matched"] == "sound"
        assert 0.0 <= hits[0]["timestamp"] <= 1.0 and all(m["matched"] == "sound" for m in hits[0]["moments"])
        assert all(h["matched"] == "sound" for h in hits)  # --kind audio: only windows of sound


def test_a_sound_finds_the_videos_moment_inside_its_segment(indexed):
    home, _, _, query, pictures, sounds, _ = indexed
    hits = _search(home, "--audio", str(query), "--kind", "video")
    clip = next(h for h in hits if Path(h["path"]).name == "clip.mp4")
    assert hits[0] is clip
    start, end = RED_CIRCLE_SPAN
    assert clip["matched"] == "sound" and start <= clip["timestamp"] <= end - 1.0, clip  # its window lies inside
    # without a filter the sound reaches the red circle's sound and the picture of a red circle too
    everything = [h["path"] for h in _search(home, "--audio", str(query), "--top", "6")]
    assert str(sounds["red circle"]) in everything[:3]
    assert str(pictures["red circle"]) in everything

    text = run_clifs(home, "search", "--audio", str(query), "--kind", "video", "--top", "1").stdout
    assert "clip.mp4 @ 00:00:0" in text and "(sound)" in text


def test_a_picture_finds_sounds(indexed):
    home, _, _, _, pictures, sounds, _ = indexed
    hits = _search(home, "--image", str(pictures["green cross"]), "--kind", "audio", "--top", "3")
    assert hits[0]["path"] in (str(sounds["green cross"]), str(indexed[1] / "clip.mp4")), hits[0]
    assert str(sounds["green cross"]) in [h["path"] for h in hits[:2]]


def test_the_python_api_takes_audio(indexed, monkeypatch):
    home, _, _, query, _, sounds, _ = indexed
    from clifs import Library

    for key, value in clifs_env(home).items():
        monkeypatch.setenv(key, value)
    library = Library()
    try:
        hits = library.search(audio=query, kind="audio", top=3)
        # the red circle's sound file and the video's red-circle moment (a soundtrack is a sound too)
        assert {h.path for h in hits[:2]} == {str(sounds["red circle"]), str(indexed[1] / "clip.mp4")}
        assert all(h.matched == "sound" for h in hits)
        both = library.search(text="a red circle", audio=query, top=3)
        assert str(sounds["red circle"]) in [h.path for h in both]
    finally:
        library.close()


def test_a_sound_is_labelled_zero_shot_and_has_no_words_to_read(indexed):
    home, _, _, query, _, sounds, _ = indexed
    proc = run_clifs(home, "label", str(query), "--json", "--top", "3")  # the model's vocabulary and templates
    assert proc.returncode == 0, proc.stderr
    scores = json.loads(proc.stdout)
    assert scores[0]["label"] == "red circle" and scores[0]["fits"], scores
    proc = run_clifs(home, "text", str(sounds["blue square"]))
    assert proc.returncode == 2 and "is a sound: it has no pictures, so no words to read" in proc.stderr


def test_bad_sound_queries_are_one_line_and_exit_2(indexed, tmp_path):
    home, _, _, _, pictures, _, bad = indexed
    proc = run_clifs(home, "search", "--audio", str(bad["notes.mp3"]))
    assert proc.returncode == 2 and proc.stderr.strip().endswith("not an audio file: it holds text")
    assert "cannot read query sound" in proc.stderr and "Traceback" not in proc.stderr
    quiet = write_silence(tmp_path / "hush.wav")
    proc = run_clifs(home, "search", "--audio", str(quiet))
    assert proc.returncode == 2 and "silent" in proc.stderr
    proc = run_clifs(home, "search", "--audio", str(tmp_path))
    assert proc.returncode == 2 and "is a folder" in proc.stderr


@pytest.mark.slow  # the starter model, then the test model, each exported to ONNX on first use in a fresh home
def test_the_starter_model_passes_sounds_over_with_one_line_and_a_tower_model_indexes_them(tmp_path):
    folder, home = tmp_path / "library", tmp_path / "home"
    folder.mkdir()
    Image.new("RGB", (96, 96), (200, 30, 30)).save(folder / "red.png")
    write_object_sound(folder / "red_circle.mp3", "red", "circle", seconds=2.0)
    write_object_sound(folder / "blue_square.ogg", "blue", "square", seconds=2.0)
    proc = run_clifs(home, "index", str(folder), "--json", "--no-ocr", CLIFS_MODEL="starter")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)[0]
    assert summary["failed"] == [] and summary["audio_not_indexed"] == 2 and summary["indexed"] == 1
    assert "no audio model for the active model: 2 audio files not indexed" in proc.stderr
    listed = json.loads(run_clifs(home, "list", "--json", CLIFS_MODEL="starter").stdout)
    assert all(e["kind"] == "image" for e in listed)  # passed over, not recorded as failures

    proc = run_clifs(home, "index", str(folder), "--json", "--no-ocr")  # the test model has an audio tower
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)[0]
    assert summary["audio_not_indexed"] == 0 and summary["failed"] == []
    hits = _search(home, "a red circle", "--kind", "audio")
    assert Path(hits[0]["path"]).name == "red_circle.mp3"


@pytest.mark.slow  # loads the starter model in-process
def test_the_watcher_with_the_starter_model_passes_sounds_over_once_and_says_so(tmp_path):
    """The service puts back a file the pipeline did not finish: a passed-over sound must count as done."""
    from clifs.engine.library import Library
    from clifs.engine.models.registry import load_encoder
    from indexer.service import IndexerService

    folder, home = tmp_path / "library", tmp_path / "home"
    folder.mkdir()
    Image.new("RGB", (96, 96), (200, 30, 30)).save(folder / "red.png")
    write_object_sound(folder / "hum.flac", "red", "circle", seconds=2.0)
    service = IndexerService(Library(home, encoder=load_encoder("starter", device="cpu")), watch=False)
    service.add_folder(str(folder))
    service.start()
    try:
        assert service.wait_idle(timeout=300)
        status = service.status()
    finally:
        service.stop(timeout=60)
        service.library.close()
    assert status.failed == 0 and status.queued == 0 and status.done == 2
    assert ("(sound)", "no audio model for the active model: 1 audio file not indexed") in status.recent_errors
    catalog = Catalog(home / "catalog.sqlite3")
    try:
        assert [Path(f.path).name for f, _ in catalog.list_files()] == ["red.png"]  # passed over, not failed
    finally:
        catalog.close()
