"""ImageBind's audio features in numpy: Kaldi filter banks (as torchaudio.compliance.kaldi.fbank computes
them with ImageBind's arguments), padded to 204 frames and normalised with its mean and std.

ImageBind's ``data.waveform2melspec`` calls ``kaldi.fbank(waveform - mean, htk_compat=True,
use_energy=False, window_type="hanning", num_mel_bins=128, dither=0, frame_length=25, frame_shift=10)``;
the Kaldi defaults it leaves are snip_edges, removing each frame's DC offset, pre-emphasis 0.97,
an FFT padded to a power of two, power spectrum, mel banks from 20 Hz to Nyquist, log with a
float32-epsilon floor. torchaudio is not a dependency (its wheels pin another torch), hence this copy.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16000
N_MELS = 128
TARGET_FRAMES = 204
MEAN, STD = -4.268, 9.138
_FRAME, _SHIFT, _FFT = 400, 160, 512
_EPS = float(np.finfo(np.float32).eps)


def _kaldi_mel(f: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log(1.0 + f / 700.0)


@lru_cache(maxsize=2)
def kaldi_mel_banks(n_mels: int = N_MELS, rate: int = SAMPLE_RATE, n_fft: int = _FFT, low: float = 20.0) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) Kaldi's triangular banks, equal-width on its mel scale; the Nyquist bin gets 0."""
    mel_low, mel_high = _kaldi_mel(np.float64(low)), _kaldi_mel(np.float64(rate / 2))
    delta = (mel_high - mel_low) / (n_mels + 1)
    left = mel_low + delta * np.arange(n_mels)[:, None]
    centre, right = left + delta, left + 2 * delta
    mel = _kaldi_mel(rate / n_fft * np.arange(n_fft // 2))[None, :]
    banks = np.maximum(0.0, np.minimum((mel - left) / (centre - left), (right - mel) / (right - centre)))
    return np.pad(banks, ((0, 0), (0, 1))).astype(np.float32)


def fbank(windows: np.ndarray) -> np.ndarray:
    """(n, samples) 16 kHz mono -> (n, 1, 128, 204) float32, what ImageBind's audio tower takes."""
    x = np.asarray(windows, np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    frames = 1 + (x.shape[1] - _FRAME) // _SHIFT
    if frames < 1:
        raise ValueError(f"a window of {x.shape[1]} samples is shorter than one 25 ms frame")
    framed = np.lib.stride_tricks.sliding_window_view(x, _FRAME, axis=1)[:, ::_SHIFT][:, :frames]
    framed = framed - framed.mean(axis=-1, keepdims=True)
    framed = np.concatenate([framed[..., :1] * (1 - 0.97), framed[..., 1:] - 0.97 * framed[..., :-1]], axis=-1)
    spectrum = np.fft.rfft(framed * np.hanning(_FRAME), n=_FFT, axis=-1)
    power = spectrum.real**2 + spectrum.imag**2
    mel = np.log(np.maximum(power @ kaldi_mel_banks().T.astype(np.float64), _EPS)).transpose(0, 2, 1)
    if frames < TARGET_FRAMES:
        mel = np.pad(mel, ((0, 0), (0, 0), (0, TARGET_FRAMES - frames)))
    mel = mel[:, :, :TARGET_FRAMES]
    return ((mel - MEAN) / STD).astype(np.float32)[:, None]
