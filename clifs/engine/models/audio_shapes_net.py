"""The shapes-world audio tower as a torch module: what devkit/train_audio.py trains and exports to ONNX.

Log-mel frames (computed in numpy, clifs.engine.models.audio_features) -> three 1-d convolutions over
time -> mean and max over time -> a linear projection into the test model's 64-d space. Indexing
runs the exported graph (clifs.engine.models.audio_shapes); this module is only needed to train,
export, or check the export.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from clifs.engine.models import audio_shapes


class ShapesAudioNet(nn.Module):
    def __init__(self, n_mels: int = audio_shapes.N_MELS, width: int = 96, dim: int = 64):
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, width, kernel_size=5, padding=2)
        self.conv2 = nn.Conv1d(width, width, kernel_size=5, stride=2, padding=2)
        self.conv3 = nn.Conv1d(width, 2 * width, kernel_size=3, stride=2, padding=1)
        self.proj = nn.Linear(4 * width, dim)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, frames) normalised log-mel -> (B, dim) L2-normalised."""
        x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x))
        x = F.gelu(self.conv3(x))
        pooled = torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1)
        return F.normalize(self.proj(pooled), dim=-1)


def load_net(weights: Path) -> ShapesAudioNet:
    from safetensors.torch import load_file

    net = ShapesAudioNet()
    net.load_state_dict({k: v.float() for k, v in load_file(str(weights)).items()})
    return net.eval()


def export_onnx(net: ShapesAudioNet, out: Path) -> None:
    """The net as an ONNX graph with a dynamic batch axis (input ``mel``, output ``embedding``)."""
    frames = 1 + (audio_shapes.WINDOW_SAMPLES - audio_shapes.N_FFT) // audio_shapes.HOP
    example = torch.zeros(2, audio_shapes.N_MELS, frames)
    tmp = out.with_suffix(".tmp")
    torch.onnx.export(
        net.eval(), (example,), str(tmp), input_names=["mel"], output_names=["embedding"],
        dynamic_axes={"mel": {0: "batch"}, "embedding": {0: "batch"}}, opset_version=18, dynamo=False,
    )  # fmt: skip
    tmp.replace(out)
