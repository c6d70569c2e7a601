"""The trained shapes-world audio tower (devkit/train_audio.py), bound to the ``shapes-vit-tiny`` test model.

It ships as ``assets/models/shapes-audio-tiny.onnx`` (the graph indexing runs, on ONNX Runtime,
without torch) next to ``shapes-audio-tiny.safetensors`` (the trained weights the graph was exported
from; their metadata names the image model id the tower was trained against). Features are log-mel
frames computed in numpy, normalised per window (so loudness does not matter).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from clifs.engine.assets import test_model_weights
from clifs.engine.models.audio_base import AudioEncoder, ModelUnavailable
from clifs.engine.models.audio_features import log_mel

NAME = "shapes-audio-tiny"
WEIGHTS = test_model_weights(NAME)
GRAPH = WEIGHTS.with_suffix(".onnx")
SAMPLE_RATE = 16000
WINDOW_SECONDS = 1.0
WINDOW_SAMPLES = round(SAMPLE_RATE * WINDOW_SECONDS)
N_FFT = 400
HOP = 160
N_MELS = 40
RETRAIN = "a checkout can retrain it with `python -m devkit.train_audio`"


def features(windows: np.ndarray) -> np.ndarray:
    """(n, samples) -> (n, N_MELS, frames) log-mel, each window shifted and scaled to mean 0, std 1."""
    mel = log_mel(windows, SAMPLE_RATE, N_FFT, HOP, N_MELS)
    mean = mel.mean(axis=(1, 2), keepdims=True)
    std = mel.std(axis=(1, 2), keepdims=True)
    return ((mel - mean) / (std + 1e-5)).astype(np.float32)


def trained_against(weights: Path) -> str:
    """The image model id recorded in the weights' metadata at training time."""
    from safetensors import safe_open

    with safe_open(str(weights), framework="numpy") as f:
        return (f.metadata() or {}).get("image_model_id", "")


class ShapesAudioEncoder(AudioEncoder):
    """The exported tower on ONNX Runtime."""

    sample_rate = SAMPLE_RATE
    window_seconds = WINDOW_SECONDS

    def __init__(self, graph: Path, image_model_id: str, dim: int, threads: int = 0):
        from clifs.engine.models.onnx_runtime import _LazySession

        self._session = _LazySession(graph, threads)
        self.image_model_id = image_model_id
        self.dim = dim
        self.model_id = f"{NAME}:{hashlib.sha1(graph.read_bytes()).hexdigest()[:12]}"
        self.display_name = "shapes-audio-tiny (test audio tower, bound to shapes-vit-tiny)"

    def encode_audio(self, windows: np.ndarray) -> np.ndarray:
        windows = self.check_windows(windows)
        if len(windows) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = self._session.run({"mel": features(windows)})
        return (out / np.linalg.norm(out, axis=1, keepdims=True).clip(1e-12)).astype(np.float32)


def load(
    image_model_id: str, dim: int, weights: Path | None = None, graph: Path | None = None, threads: int = 0
) -> ShapesAudioEncoder:
    """The shipped tower for the test model whose id is ``image_model_id``; ModelUnavailable when it cannot be used.

    ``threads``: ONNX Runtime's intra-op threads (0: one per core)."""
    weights = weights or WEIGHTS
    graph = graph or weights.with_suffix(".onnx")
    for path in (weights, graph):
        if not path.is_file():
            raise ModelUnavailable(f"The test audio tower's file {path} is missing; {RETRAIN}.")
    try:
        recorded = trained_against(weights)
    except Exception as exc:  # safetensors raises its own error type for a torn or foreign file
        raise ModelUnavailable(f"The test audio tower's file {weights} cannot be read ({exc}); {RETRAIN}.") from None
    if recorded != image_model_id:
        raise ModelUnavailable(
            f"The test audio tower {weights.name} was trained against image model {recorded or 'unknown'}, "
            f"not the active {image_model_id}; {RETRAIN}."
        )
    tower = ShapesAudioEncoder(graph, image_model_id, dim, threads)
    try:
        tower._session.get()  # a damaged graph fails here, with a message, not in the middle of indexing
    except Exception as exc:  # ONNX Runtime raises its own error types
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelUnavailable(
            f"The test audio tower's graph {graph} cannot be read ({first_line}); {RETRAIN}."
        ) from None
    return tower
