"""Log-mel features in numpy, so towers that take them run without torch (on ONNX Runtime)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


@lru_cache(maxsize=8)
def mel_filters(rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters on the HTK mel scale (unit peak)."""
    fmax = fmax or rate / 2
    bins = np.fft.rfftfreq(n_fft, 1.0 / rate)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


def log_mel(windows: np.ndarray, rate: int, n_fft: int, hop: int, n_mels: int) -> np.ndarray:
    """(n, samples) float32 -> (n, n_mels, frames) float32 natural-log mel power, frames = 1 + (samples - n_fft) // hop.

    Frames are not centred (no padding), so the features of a crop aligned to ``hop`` are a slice of
    the features of the whole."""
    windows = np.asarray(windows, np.float32)
    frames = 1 + (windows.shape[1] - n_fft) // hop
    if frames < 1:
        raise ValueError(f"a window of {windows.shape[1]} samples is shorter than one FFT frame ({n_fft})")
    framed = np.lib.stride_tricks.sliding_window_view(windows, n_fft, axis=1)[:, ::hop][:, :frames]
    spectrum = np.fft.rfft(framed * np.hanning(n_fft + 1)[:-1].astype(np.float32), axis=-1)  # periodic Hann
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    mel = power @ mel_filters(rate, n_fft, n_mels).T
    return np.log(mel + 1e-6).transpose(0, 2, 1).astype(np.float32)
