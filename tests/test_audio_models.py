"""Audio towers: the shapes world's soundtrack and media, the registry that binds a tower to an image
model, and each tower's loader on real files (the shipped test tower; random weights in the real
layouts for the towers whose weights cannot be had here)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from clifs.engine.models.audio_registry import audio_binding, load_audio_encoder
from clifs.engine.models.base import ModelUnavailable
from devkit.shapes import COLOURS, HELD_OUT_SEED_BASE, SHAPES, scene_rng
from devkit.shapes_av import AUDIO_FORMATS, write_audio, write_shapes_video
from devkit.sounds import PITCH_HZ, sound_for

RATE = 16000


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """All of a file's first audio stream as mono float32, and its rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = [f.to_ndarray().reshape(-1) for f in container.decode(stream)]
        return np.concatenate(chunks).astype(np.float32), stream.rate


def _peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


def test_every_object_has_its_own_pitch_and_rhythm():
    rng = scene_rng(HELD_OUT_SEED_BASE)
    for colour in COLOURS:
        for shape in SHAPES:
            sound = sound_for(colour, shape, 2.0, RATE, rng)
            assert sound.dtype == np.float32 and sound.shape == (2 * RATE,) and np.abs(sound).max() <= 1
            # the loudest partial is the colour's note, within half a semitone
            assert abs(np.log2(_peak_hz(sound, RATE) / PITCH_HZ[colour]) * 12) <= 0.6, (colour, shape)
    # the shape's rhythm: the envelope of a steady tone barely moves, that of beeps and plucks does
    envelope = {s: np.abs(sound_for("red", s, 2.0, RATE, rng)).reshape(-1, 160).max(axis=1) for s in SHAPES}
    steady = {s: float(envelope[s].std() / envelope[s].mean()) for s in SHAPES}
    assert max(steady["circle"], steady["square"]) < 0.1 < 0.4 < min(steady["triangle"], steady["cross"])


def test_sounds_vary_but_repeat_for_a_seed():
    a = sound_for("blue", "cross", 1.0, RATE, scene_rng(5))
    assert np.array_equal(a, sound_for("blue", "cross", 1.0, RATE, scene_rng(5)))
    assert not np.allclose(a, sound_for("blue", "cross", 1.0, RATE, scene_rng(6)))
    with pytest.raises(ValueError, match="unknown colour 'pink'"):
        sound_for("pink", "cross", 1.0, RATE, scene_rng(5))


@pytest.mark.parametrize("suffix", sorted(AUDIO_FORMATS))
def test_audio_files_in_every_format_decode_back(tmp_path, suffix):
    sound = sound_for("green", "circle", 1.5, RATE, scene_rng(1))
    decoded, rate = _decode(write_audio(tmp_path / f"green{suffix}", sound, RATE))
    assert abs(len(decoded) / rate - 1.5) < 0.15  # codecs pad a frame or two
    assert abs(_peak_hz(decoded, rate) - _peak_hz(sound, RATE)) < 3


def test_shapes_video_shows_and_sounds_each_segment(tmp_path):
    import cv2

    path = write_shapes_video(
        tmp_path / "v.mp4", [("red", "circle", 2.0), ("none", "none", 1.0), ("blue", "square", 2.0)]
    )
    cap = cv2.VideoCapture(str(path))
    frames = []
    while (ok := cap.read())[0]:
        frames.append(ok[1][..., ::-1])
    assert len(frames) == 50  # 5 s at 10 fps
    red, blue = np.array(COLOURS["red"]), np.array(COLOURS["blue"])
    near = lambda frame, rgb: (np.abs(frame.astype(int) - rgb).sum(axis=2) < 60).mean()  # noqa: E731
    assert near(frames[10], red) > 0.03 and near(frames[40], blue) > 0.03 and near(frames[25], red) < 0.01
    sound, rate = _decode(path)
    assert abs(_peak_hz(sound[: rate * 2], rate) - PITCH_HZ["red"]) < 15
    assert abs(_peak_hz(sound[rate * 3 : rate * 5], rate) - PITCH_HZ["blue"]) < 30
    assert np.abs(sound[int(rate * 2.2) : int(rate * 2.8)]).max() < 0.05  # the empty scene is nearly silent
    mute = write_shapes_video(tmp_path / "mute.mp4", [("red", "circle", 1.0)], audio=False)
    with av.open(str(mute)) as container:
        assert not container.streams.audio


def test_the_test_model_has_its_audio_tower(test_encoder):
    tower = load_audio_encoder(test_encoder, device="cpu")
    assert tower is not None and tower.image_model_id == test_encoder.model_id and tower.dim == test_encoder.dim
    assert tower.model_id.startswith("shapes-audio-tiny:") and "shapes-vit-tiny" in tower.display_name
    windows = np.stack(
        [sound_for("red", "circle", tower.window_seconds, tower.sample_rate, scene_rng(i)) for i in range(3)]
    )
    out = tower.encode_audio(windows)
    assert out.shape == (3, 64) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    assert tower.encode_audio(np.zeros((0, tower.window_samples), np.float32)).shape == (0, 64)
    with pytest.raises(ValueError, match=r"takes \(n, 16000\) windows \(1.0 s at 16000 Hz\), got shape \(3, 8000\)"):
        tower.encode_audio(windows[:, :8000])


def test_models_without_a_bound_tower_get_none():
    from clifs.engine.models.registry import load_encoder

    starter = load_encoder("starter", device="cpu")
    assert audio_binding(starter) is None and load_audio_encoder(starter) is None
    assert audio_binding("openclip:ViT-B-32:laion2b_s34b_b79k:abc") is None  # another CLIP's space: no tower


def test_a_missing_or_mismatched_test_tower_is_one_clear_message(tmp_path, test_encoder):
    from clifs.engine.models import audio_shapes

    with pytest.raises(
        ModelUnavailable, match=r"test audio tower's file .*gone\.safetensors is missing; .*devkit.train_audio"
    ):
        audio_shapes.load(test_encoder.model_id, 64, weights=tmp_path / "gone.safetensors")
    with pytest.raises(
        ModelUnavailable, match=r"trained against image model openclip:shapes-vit-tiny:.*not the active other"
    ):
        audio_shapes.load("other", 64)


def test_log_mel_of_a_crop_is_a_slice_of_the_whole():
    """Training crops the features of longer sounds; that equals featurising the cropped samples."""
    from clifs.engine.models.audio_features import log_mel

    sound = sound_for("orange", "triangle", 1.5, RATE, scene_rng(2))[None]
    whole = log_mel(sound, RATE, 400, 160, 40)
    crop = log_mel(sound[:, 160 * 7 : 160 * 7 + RATE], RATE, 400, 160, 40)
    assert crop.shape == (1, 40, 98) and np.allclose(crop, whole[:, :, 7 : 7 + 98], atol=1e-4)
    with pytest.raises(ValueError, match="shorter than one FFT frame"):
        log_mel(sound[:, :100], RATE, 400, 160, 40)
