"""Pictures of vision results: masks tinted over the image, boxes drawn with their label and score."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Distinct, saturated colours (Kelly's list, minus black and white), one per label in order.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 179, 0), (128, 62, 117), (255, 104, 0), (166, 189, 215), (193, 0, 32), (206, 162, 98),
    (0, 125, 52), (246, 118, 142), (0, 83, 138), (255, 122, 92), (83, 55, 122), (255, 142, 0),
    (179, 40, 81), (244, 200, 0), (127, 24, 13), (147, 170, 0), (89, 51, 21), (241, 58, 19),
)  # fmt: skip


def colour(i: int) -> tuple[int, int, int]:
    return PALETTE[i % len(PALETTE)]


def mask_overlay(image: Image.Image, label_map: np.ndarray, labels: Sequence[str], alpha: float = 0.55) -> Image.Image:
    """The image with each label's pixels tinted in its colour and a legend; ``label_map`` is -1 for background."""
    base = image.convert("RGB")
    if label_map.shape != (base.height, base.width):
        lm = Image.fromarray(label_map.astype(np.int16) + 1, mode="I;16").resize(base.size, Image.NEAREST)
        label_map = np.asarray(lm).astype(np.int16) - 1
    pixels = np.asarray(base, dtype=np.float32).copy()
    for i in range(len(labels)):
        sel = label_map == i
        pixels[sel] = (1 - alpha) * pixels[sel] + alpha * np.array(colour(i), np.float32)
    pixels = pixels.round().astype(np.uint8)
    width = max(1, round(min(base.size) / 200))
    for i in range(len(labels)):  # outlines: the tint alone is hard to read on coloured objects
        contours, _ = cv2.findContours((label_map == i).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(pixels, contours, -1, colour(i), width)
    out = Image.fromarray(pixels)
    _legend(out, [(label, colour(i)) for i, label in enumerate(labels)])
    return out


def box_overlay(
    image: Image.Image, boxes: Sequence[tuple[str, float, Sequence[int]]], labels: Sequence[str]
) -> Image.Image:
    """The image with (label, score, [x, y, w, h]) boxes outlined in their label's colour."""
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    font = _font(out)
    width = max(1, round(min(out.size) / 150))
    for label, score, (x, y, w, h) in boxes:
        c = colour(list(labels).index(label)) if label in labels else (255, 255, 255)
        draw.rectangle([x, y, x + w - 1, y + h - 1], outline=c, width=width)
        text = f"{label} {score:.2f}"
        tw, th = _text_size(draw, text, font)
        ty = y - th - 2 if y - th - 2 >= 0 else y + 1
        draw.rectangle([x, ty, x + tw + 3, ty + th + 2], fill=c)
        draw.text((x + 2, ty + 1), text, fill=(0, 0, 0), font=font)
    return out


def _legend(image: Image.Image, entries: list[tuple[str, tuple[int, int, int]]]) -> None:
    draw = ImageDraw.Draw(image)
    font = _font(image)
    y = 2
    for text, c in entries:
        tw, th = _text_size(draw, text, font)
        draw.rectangle([2, y, 2 + tw + 4, y + th + 2], fill=c)
        draw.text((4, y + 1), text, fill=(0, 0, 0), font=font)
        y += th + 4


def _font(image: Image.Image) -> ImageFont.ImageFont:
    size = max(8, round(min(image.size) / 28))
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size only
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top
