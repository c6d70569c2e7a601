"""The shapes world: procedurally generated scenes with exact ground truth.

Coloured shapes on textured backgrounds, each scene with captions, per-object
masks and boxes. Deterministic for a given seed, so the training script, the
tests, the benchmarks and the demo all draw from the same world while using
disjoint seeds (training uses seeds below ``HELD_OUT_SEED_BASE``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (250, 140, 0),
    "yellow": (240, 220, 30),
    "green": (30, 170, 50),
    "blue": (30, 70, 230),
    "purple": (140, 40, 200),
}
BACKGROUNDS: tuple[str, ...] = ("plain", "striped", "checkered", "noisy", "gradient")

# Seeds at or above this value are never used for training.
HELD_OUT_SEED_BASE = 1_000_000


@dataclass
class ShapeObject:
    shape: str
    colour: str
    box: tuple[int, int, int, int]  # x, y, w, h in pixels
    mask: np.ndarray = field(repr=False)  # bool (H, W)

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass
class Scene:
    image: Image.Image
    objects: list[ShapeObject]
    background: str
    caption: str

    def mask_for(self, name: str) -> np.ndarray:
        """Union of the masks of every object called ``name`` ("red circle", "circle" or "red")."""
        out = np.zeros((self.image.height, self.image.width), dtype=bool)
        for obj in self.objects:
            if name in (obj.name, obj.shape, obj.colour):
                out |= obj.mask
        return out


_UNIT_CIRCLE = [(math.cos(t), math.sin(t)) for t in np.linspace(0, 2 * math.pi, 48, endpoint=False)]


def _pick(rng: np.random.Generator, options: tuple | list):
    """rng.choice without its per-call array conversion (scene generation is on the training hot path)."""
    return options[int(rng.integers(len(options)))]


def _shape_polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if shape == "circle":
        pts = _UNIT_CIRCLE
    elif shape == "square":
        s = 0.82
        pts = [(-s, -s), (s, -s), (s, s), (-s, s)]
    elif shape == "triangle":
        pts = [
            (math.cos(t), math.sin(t) + 0.15)
            for t in (-math.pi / 2, -math.pi / 2 + 2 * math.pi / 3, -math.pi / 2 + 4 * math.pi / 3)
        ]
    elif shape == "cross":
        a, b = 0.95, 0.32
        pts = [
            (-b, -a),
            (b, -a),
            (b, -b),
            (a, -b),
            (a, b),
            (b, b),
            (b, a),
            (-b, a),
            (-b, b),
            (-a, b),
            (-a, -b),
            (-b, -b),
        ]
    else:
        raise ValueError(f"unknown shape {shape!r}")
    ca, sa = math.cos(angle), math.sin(angle)
    return [(cx + r * (x * ca - y * sa), cy + r * (x * sa + y * ca)) for x, y in pts]


def _background(rng: np.random.Generator, kind: str, size: int) -> np.ndarray:
    """A muted, low-saturation texture so that the shape colours stand out."""
    base = rng.uniform(90, 190)
    tint = rng.uniform(-18, 18, size=3)
    colour_a = np.clip(base + tint, 0, 255)
    colour_b = np.clip(colour_a + rng.uniform(-45, 45), 0, 255)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    if kind == "plain":
        weight = np.zeros((size, size), np.float32)
    elif kind == "striped":
        period = rng.uniform(size / 12, size / 5)
        theta = rng.uniform(0, math.pi)
        proj = xx * math.cos(theta) + yy * math.sin(theta)
        weight = ((proj // (period / 2)) % 2).astype(np.float32)
    elif kind == "checkered":
        cell = rng.uniform(size / 10, size / 5)
        weight = (((xx // cell) + (yy // cell)) % 2).astype(np.float32)
    elif kind == "noisy":
        weight = rng.uniform(0, 1, size=(size, size)).astype(np.float32)
    elif kind == "gradient":
        theta = rng.uniform(0, 2 * math.pi)
        proj = xx * math.cos(theta) + yy * math.sin(theta)
        weight = (proj - proj.min()) / max(float(np.ptp(proj)), 1.0)
    else:
        raise ValueError(f"unknown background {kind!r}")
    img = colour_a[None, None, :] * (1 - weight[..., None]) + colour_b[None, None, :] * weight[..., None]
    return img.astype(np.uint8)


def _with_article(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _caption(rng: np.random.Generator, objects: list[ShapeObject], background: str) -> str:
    names = [_with_article(o.name) for o in objects]
    rng.shuffle(names)
    if not names:
        return _pick(
            rng, [f"an empty {background} background", "a background with no shapes", f"a {background} background"]
        )
    if len(names) == 1:
        listed = names[0]
    elif len(names) == 2:
        listed = f"{names[0]} and {names[1]}"
    else:
        listed = ", ".join(names[:-1]) + f" and {names[-1]}"
    form = int(rng.integers(0, 5))
    if form == 0:
        return listed
    if form == 1:
        return f"a photo of {listed}"
    if form == 2:
        return f"{listed} on a {background} background"
    if form == 3:
        return f"a picture showing {listed}"
    return f"{listed}."


def _boxes_overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int], gap: int) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return not (ax + aw + gap <= bx or bx + bw + gap <= ax or ay + ah + gap <= by or by + bh + gap <= ay)


def render_scene(
    rng: np.random.Generator,
    size: int = 96,
    n_objects: int | None = None,
    colours: tuple[str, ...] | None = None,
    shapes: tuple[str, ...] | None = None,
) -> Scene:
    """Draw one scene. ``colours``/``shapes`` restrict what may appear (for hard batches)."""
    colours = colours or tuple(COLOURS)
    shapes = shapes or SHAPES
    if n_objects is None:
        n_objects = _pick(rng, (0, 1, 1, 1, 2, 2, 3))
    background = _pick(rng, BACKGROUNDS)
    canvas = Image.fromarray(_background(rng, background, size))
    draw = ImageDraw.Draw(canvas)
    objects: list[ShapeObject] = []
    max_frac = {1: 0.6, 2: 0.42, 3: 0.36}.get(n_objects, 0.36)
    for _ in range(n_objects):
        for _attempt in range(50):
            diameter = rng.uniform(0.26, max_frac) * size
            r = diameter / 2
            cx = rng.uniform(r + 1, size - r - 1)
            cy = rng.uniform(r + 1, size - r - 1)
            shape = _pick(rng, shapes)
            angle = rng.uniform(-0.3, 0.3)
            poly = _shape_polygon(shape, cx, cy, r, angle)
            xs_f, ys_f = [p[0] for p in poly], [p[1] for p in poly]
            rough = (int(min(xs_f)), int(min(ys_f)), int(max(xs_f) - min(xs_f)) + 2, int(max(ys_f) - min(ys_f)) + 2)
            if any(_boxes_overlap(rough, o.box, gap=2) for o in objects):
                continue  # rejected before rasterising
            mask_img = Image.new("L", (size, size), 0)
            ImageDraw.Draw(mask_img).polygon(poly, fill=255)
            mask = np.asarray(mask_img) > 0
            ys, xs = np.nonzero(mask)
            if len(xs) == 0:
                continue
            box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
            colour = _pick(rng, colours)
            jitter = rng.integers(-15, 16, size=3)
            fill = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(COLOURS[colour], jitter))
            draw.polygon(poly, fill=fill)
            objects.append(ShapeObject(shape, colour, box, mask))
            break
    return Scene(canvas, objects, background, _caption(rng, objects, background))


def scene_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def iter_scenes(seed: int, count: int, size: int = 96, **kwargs) -> Iterator[Scene]:
    """``count`` scenes from one deterministic stream."""
    rng = scene_rng(seed)
    for _ in range(count):
        yield render_scene(rng, size, **kwargs)


def all_object_names() -> list[str]:
    return [f"{c} {s}" for c in COLOURS for s in SHAPES]
