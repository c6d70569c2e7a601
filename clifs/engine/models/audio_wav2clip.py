"""Wav2CLIP (Wu et al. 2022, MIT): a ResNet-18 over a log spectrogram, distilled from OpenAI CLIP ViT-B/32,
so it is bound to ``ViT-B-32:openai``.

The modules here reproduce the layout of the published checkpoint (``Wav2CLIP.pt``, the
``lyrebird-wav2clip`` v0.1.0-alpha release) as the ``wav2clip`` package's code defines it:
``audio_encoder.*`` is its ResNet (torchvision's ResNet-18 layout with a one-channel stem, plus the
``spectrogram.window`` buffer of torchaudio's Spectrogram) and ``audio_transform.sequential.{0,3}``
its two-layer MLP. The ``wav2clip`` wheel itself is not a dependency: it pulls torchaudio and
librosa (and with them another torch), so the spectrogram is computed here with ``torch.stft``
(n_fft 512, hop 353, periodic Hann, centred with reflection, power 2), as torchaudio does.

One deliberate difference: the original normalises the log spectrogram by the mean and std of the
whole batch; here each window is normalised on its own, which equals the original on one clip
(its ``embed_audio`` of a single sound) and keeps a window's vector independent of its batch.

Weights are read from ``CLIFS_WAV2CLIP`` (a path to the .pt or a .safetensors of the same tensors)
or torch hub's cache, where ``wav2clip.get_model()`` downloads them; safely either way
(``torch.load(weights_only=True)`` or safetensors). On a CPU, ``store`` exports the network after the
spectrogram for ONNX Runtime (clifs.engine.models.audio_wav2clip_onnx), so later runs need no torch.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from clifs.engine.atomic_files import remove_leftovers, temp_path
from clifs.engine.models.audio_base import AudioEncoder, ModelUnavailable
from clifs.engine.models.audio_wav2clip_onnx import (
    DISPLAY_NAME,
    ENV,
    GRAPH,
    HOP,
    N_FFT,
    NAME,
    RELEASE,
    SAMPLE_RATE,
    WINDOW_SECONDS,
    OnnxWav2Clip,
    checksum,
    log_spectrogram,
    record_dir,
    weights_path,
    write_meta,
)
from clifs.engine.models.base import pick_device

log = logging.getLogger(__name__)
#: Probe windows a new export must embed as torch does, within this (max abs difference).
PROBE_TOLERANCE = 1e-4


class Wav2ClipResNet(nn.Module):
    """The ``audio_encoder`` of the checkpoint: log spectrogram -> ResNet-18 (one input channel) -> (B, 512)."""

    def __init__(self):
        super().__init__()
        from torchvision.models.resnet import BasicBlock, ResNet

        self.spectrogram = nn.Module()  # holds the checkpoint's "spectrogram.window" buffer
        self.spectrogram.register_buffer("window", torch.hann_window(N_FFT))
        resnet = ResNet(BasicBlock, [2, 2, 2, 2])
        resnet.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool"):
            setattr(self, name, getattr(resnet, name))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.trunk(self.log_spectrogram(audio))

    def log_spectrogram(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, samples) -> (B, 1, 257, frames), normalised per window (audio_wav2clip_onnx.log_spectrogram in numpy)."""
        spec = torch.stft(audio, N_FFT, hop_length=HOP, window=self.spectrogram.window, center=True,
                          pad_mode="reflect", return_complex=True).abs().pow(2)  # fmt: skip
        x = torch.log(spec.unsqueeze(1) + 1e-7)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True)
        return (x - mean) / (std + 1e-9)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)


class Wav2ClipMLP(nn.Module):
    """The ``audio_transform`` of the checkpoint: Linear, ReLU, Dropout, Linear (512 -> 512 -> 512)."""

    def __init__(self, width: int = 512):
        super().__init__()
        self.sequential = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Dropout(0.1), nn.Linear(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sequential(x)


class Wav2ClipNet(nn.Module):
    """Raw 16 kHz mono (B, samples) -> (B, 512) L2-normalised, in OpenAI CLIP ViT-B/32's space."""

    def __init__(self):
        super().__init__()
        self.audio_encoder = Wav2ClipResNet()
        self.audio_transform = Wav2ClipMLP()

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.audio_transform(self.audio_encoder(audio)), dim=-1)


class FromSpectrogram(nn.Module):
    """What is exported to ONNX: the network after the spectrogram (which numpy computes on that path)."""

    def __init__(self, net: Wav2ClipNet):
        super().__init__()
        self.net = net

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net.audio_transform(self.net.audio_encoder.trunk(spectrogram)), dim=-1)


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors, read safely (no pickled code); a Lightning-style {"state_dict": ...} is unwrapped."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


class Wav2ClipEncoder(AudioEncoder):
    sample_rate = SAMPLE_RATE
    window_seconds = WINDOW_SECONDS
    dim = 512

    def __init__(self, net: Wav2ClipNet, model_id: str, image_model_id: str, device: str):
        self.net = net.eval().to(device)
        self.device = device
        self.model_id = model_id
        self.image_model_id = image_model_id
        self.display_name = DISPLAY_NAME

    @torch.inference_mode()
    def encode_audio(self, windows: np.ndarray) -> np.ndarray:
        windows = self.check_windows(windows)
        if len(windows) == 0:
            return np.zeros((0, self.dim), np.float32)
        return self.net(torch.from_numpy(windows).to(self.device)).float().cpu().numpy()


def load(image_model_id: str, device: str = "auto", path: Path | None = None) -> Wav2ClipEncoder:
    """Wav2CLIP from ``path`` (default: weights_path()); ModelUnavailable with one sentence when it cannot be read."""
    path = path or weights_path()
    if not path.is_file():
        raise ModelUnavailable(
            f"Wav2CLIP's weights are not at {path}: download {RELEASE} (MIT) there, "
            f"or set {ENV} to the path of Wav2CLIP.pt."
        )
    try:
        state = read_state(path)
        wanted = {k: v for k, v in state.items() if k.startswith(("audio_encoder.", "audio_transform."))}
        net = Wav2ClipNet()
        net.load_state_dict(wanted, strict=True)
    except (OSError, RuntimeError, ValueError, KeyError, AttributeError, pickle.UnpicklingError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelUnavailable(f"Wav2CLIP's weights at {path} cannot be read: {first_line}.") from None
    return Wav2ClipEncoder(net, f"{NAME}:{checksum(path)}", image_model_id, pick_device(device))


def store(cache_dir: Path, tower: Wav2ClipEncoder, weights: Path | None = None) -> OnnxWav2Clip | None:
    """Export ``tower`` for the CPU runtime (see audio_wav2clip_onnx) and return it running there; None when
    the export fails or does not reproduce torch on the probes. Never raises: the torch tower still works."""
    weights = weights or weights_path()
    folder = record_dir(cache_dir, weights)
    tmp = temp_path(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(folder)
        tmp.mkdir()
        net = tower.net.to("cpu")
        example = torch.from_numpy(log_spectrogram(np.zeros((2, tower.window_samples), np.float32)))
        torch.onnx.export(
            FromSpectrogram(net).eval(), (example,), str(tmp / GRAPH), input_names=["spectrogram"],
            output_names=["embedding"], dynamic_axes={"spectrogram": {0: "batch"}, "embedding": {0: "batch"}},
            opset_version=18, dynamo=False,
        )  # fmt: skip
        exported = OnnxWav2Clip(tmp / GRAPH, tower.model_id, tower.image_model_id)
        probes = _probe_windows(tower.window_samples)
        worst = float(np.abs(exported.encode_audio(probes) - tower.encode_audio(probes)).max())
        if worst > PROBE_TOLERANCE:
            log.warning("Wav2CLIP's export differs from torch by %.2g on the probes; staying on torch", worst)
            return None
        write_meta(tmp, tower.model_id, weights)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
        return OnnxWav2Clip(folder / GRAPH, tower.model_id, tower.image_model_id)
    except Exception as exc:  # a full or read-only disk, an exporter that cannot handle the graph
        log.warning("could not export Wav2CLIP for the CPU runtime in %s: %s", folder, exc)
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _probe_windows(samples: int) -> np.ndarray:
    """A tone, a chirp, noise and near silence."""
    t = np.arange(samples) / SAMPLE_RATE
    rng = np.random.default_rng(0)
    return np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * (100 + 400 * t) * t),
                     rng.normal(0, 0.2, samples), rng.normal(0, 1e-4, samples)]).astype(np.float32)  # fmt: skip
