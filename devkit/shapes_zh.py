"""Chinese captions of shapes-world scenes, for the bilingual text tower (devkit/train_zh.py).

The same scenes, described as a Chinese speaker would: "一个红色的圆", "一个红色的圆和一个蓝色的正方形",
"条纹背景上的一个紫色十字". Several names per shape (圆/圆形, 正方形/方块, 十字/十字形) and
several sentence forms, as the English captions have. The test model's text context is 32
tokens and CLIP's byte-level BPE spends two or three tokens on a Chinese character, so a caption
too long for it falls back to shorter forms (the objects alone, without 一个 and 的).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from devkit.shapes import ShapeObject

COLOURS_ZH = {"red": "红色", "orange": "橙色", "yellow": "黄色", "green": "绿色", "blue": "蓝色", "purple": "紫色"}
SHAPES_ZH = {
    "circle": ("圆", "圆形"),
    "square": ("正方形", "方块"),
    "triangle": ("三角形",),
    "cross": ("十字", "十字形"),
}
BACKGROUNDS_ZH = {"plain": "纯色", "striped": "条纹", "checkered": "格子", "noisy": "噪点", "gradient": "渐变"}


def query_zh(colour: str, shape: str) -> str:
    """The plain query for one object: "一个红色的圆" (a red circle)."""
    return f"一个{COLOURS_ZH[colour]}的{SHAPES_ZH[shape][0]}"


def _object(o: ShapeObject, rng: np.random.Generator, short: bool) -> str:
    colour = COLOURS_ZH[o.colour]
    names = SHAPES_ZH[o.shape]
    shape = names[int(rng.integers(len(names)))]
    if short:
        return f"{colour}{shape}"
    form = int(rng.integers(4))
    return (f"一个{colour}的{shape}", f"一个{colour}的{shape}", f"一个{colour}{shape}", f"{colour}的{shape}")[form]


def _listed(parts: list[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    return "、".join(parts[:-1]) + "和" + parts[-1]


def caption_zh(
    rng: np.random.Generator, objects: list[ShapeObject], background: str, fits: Callable[[str], bool] | None = None
) -> str:
    """A Chinese caption of a scene; ``fits(text)`` says whether it fits the text context (else shorter forms)."""
    bg = BACKGROUNDS_ZH[background]
    if not objects:
        return ("一个空白的" + bg + "背景", "没有形状的背景", bg + "背景")[int(rng.integers(3))]
    order = list(objects)
    rng.shuffle(order)
    form = int(rng.integers(5))
    for short in (False, True):
        listed = _listed([_object(o, rng, short) for o in order])
        text = (listed, f"一张{listed}的照片", f"{bg}背景上的{listed}", f"一幅画，画着{listed}", f"{listed}。")[form]
        if fits is None or fits(text):
            return text
        if fits(listed):
            return listed
    return listed
