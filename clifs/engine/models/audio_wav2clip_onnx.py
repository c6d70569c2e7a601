"""Wav2CLIP without torch: its spectrogram in numpy and its network exported to ONNX, for indexing on a CPU.

The first load of Wav2CLIP on a CPU with a cache folder (torch, clifs.engine.models.audio_wav2clip)
exports the network after the spectrogram to ``<cache>/audio/wav2clip-<key>/`` and checks it
against torch on probe sounds; later loads find that record, check the weights file is unchanged
(size and mtime), and run it on ONNX Runtime without importing torch. Also where the checkpoint is
looked for and its identity, which need no torch either.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from clifs.engine.models.audio_base import AudioEncoder

NAME = "wav2clip"
SAMPLE_RATE = 16000
#: The length of one embedded window: Wav2CLIP pools over any length; five seconds keep moments findable.
WINDOW_SECONDS = 5.0
N_FFT = 512
HOP = 353
CHECKPOINT = "Wav2CLIP.pt"
RELEASE = "https://github.com/descriptinc/lyrebird-wav2clip/releases/download/v0.1.0-alpha/Wav2CLIP.pt"
ENV = "CLIFS_WAV2CLIP"
DISPLAY_NAME = "Wav2CLIP (bound to CLIP ViT-B-32 openai)"
#: Bump when the record's layout or the exported computation changes: older records are ignored.
FORMAT = 1
GRAPH = "wav2clip.onnx"
_META = "meta.json"


def _torch_hub_checkpoints() -> Path:
    """torch.hub.get_dir()/checkpoints, without asking torch (TORCH_HOME, else XDG_CACHE_HOME/torch)."""
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(home).expanduser() / "hub" / "checkpoints"


def weights_path() -> Path:
    """Where the checkpoint is looked for: $CLIFS_WAV2CLIP, else torch hub's cache."""
    return Path(os.environ[ENV]).expanduser() if os.environ.get(ENV) else _torch_hub_checkpoints() / CHECKPOINT


def checksum(path: Path) -> str:
    """Size plus a hash of the first MiB: the identity of a weights file, cheaply."""
    with path.open("rb") as f:
        return hashlib.sha1(str(path.stat().st_size).encode() + f.read(1 << 20)).hexdigest()[:12]


def log_spectrogram(windows: np.ndarray) -> np.ndarray:
    """(n, samples) -> (n, 1, 257, frames) float32: torchaudio's Spectrogram(n_fft=512, hop=353) (centred,
    reflected, periodic Hann, power 2), log(x + 1e-7), each window to mean 0 and (unbiased) std 1."""
    pad = N_FFT // 2
    x = np.pad(np.asarray(windows, np.float64), ((0, 0), (pad, pad)), mode="reflect")
    frames = 1 + (x.shape[1] - N_FFT) // HOP
    framed = np.lib.stride_tricks.sliding_window_view(x, N_FFT, axis=1)[:, ::HOP][:, :frames]
    spectrum = np.fft.rfft(framed * np.hanning(N_FFT + 1)[:-1], axis=-1)
    spec = np.log(spectrum.real**2 + spectrum.imag**2 + 1e-7).transpose(0, 2, 1)
    mean = spec.mean(axis=(1, 2), keepdims=True)
    std = spec.std(axis=(1, 2), keepdims=True, ddof=1)
    return ((spec - mean) / (std + 1e-9))[:, None].astype(np.float32)


def record_dir(cache_dir: Path, weights: Path) -> Path:
    return cache_dir / "audio" / f"{NAME}-{hashlib.sha1(str(weights.resolve()).encode()).hexdigest()[:12]}"


def source_stamp(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


class OnnxWav2Clip(AudioEncoder):
    """The exported network on ONNX Runtime, fed by the numpy spectrogram."""

    sample_rate = SAMPLE_RATE
    window_seconds = WINDOW_SECONDS
    dim = 512
    display_name = DISPLAY_NAME

    def __init__(self, graph: Path, model_id: str, image_model_id: str, threads: int = 0):
        from clifs.engine.models.onnx_runtime import _LazySession

        self._session = _LazySession(graph, threads)
        self.model_id = model_id
        self.image_model_id = image_model_id

    def encode_audio(self, windows: np.ndarray) -> np.ndarray:
        windows = self.check_windows(windows)
        if len(windows) == 0:
            return np.zeros((0, self.dim), np.float32)
        return self._session.run({"spectrogram": log_spectrogram(windows)}).astype(np.float32)


def load_record(cache_dir: Path, image_model_id: str, weights: Path | None = None) -> OnnxWav2Clip | None:
    """The exported tower for the weights at ``weights`` (default weights_path()), or None when there is no
    valid record (the caller loads the torch tower, which writes one)."""
    weights = weights or weights_path()
    folder = record_dir(cache_dir, weights)
    try:
        meta = json.loads((folder / _META).read_text())
        fresh = (
            meta["format"] == FORMAT
            and meta["source"] == source_stamp(weights)
            and (folder / GRAPH).stat().st_size == meta["graph_size"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not fresh:
        return None
    return OnnxWav2Clip(folder / GRAPH, meta["model_id"], image_model_id)


def write_meta(folder: Path, model_id: str, weights: Path) -> None:
    meta = {"format": FORMAT, "model_id": model_id, "source": source_stamp(weights),
            "graph_size": (folder / GRAPH).stat().st_size}  # fmt: skip
    (folder / _META).write_text(json.dumps(meta, indent=1))
