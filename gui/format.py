"""How numbers look in the window: moments, sizes, dates, scores."""

from __future__ import annotations

import datetime as dt


def moment(seconds: float, tenths: bool = False) -> str:
    """1:05 or 1:02:05 — the way video players write a position; with ``tenths`` 1:05.5 (windows of
    sound start every half window, so whole seconds would repeat)."""
    if tenths:
        tenth = int(round(seconds * 10))
        return f"{moment(tenth // 10)}.{tenth % 10}"
    s = int(round(seconds))
    h, m, s = s // 3600, s % 3600 // 60, s % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def size(n_bytes: int) -> str:
    if n_bytes < 1000:
        return f"{n_bytes} bytes"
    value = n_bytes / 1000
    for unit in ("KB", "MB"):
        if value < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def date(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def score(value: float) -> str:
    return f"{value:.3f}"
