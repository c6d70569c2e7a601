"""Video moments on generated videos with exact ground truth, the demo clips, and bad video files.

Generated with OpenCV's VideoWriter (mp4v and MJPG ship with opencv-python-headless).
``data/audio-only.mp4`` is a real AAC-in-MP4 file with no video track (916 bytes), made with
``ffmpeg -f lavfi -i anullsrc=r=8000:cl=mono -t 1 -c:a aac -b:a 8k audio-only.mp4``.
"""

from __future__ import annotations

import json
import shutil
import wave
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from clifs.engine.library import Library
from clifs.engine.media import MediaError
from clifs.engine.video import sample_frames, sample_times
from devkit.shapes import HELD_OUT_SEED_BASE, render_scene, scene_rng
from indexer.service import IndexerService
from tests.conftest import run_clifs

DATA = Path(__file__).parent / "data"
DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo"
DEMO_CLIPS = sorted(p for p in DEMO.glob("*") if p.suffix in (".mp4", ".mpg"))


def write_video(path: Path, frame_at: Callable[[float], np.ndarray], seconds: float, fps: float, fourcc: str) -> None:
    """``frame_at(t)`` gives the RGB picture at ``t`` seconds."""
    first = frame_at(0.0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (first.shape[1], first.shape[0]))
    assert writer.isOpened()
    for i in range(round(seconds * fps)):
        writer.write(cv2.cvtColor(frame_at(i / fps), cv2.COLOR_RGB2BGR))
    writer.release()


def _scene(seed: int, size: int, **kwargs) -> np.ndarray:
    return np.asarray(render_scene(scene_rng(HELD_OUT_SEED_BASE + seed), size, **kwargs).image)


def shape_between(path: Path, colour: str, shape: str, start: float, end: float, fourcc: str = "mp4v") -> None:
    """An 8 s clip of one background where a ``colour shape`` is on screen only in [start, end)."""
    empty = _scene(700, 96, n_objects=0)
    shown = _scene(700, 96, n_objects=1, colours=(colour,), shapes=(shape,))  # same background (same seed)
    write_video(path, lambda t: shown if start <= t < end else empty, seconds=8, fps=5, fourcc=fourcc)


def static_slides(path: Path) -> None:
    """Ten minutes at 2 fps, 64x64, three 'slides' changing at 200 s and 400 s."""
    slides = [_scene(710 + i, 64, n_objects=1, colours=("green",), shapes=("square", "triangle")) for i in range(3)]
    write_video(path, lambda t: slides[min(int(t // 200), 2)], seconds=600, fps=2, fourcc="mp4v")


def bad_videos(folder: Path) -> dict[str, str]:
    """name -> the reason it must be recorded with."""
    folder.mkdir(parents=True)
    (folder / "zero-bytes.mp4").write_bytes(b"")
    shape_between(folder / "whole.mp4", "red", "circle", 3, 5)
    whole = (folder / "whole.mp4").read_bytes()
    (folder / "whole.mp4").unlink()
    (folder / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    (folder / "text.mp4").write_text("not a video, just words\n" * 20)
    with wave.open(str(folder / "sound.mp4"), "wb") as w:  # WAV audio under a video name
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 8000)
    shutil.copy(DATA / "audio-only.mp4", folder / "audio-only.mp4")
    shape_between(folder / "no-frames.avi", "blue", "square", 1, 2, fourcc="MJPG")
    avi = bytearray((folder / "no-frames.avi").read_bytes())
    at = avi.find(b"00dc")
    while at >= 0:  # blank every JPEG frame: the container is fine, no frame decodes
        size = int.from_bytes(avi[at + 4 : at + 8], "little")
        avi[at + 8 : at + 8 + size] = bytes(size)
        at = avi.find(b"00dc", at + 8 + size)
    (folder / "no-frames.avi").write_bytes(bytes(avi))
    return {
        "zero-bytes.mp4": "empty file (0 bytes)",
        "truncated.mp4": "truncated MP4/MOV: the file ends inside its 'mdat' box",
        "text.mp4": "not a video (unrecognised content)",
        "sound.mp4": "a WAV audio file, not a video",
        "audio-only.mp4": "audio only: the MP4/MOV has no video track",
        "no-frames.avi": "no readable frames",
    }


# -- sampling, no model -------------------------------------------------------------------------
def test_sample_times_are_by_time_and_bounded():
    assert sample_times(4.0, 1.0, 600) == [0.0, 1.0, 2.0, 3.0]
    long = sample_times(7200.0, 1.0, 600)  # a two-hour film: 600 samples spread over all of it
    assert len(long) == 600 and long[0] == 0.0 and long[-1] == pytest.approx(7188.0)


def test_timestamps_are_seconds_at_29_97_fps(tmp_path):
    """CLIFS's `frame % fps == 0` keeps almost nothing at 29.97 fps; sampling by time keeps every second."""
    path = tmp_path / "ntsc.mp4"
    write_video(path, lambda t: np.full((32, 32, 3), int(t) * 40 % 256, np.uint8), 10, 30000 / 1001, "mp4v")
    times = [t for t, _ in sample_frames(path).frames]
    assert len(times) == 10
    assert all(i <= t < i + 1 / 29.97 + 1e-3 for i, t in enumerate(times))


def test_scene_changes_only(tmp_path):
    red = tmp_path / "red.mp4"
    shape_between(red, "red", "circle", 3, 5)
    video = sample_frames(red)
    assert [t for t, _ in video.frames] == [0.0, 3.0, 5.0]  # background, circle appears, circle gone
    assert (video.width, video.height, video.duration) == (96, 96, 8.0)


def test_ten_static_minutes_make_a_handful_of_frames(tmp_path):
    slides = tmp_path / "lecture.mp4"
    static_slides(slides)
    assert [t for t, _ in sample_frames(slides).frames] == [0.0, 200.0, 400.0]
    # Past max_frames the samples spread out; across such gaps the reader seeks.
    assert [t for t, _ in sample_frames(slides, max_frames=20).frames] == [0.0, 210.0, 420.0]


def test_bad_videos_have_readable_reasons(tmp_path):
    for name, reason in bad_videos(tmp_path / "bad").items():
        with pytest.raises(MediaError) as caught:
            sample_frames(tmp_path / "bad" / name)
        assert str(caught.value).startswith(reason), name


# -- end to end ---------------------------------------------------------------------------------
def test_video_moments_through_the_service_and_the_cli(tmp_path, clifs_home, test_encoder):
    videos, demo, bad = tmp_path / "videos", tmp_path / "demo", tmp_path / "bad"
    videos.mkdir()
    shape_between(videos / "red-circle.mp4", "red", "circle", 3, 5)
    shape_between(videos / "blue-square.avi", "blue", "square", 1, 6, fourcc="MJPG")
    static_slides(videos / "lecture.mp4")
    demo.mkdir()
    for clip in DEMO_CLIPS:
        shutil.copy(clip, demo / clip.name)
    reasons = bad_videos(bad)
    del reasons["audio-only.mp4"]  # the test model has an audio tower: an MP4 holding only sound is a sound

    clifs_home.mkdir(parents=True)
    (clifs_home / "config.toml").write_text("batch_size = 16\ndecode_workers = 2\ntorch_threads = 1\n")
    service = IndexerService(Library(clifs_home, encoder=test_encoder), watch=False)
    for folder in (videos, demo, bad):
        service.add_folder(str(folder))
    service.start()
    try:
        assert service.wait_idle(timeout=300)
    finally:
        service.stop(timeout=60)
        service.library.close()
    assert service.status().failed == len(reasons)

    proc = run_clifs(clifs_home, "search", "a red circle", "--kind", "video", "--in", str(videos), "--json")
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert hits[0]["path"] == str(videos / "red-circle.mp4") and hits[0]["kind"] == "video"
    assert 3.0 <= hits[0]["timestamp"] <= 5.0
    assert [h["path"] for h in hits].count(hits[0]["path"]) == 1  # frames collapse to one hit per video
    assert sorted(m["timestamp"] for m in hits[0]["moments"]) == [0.0, 5.0]  # its other moments ride along

    proc = run_clifs(clifs_home, "list", "--json")
    assert proc.returncode == 0, proc.stderr
    listed = {Path(e["path"]).name: e for e in json.loads(proc.stdout)}
    assert listed["red-circle.mp4"]["items"] == 3
    assert listed["blue-square.avi"]["items"] == 3
    assert listed["lecture.mp4"]["items"] == 3  # ten static minutes: three slides, not 600 frames
    for clip in DEMO_CLIPS:  # real clips: at most one kept frame per second of video
        entry, capture = listed[clip.name], cv2.VideoCapture(str(clip))
        seconds = capture.get(cv2.CAP_PROP_FRAME_COUNT) / capture.get(cv2.CAP_PROP_FPS)
        frames = entry["items"] - entry["sounds"]  # the test model's audio tower adds the soundtrack's windows
        assert entry["status"] == "ok" and 1 <= frames <= int(seconds) + 1, entry
    for name, reason in reasons.items():
        assert listed[name]["status"] == "failed" and listed[name]["error"].startswith(reason), listed[name]
    memo = listed["audio-only.mp4"]  # one second of digital silence, indexed as a sound
    assert (memo["kind"], memo["status"], memo["items"], memo["sound"]) == ("audio", "ok", 0, "silent"), memo
