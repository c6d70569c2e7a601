"""Real pictures with real rendered words for the OCR tests: TrueType fonts from PyPI wheels (the test
extra), drawn with PIL on shapes-world scenes and on the demo photos, at several sizes and angles."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from devkit.shapes import HELD_OUT_SEED_BASE, render_scene, scene_rng

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "assets" / "demo"


def font_path(name: str) -> str:
    """A font file by name: "Lato-Bold", "Caladea-Regular", "FredokaOne-Regular"."""
    import font_caladea
    import font_fredoka_one
    import font_lato

    for package in (font_lato, font_caladea, font_fredoka_one):
        candidate = Path(package.__file__).parent / "files" / f"{name}.ttf"
        if candidate.is_file():
            return str(candidate)
    raise FileNotFoundError(name)


def draw_words(
    image: Image.Image,
    text: str,
    font: str = "Lato-Bold",
    height: int = 40,
    angle: float = 0.0,
    centre: tuple[float, float] = (0.5, 0.5),
) -> Image.Image:
    """``image`` with ``text`` drawn on it: white with a dark outline, ``height`` px tall letters,
    turned ``angle`` degrees (counter-clockwise), centred at ``centre`` (fractions of the image)."""
    face = ImageFont.truetype(font_path(font), height)
    left, top, right, bottom = face.getbbox(text, stroke_width=2)
    layer = Image.new("RGBA", (right - left + 16, bottom - top + 16), (0, 0, 0, 0))
    ImageDraw.Draw(layer).text(
        (8 - left, 8 - top), text, font=face, fill=(255, 255, 255, 255), stroke_width=2, stroke_fill=(10, 10, 10, 255)
    )
    if angle:
        layer = layer.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)
    out = image.convert("RGB").copy()
    x = int(centre[0] * out.width - layer.width / 2)
    y = int(centre[1] * out.height - layer.height / 2)
    out.paste(layer, (x, y), layer)
    return out


def scene(size: int, seed: int, **kwargs) -> Image.Image:
    return render_scene(scene_rng(HELD_OUT_SEED_BASE + 7000 + seed), size, **kwargs).image


def demo_photo(name: str, long_side: int) -> Image.Image:
    im = Image.open(DEMO / name).convert("RGB")
    scale = long_side / max(im.size)
    return im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)


@dataclass
class Rendered:
    word: str
    path: Path
    how: str  # background, font, size, angle: what the recall table reports


#: (word, background, font, letter height, angle): words no picture without them could match by chance.
WORD_SET = [
    ("odwalla", ("scene", 384), "Lato-Bold", 44, 0),
    ("harbour", ("chelsea.jpg", 480), "Lato-Regular", 40, 0),
    ("zephyr", ("scene", 256), "FredokaOne-Regular", 36, 8),
    ("quokka", ("coffee.jpg", 512), "Caladea-Bold", 48, -12),
    ("marmalade", ("scene", 512), "Lato-Italic", 40, 0),
    ("brixton", ("motorcycle.jpg", 512), "Lato-Black", 46, 90),
    ("gazpacho", ("rocket.jpg", 448), "Caladea-Regular", 38, 5),
    ("velvet", ("scene", 320), "Lato-Bold", 28, 0),
]


def write_word_set(folder: Path, words=WORD_SET) -> list[Rendered]:
    """One picture per word of ``words``; returns what was written."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for n, (word, (background, size), font, height, angle) in enumerate(words):
        base = scene(size, n) if background == "scene" else demo_photo(background, size)
        picture = draw_words(base, word, font, height, angle, centre=(0.5, 0.62))
        path = folder / f"words_{n:02d}.jpg"
        picture.save(path, quality=90)
        out.append(Rendered(word, path, f"{background} {size}px, {font} {height}px, {angle:+d} deg"))
    return out


def write_no_text(folder: Path) -> list[Path]:
    """Pictures without any text: shapes scenes and demo photos."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, size in enumerate((256, 384)):
        path = folder / f"plain_scene_{n}.png"
        scene(size, 100 + n).save(path)
        paths.append(path)
    for name in ("chelsea.jpg", "gravel.jpg"):
        path = folder / f"plain_{name}"
        demo_photo(name, 400).save(path, quality=90)
        paths.append(path)
    return paths


def rotated_size(width: int, height: int, angle: float) -> tuple[int, int]:
    a = math.radians(angle)
    return (
        int(abs(width * math.cos(a)) + abs(height * math.sin(a))),
        int(abs(width * math.sin(a)) + abs(height * math.cos(a))),
    )
