"""The shipped test audio tower is genuinely trained: measured on held-out shapes-world sounds.

Sounds land in the frozen shapes-vit-tiny space, so text reaches them through the image model's
text tower and they reach pictures and video frames. Floors sit just under what the committed
checkpoint measures (README, "Sound: audio towers"); seeds are at or above HELD_OUT_SEED_BASE.
audio-core tests the same through the index and the CLI; here the embeddings alone.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from clifs.engine.models import audio_shapes
from clifs.engine.models.audio_registry import load_audio_encoder
from devkit.evaluate_audio import (
    sound_gallery,
    text_to_sound_precision_at_k,
    text_to_sound_recall_at_1,
    zero_shot_sound_accuracy,
)
from devkit.shapes import HELD_OUT_SEED_BASE, scene_rng
from devkit.shapes_av import write_shapes_video
from devkit.sounds import sound_for

RECALL_AT_1_FLOOR = 0.95  # measured 1.000 over 240 sounds (the issue asks 0.8)
PRECISION_AT_10_FLOOR = 0.95  # measured 1.000
ZERO_SHOT_FLOOR = 0.95  # measured 1.000 with the ensemble and with a single template


@pytest.fixture(scope="module")
def tower(test_encoder):
    return load_audio_encoder(test_encoder, device="cpu")


@pytest.fixture(scope="module")
def gallery(tower):
    return sound_gallery(tower, per_object=10)


def test_text_finds_the_matching_sounds_first(test_encoder, gallery):
    assert len(gallery.names) == 240
    assert text_to_sound_recall_at_1(test_encoder, gallery) >= RECALL_AT_1_FLOOR
    assert text_to_sound_precision_at_k(test_encoder, gallery, k=10) >= PRECISION_AT_10_FLOOR


def test_zero_shot_sound_labels_with_the_picture_prompt_ensembles(test_encoder, gallery):
    accuracy = zero_shot_sound_accuracy(test_encoder, gallery, "ensemble")
    assert accuracy["object"] >= ZERO_SHOT_FLOOR, accuracy


def _frames(path: Path) -> tuple[list, np.ndarray]:
    """Every decoded frame as a PIL image, and its time in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [(f.to_image(), float(f.time)) for f in container.decode(stream)]
    return [f for f, _ in frames], np.array([t for _, t in frames])


def _soundtrack(path: Path, rate: int) -> np.ndarray:
    """The video's audio, decoded and resampled to ``rate`` Hz mono float32."""
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks = [r.to_ndarray().reshape(-1) for f in container.decode(audio=0) for r in resampler.resample(f)]
        chunks += [r.to_ndarray().reshape(-1) for r in resampler.resample(None)]
    return np.concatenate(chunks)


SEGMENTS = [("red", "circle", 2.0), ("blue", "square", 2.0), ("green", "triangle", 2.0), ("none", "none", 1.0),
            ("yellow", "cross", 2.0), ("red", "square", 2.0)]  # fmt: skip


def _segment_at(t: float) -> int:
    ends = np.cumsum([s for _, _, s in SEGMENTS])
    return int(np.searchsorted(ends, t, side="right"))


def test_a_sound_finds_its_moment_in_a_video(tmp_path, test_encoder, tower):
    video = write_shapes_video(tmp_path / "shapes.mp4", SEGMENTS, seed=HELD_OUT_SEED_BASE + 77)
    images, times = _frames(video)
    frames = test_encoder.encode_pil(images)
    rng = scene_rng(HELD_OUT_SEED_BASE + 78)
    for i, (colour, shape, _) in enumerate(SEGMENTS):
        if colour == "none":
            continue
        query = tower.encode_audio(sound_for(colour, shape, tower.window_seconds, tower.sample_rate, rng)[None])
        best = float(times[(frames @ query[0]).argmax()])
        assert _segment_at(best) == i, f"the {colour} {shape} sound found the frame at {best:.1f} s"


def test_the_videos_own_soundtrack_matches_its_pictures(tmp_path, test_encoder, tower):
    """Each one-second window of the decoded AAC soundtrack inside an object's segment is closest to a
    frame of that segment: the tower works on real decoded audio, not only on synthesised arrays."""
    video = write_shapes_video(tmp_path / "shapes.mp4", SEGMENTS, seed=HELD_OUT_SEED_BASE + 79)
    images, times = _frames(video)
    frames = test_encoder.encode_pil(images)
    sound = _soundtrack(video, tower.sample_rate)
    starts = np.arange(0, len(sound) - tower.window_samples + 1, tower.sample_rate // 2)
    windows = np.stack([sound[s : s + tower.window_samples] for s in starts])
    found = times[(tower.encode_audio(windows) @ frames.T).argmax(axis=1)]
    checked = 0
    for start, t in zip(starts / tower.sample_rate, found):
        segment = _segment_at(start)
        if segment == _segment_at(start + tower.window_seconds - 1e-3) and SEGMENTS[segment][0] != "none":
            assert _segment_at(float(t)) == segment, f"the window at {start:.1f} s found the frame at {t:.1f} s"
            checked += 1
    assert checked >= 8


def test_the_shipped_graph_is_the_shipped_weights(tower):
    """assets/ holds the trained weights and the ONNX graph indexing runs: they must be the same tower."""
    import torch

    from clifs.engine.models.audio_shapes_net import load_net

    rng = scene_rng(HELD_OUT_SEED_BASE + 80)
    windows = np.stack([sound_for("purple", "triangle", 1.0, 16000, rng), rng.normal(0, 0.1, 16000).astype(np.float32)])
    with torch.no_grad():
        expected = load_net(audio_shapes.WEIGHTS)(torch.from_numpy(audio_shapes.features(windows))).numpy()
    assert np.allclose(tower.encode_audio(windows), expected, atol=1e-5)


def test_the_cpu_runtime_embeds_sounds_without_torch(tmp_path, test_encoder, tower):
    """On a CPU, indexing runs the exported image model on ONNX Runtime; its audio tower binds to it by
    model id, and the whole of it (features, graph) runs in a process that never imports torch."""
    import subprocess
    import sys

    from clifs.engine.models import model_cache
    from tests.conftest import TEST_MODEL

    assert model_cache.store(tmp_path, TEST_MODEL, test_encoder)
    windows = np.stack([sound_for(c, s, 1.0, 16000, scene_rng(HELD_OUT_SEED_BASE + 81 + i))
                        for i, (c, s) in enumerate([("red", "circle"), ("blue", "cross")])])  # fmt: skip
    np.save(tmp_path / "windows.npy", windows)
    script = f"""
import sys, numpy as np
from pathlib import Path
from clifs.engine.models import model_cache
from clifs.engine.models.audio_registry import load_audio_encoder
image = model_cache.load(Path({str(tmp_path)!r}), {TEST_MODEL!r})
tower = load_audio_encoder(image)
np.save({str(tmp_path / "out.npy")!r}, tower.encode_audio(np.load({str(tmp_path / "windows.npy")!r})))
print(type(image).__name__, "torch" in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["OnnxEncoder", "False"]
    assert np.allclose(np.load(tmp_path / "out.npy"), tower.encode_audio(windows), atol=1e-5)
