"""Decoding and windowing real sound files (clifs.engine.audio): every container of issue 15, silence
skipped, long files bounded and spread, soundtracks of videos, and a readable reason for each bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clifs.engine.audio import read_sound, waveform
from clifs.engine.media import MediaError, kind_of
from devkit.shapes import scene_rng
from devkit.shapes_av import write_audio, write_shapes_video
from devkit.sounds import sound_for
from tests.audio_helpers import BAD_REASONS, RATE, write_bad_audio, write_silence, write_video_with_corrupt_soundtrack


def _tone_with_a_gap(seconds: float = 6.0) -> np.ndarray:
    """The red circle's sound for ``seconds``, silent from 2 s to 4 s."""
    sound = sound_for("red", "circle", seconds, RATE, scene_rng(0))
    sound[2 * RATE : 4 * RATE] = 0.0
    return sound


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3", ".ogg", ".m4a"])
def test_every_container_decodes_to_the_towers_rate_in_overlapping_windows_without_the_silence(tmp_path, suffix):
    path = write_audio(tmp_path / f"gap{suffix}", _tone_with_a_gap(), RATE)
    assert kind_of(path) == "audio"
    sound = read_sound(path, rate=16000, window_seconds=1.0)
    assert sound.duration == pytest.approx(6.0, abs=0.1)
    assert sound.windows.shape == (len(sound.starts), 16000) and sound.windows.dtype == np.float32
    assert np.abs(sound.windows).max() <= 1.0
    # every half second, except the windows that lie wholly inside the silent two seconds
    assert sound.starts[:4] == [0.0, 0.5, 1.0, 1.5]
    assert not any(2.05 <= t <= 2.95 for t in sound.starts), sound.starts
    assert any(t >= 4.0 for t in sound.starts)
    assert not sound.silent


def test_a_resampled_window_holds_the_same_pitch(tmp_path):
    """44.1 kHz in, 16 kHz out: a 440 Hz tone is still 440 Hz."""
    t = np.arange(3 * 44100) / 44100
    path = write_audio(tmp_path / "a.flac", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 44100)
    window = read_sound(path, rate=16000, window_seconds=1.0).windows[0]
    peak_hz = np.argmax(np.abs(np.fft.rfft(window))) * 16000 / len(window)
    assert peak_hz == pytest.approx(440, abs=2)


def test_a_long_sound_is_bounded_and_spread_over_its_whole_length(tmp_path):
    """Ten minutes with at most 40 windows: 40 windows from the start to the end, evenly spaced."""
    t = np.arange(600 * 8000) / 8000
    path = write_audio(tmp_path / "talk.wav", (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 8000)
    sound = read_sound(path, rate=16000, window_seconds=1.0, max_windows=40)
    assert len(sound.starts) == 40
    assert sound.starts[0] == 0.0 and sound.starts[-1] >= 590.0
    gaps = np.diff(sound.starts)
    assert gaps.min() == pytest.approx(gaps.max(), abs=0.1)


def test_a_sound_shorter_than_a_window_is_one_padded_window(tmp_path):
    path = write_audio(tmp_path / "blip.wav", sound_for("blue", "cross", 0.4, RATE, scene_rng(1)), RATE)
    sound = read_sound(path, rate=16000, window_seconds=1.0)
    assert sound.starts == [0.0] and sound.windows.shape == (1, 16000)
    assert np.all(sound.windows[0, 7000:] == 0.0)


def test_silence_is_no_error_and_has_no_windows(tmp_path):
    sound = read_sound(write_silence(tmp_path / "quiet.flac"), rate=16000, window_seconds=1.0)
    assert sound.silent and sound.starts == [] and sound.windows.shape == (0, 16000)
    assert sound.duration == pytest.approx(2.0, abs=0.05)


def test_a_videos_soundtrack_is_read_from_the_same_file(tmp_path):
    video = write_shapes_video(tmp_path / "v.mp4", [("green", "cross", 2.0), ("red", "circle", 2.0)])
    sound = read_sound(video, rate=16000, window_seconds=1.0, soundtrack=True)
    assert sound.duration == pytest.approx(4.0, abs=0.1)
    assert sound.starts[0] == 0.0 and sound.starts[-1] == 3.0

    mute = write_shapes_video(tmp_path / "mute.mp4", [("red", "circle", 2.0)], audio=False)
    assert read_sound(mute, rate=16000, window_seconds=1.0, soundtrack=True) is None  # a silent film: no news
    with pytest.raises(MediaError, match="no audio stream"):
        read_sound(mute, rate=16000, window_seconds=1.0)  # but not a sound file


def test_a_corrupt_soundtrack_is_a_readable_error(tmp_path):
    video = write_video_with_corrupt_soundtrack(tmp_path / "v.mp4")
    with pytest.raises(MediaError, match="no decodable audio"):
        read_sound(video, rate=16000, window_seconds=1.0, soundtrack=True)


def test_each_bad_input_has_its_own_reason(tmp_path):
    files = write_bad_audio(tmp_path)
    for name, path in files.items():
        with pytest.raises(MediaError) as caught:
            read_sound(path, rate=16000, window_seconds=1.0)
        assert str(caught.value).startswith(BAD_REASONS[name]), (name, str(caught.value))
        assert "Traceback" not in str(caught.value) and "\n" not in str(caught.value)


def test_the_waveform_thumbnail_follows_the_sound(tmp_path):
    path = write_audio(tmp_path / "gap.ogg", _tone_with_a_gap(), RATE)
    peaks, seconds = waveform(path, points=60)
    assert seconds == pytest.approx(6.0, abs=0.05)
    assert peaks.shape == (60,) and 0.0 <= peaks.min() and peaks.max() <= 1.0
    assert peaks[25:35].max() < 0.01 < peaks[:15].min()  # the silent third is flat, the sound is not


def test_a_fifo_is_refused_without_opening_it(tmp_path):
    fifo = Path(tmp_path / "pipe.wav")
    import os

    os.mkfifo(fifo)
    with pytest.raises(MediaError, match="not a regular file"):
        read_sound(fifo, rate=16000, window_seconds=1.0)
