"""The shapes world's soundtrack: every (colour, shape) of devkit.shapes makes its own synthesised sound.

Colour sets the pitch (six notes four semitones apart, so random detuning never crosses into a
neighbour), shape sets the timbre and rhythm:

  circle    a steady sine tone with a slow vibrato
  square    a steady square wave (odd harmonics), buzzy
  triangle  plucked sawtooth notes, decaying, about four a second
  cross     short pure beeps, about eight a second

Each call varies loudness, detuning (within half a semitone), phase, rhythm rate and adds a little
background noise, so no two sounds of one object are the same and a model has to learn the classes.
"""

from __future__ import annotations

import numpy as np

from devkit.shapes import COLOURS, SHAPES

#: Fundamental frequency (Hz) per colour: A3 and up in steps of four semitones.
PITCH_HZ: dict[str, float] = {colour: 220.0 * 2 ** (4 * i / 12) for i, colour in enumerate(COLOURS)}


def _square(phase: np.ndarray) -> np.ndarray:
    """A band-limited square wave (odd harmonics up to the 9th) from a phase in radians."""
    return sum(np.sin(k * phase) / k for k in (1, 3, 5, 7, 9)) * (4 / np.pi) * 0.7


def _saw(phase: np.ndarray) -> np.ndarray:
    """A band-limited sawtooth (harmonics up to the 8th)."""
    return sum(np.sin(k * phase) / k for k in range(1, 9)) * 0.55


def _pulses(t: np.ndarray, rate: float, duty: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(time since each pulse started, whether the pulse is on) for a pulse train starting at a random offset."""
    period = 1.0 / rate
    since = (t + rng.uniform(0, period)) % period
    return since, since < duty * period


def sound_for(colour: str, shape: str, seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """``seconds`` of the sound of a ``colour`` ``shape`` at ``rate`` Hz: float32 mono in [-1, 1]."""
    if colour not in PITCH_HZ:
        raise ValueError(f"unknown colour {colour!r}; choose from {', '.join(COLOURS)}")
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose from {', '.join(SHAPES)}")
    n = round(seconds * rate)
    t = np.arange(n, dtype=np.float64) / rate
    f0 = PITCH_HZ[colour] * 2 ** (rng.uniform(-0.5, 0.5) / 12)
    phase0 = rng.uniform(0, 2 * np.pi)
    if shape == "circle":
        hz = f0 * (1 + 0.004 * np.sin(2 * np.pi * rng.uniform(4, 6) * t))  # vibrato: the phase integrates it
        wave = np.sin(phase0 + 2 * np.pi * np.cumsum(hz) / rate)
    elif shape == "square":
        wave = _square(phase0 + 2 * np.pi * f0 * t)
    elif shape == "triangle":
        since, _ = _pulses(t, rng.uniform(3.5, 4.5), 1.0, rng)
        wave = _saw(phase0 + 2 * np.pi * f0 * t) * np.exp(-since * rng.uniform(9, 13))
    else:  # cross
        since, on = _pulses(t, rng.uniform(7, 9), 0.45, rng)
        wave = np.sin(phase0 + 2 * np.pi * f0 * t) * on * np.minimum(1.0, since * 400)
    loudness = rng.uniform(0.35, 0.8)
    noise = rng.normal(0, rng.uniform(0.002, 0.02), n)
    return np.clip(loudness * wave + noise, -1, 1).astype(np.float32)


def scene_sound(names: list[str], seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """The sounds of several objects ("red circle", ...) heard together, scaled to stay in [-1, 1]."""
    if not names:
        return rng.normal(0, 0.005, round(seconds * rate)).astype(np.float32)
    mixed = sum(sound_for(*name.split(" "), seconds, rate, rng) for name in names)
    peak = float(np.abs(mixed).max())
    return (mixed / max(1.0, peak)).astype(np.float32)
