"""The interface every audio tower implements: raw sound windows into an image model's embedding space.

An audio tower is trained (ImageBind's and Wav2CLIP's recipe) against a frozen image tower, so its
vectors live in that image model's space and, through it, near its text space. A tower is bound to
exactly one image model (``image_model_id``) and is only ever used with it; its vectors are stored
under that image model's id, in the same vector index as the pictures.

Importing this module does not import torch (the CPU path may run towers without it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from clifs.engine.errors import ModelUnavailable

__all__ = ["AudioEncoder", "ModelUnavailable"]


class AudioEncoder(ABC):
    """Maps fixed-length mono windows of sound into the bound image encoder's space."""

    #: Identity of the audio tower: architecture + weights checksum.
    model_id: str
    #: What to show a person ("Wav2CLIP (bound to CLIP ViT-B-32 openai)").
    display_name: str
    #: The ``Encoder.model_id`` whose embedding space this tower shares.
    image_model_id: str
    #: Hz; input is mono float32 in [-1, 1].
    sample_rate: int
    #: The length of audio one embedding covers, in seconds.
    window_seconds: float
    #: Embedding width (== the bound image encoder's dim).
    dim: int

    @property
    def window_samples(self) -> int:
        """Samples in one window: ``round(window_seconds * sample_rate)``."""
        return round(self.window_seconds * self.sample_rate)

    @abstractmethod
    def encode_audio(self, windows: np.ndarray) -> np.ndarray:
        """(n, window_samples) float32 mono -> (n, dim) float32, L2-normalised.

        The tower computes its own features (mel, fbank, ...) from the raw samples."""

    def check_windows(self, windows: np.ndarray) -> np.ndarray:
        """``windows`` as a C-contiguous (n, window_samples) float32 array, or ValueError saying what is wrong."""
        windows = np.ascontiguousarray(windows, dtype=np.float32)
        if windows.ndim != 2 or windows.shape[1] != self.window_samples:
            raise ValueError(
                f"{self.display_name} takes (n, {self.window_samples}) windows "
                f"({self.window_seconds} s at {self.sample_rate} Hz), got shape {windows.shape}"
            )
        return windows
