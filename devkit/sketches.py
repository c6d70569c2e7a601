"""Crude drawings of the shapes world's objects, as a person makes them on the sketch pad.

A drawing is a list of strokes (polylines in the pad's picture pixels) plus the points where the
fill bucket is clicked: a shape's outline with its vertices jittered (a circle's radius wandering),
at a random place and size, then

- ``outline``: the outline alone, with the medium pen;
- ``filled``: the outline, then the bucket clicked inside it (a blob);
- ``scribble``: the outline, then zig-zag strokes across it with the thick pen (a rough blob).

bench/sketch_recall.py and tests/test_sketch.py replay them on the real pad (gui/sketch_pad.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

STYLES = ("outline", "filled", "scribble")
#: The thick pen's width on a 256-pixel pad (gui/sketch_pad.py PEN_SIZES["thick"]).
THICK_PEN = 24

Point = tuple[float, float]


@dataclass
class Drawing:
    strokes: list[tuple[str, list[Point]]]  # (pen size name, polyline)
    fills: list[Point]  # where the fill bucket is clicked, after the strokes


def outline(shape: str, cx: float, cy: float, r: float, rng: np.random.Generator) -> list[Point]:
    """A closed, hand-wobbly outline of ``shape`` around (cx, cy) with radius ``r`` (first point repeated last)."""
    wobble = 0.08
    if shape == "circle":
        n = 24
        t = np.linspace(0, 2 * math.pi, n, endpoint=False)
        radii = r * (1 + wobble * np.sin(2 * t + rng.uniform(0, 2 * math.pi))) * (1 + rng.normal(0, wobble / 2, n))
        squash = rng.uniform(0.85, 1.0)
        pts = [(cx + rr * math.cos(a), cy + squash * rr * math.sin(a)) for rr, a in zip(radii, t, strict=True)]
        return pts + pts[:1]
    if shape == "square":
        s = 0.8
        corners = [(-s, -s), (s, -s), (s, s), (-s, s)]
    elif shape == "triangle":
        corners = [(math.cos(a), math.sin(a) + 0.15) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    elif shape == "cross":
        a, b = 0.95, 0.3
        corners = [(-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b), (b, a), (-b, a), (-b, b), (-a, b), (-a, -b), (-b, -b)]  # fmt: skip
    else:
        raise ValueError(f"unknown shape {shape!r}")
    angle = rng.uniform(-0.25, 0.25)
    ca, sa = math.cos(angle), math.sin(angle)
    pts = []
    for x, y in corners:
        x, y = x + rng.normal(0, wobble), y + rng.normal(0, wobble)
        pts.append((cx + r * (x * ca - y * sa), cy + r * (x * sa + y * ca)))
    return pts + pts[:1]


def drawing(shape: str, rng: np.random.Generator, side: int = 256, style: str = "filled") -> Drawing:
    """One crude drawing of ``shape`` on a ``side`` × ``side`` pad."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose from {', '.join(STYLES)}")
    r = rng.uniform(0.22, 0.34) * side
    margin = r + 0.06 * side
    cx, cy = (rng.uniform(margin, side - margin) for _ in range(2))
    pts = outline(shape, cx, cy, r, rng)
    strokes: list[tuple[str, list[Point]]] = [("medium", pts)]
    fills: list[Point] = []
    if style == "filled":
        fills.append(_inside(pts, cx, cy))
    elif style == "scribble":  # back and forth inside the outline, row by row, half a pen in from its edge
        inset = 0.5 * THICK_PEN * side / 256
        zig: list[Point] = []
        for i, y in enumerate(np.arange(cy - r, cy + r, rng.uniform(0.6, 0.9) * THICK_PEN * side / 256)):
            xs = _crossings(pts, float(y))
            if len(xs) >= 2 and xs[-1] - xs[0] > 2 * inset:
                ends = [xs[0] + inset, xs[-1] - inset]
                zig.append((ends[i % 2] + rng.normal(0, inset / 3), float(y)))
                zig.append((ends[1 - i % 2] + rng.normal(0, inset / 3), float(y)))
        if zig:
            strokes.append(("thick", zig))
    return Drawing(strokes, fills)


def _crossings(pts: list[Point], y: float) -> list[float]:
    """Where the outline crosses the horizontal line at ``y``, left to right."""
    out = []
    for (x1, y1), (x2, y2) in zip(pts, pts[1:], strict=False):
        if (y1 > y) != (y2 > y):
            out.append(x1 + (y - y1) * (x2 - x1) / (y2 - y1))
    return sorted(out)


def _inside(pts: list[Point], cx: float, cy: float) -> Point:
    """A point inside the outline: the centre, or (for a triangle drawn off-centre) the vertices' mean."""
    xs, ys = zip(*pts[:-1], strict=True)
    mx, my = float(np.mean(xs)), float(np.mean(ys))
    return (mx, my) if _contains(pts, mx, my) else (cx, cy)


def _contains(pts: list[Point], x: float, y: float) -> bool:
    inside = False
    for (x1, y1), (x2, y2) in zip(pts, pts[1:], strict=False):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside
