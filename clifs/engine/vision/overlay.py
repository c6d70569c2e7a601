"""Pictures of vision results: masks tinted over the image, boxes drawn with their label and score, regions."""

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
        label_map = cv2.resize(label_map.astype(np.int32), base.size, interpolation=cv2.INTER_NEAREST).astype(np.int16)
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


def regions_overlay(image: Image.Image, region_map: np.ndarray, regions, alpha: float = 0.55) -> Image.Image:
    """What's in it: named regions tinted in their colours, unnamed ones outlined in grey, background untouched.

    ``regions`` are clifs.engine.vision.regions.Region (label or None, guess, background); the legend
    gives each named region's name and each unnamed one's best guess with a question mark.
    """
    base = image.convert("RGB")
    if region_map.shape != (base.height, base.width):
        region_map = cv2.resize(region_map.astype(np.int32), base.size, interpolation=cv2.INTER_NEAREST)
    pixels = np.asarray(base, dtype=np.float32).copy()
    names = list(dict.fromkeys(r.label for r in regions if r.label is not None))
    grey = (200, 200, 200)
    width = max(1, round(min(base.size) / 200))
    outlines = []
    for i, region in enumerate(regions):
        sel = region_map == i
        if region.label is not None:
            c = colour(names.index(region.label))
            pixels[sel] = (1 - alpha) * pixels[sel] + alpha * np.array(c, np.float32)
            outlines.append((sel, c))
        elif not region.background:
            outlines.append((sel, grey))
    pixels = pixels.round().astype(np.uint8)
    for sel, c in outlines:
        contours, _ = cv2.findContours(sel.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(pixels, contours, -1, c, width)
    out = Image.fromarray(pixels)
    entries = [(name, colour(i)) for i, name in enumerate(names)]
    guesses = dict.fromkeys(f"{r.guess}?" for r in regions if r.label is None and not r.background)
    entries += [(g, grey) for g in guesses]
    _legend(out, entries or [("nothing named", grey)])
    return out
