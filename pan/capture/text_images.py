"""The ``text`` image source: the builtin photo crops with seeded lines of text drawn on them.

For text detectors (e.g. PP-OCRv4's DBNet in config.real.yaml), whose output on photographs
without text is nearly empty: each image is a builtin crop (:mod:`pan.capture.images`, same
seed and count) with 2 to 5 seeded words, in seeded sizes (6-16 % of the image height),
positions and grey levels, rendered with Pillow's own font. Nothing is downloaded; the same
seed gives the same images. Classifiers and other dense models take them as photos.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["WORDS", "text_records"]

WORDS = (
    "PADDING", "border", "zero", "NEURON", "exit", "OPEN", "cafe", "STOP", "2023", "pan", "edge",
    "Kolmogorov", "reflect", "SALE", "north", "42", "ICCV", "street", "photo", "detector",
)  # fmt: skip
"""The words drawn, a few per image."""


def text_records(records: list, seed: int) -> list:
    """``records`` (builtin crops) with seeded text drawn on each, ids prefixed ``text/``."""
    from pan.capture.images import ImageRecord

    rng = np.random.default_rng([seed, 7])
    out = []
    for record in records:
        lines = []
        for _ in range(int(rng.integers(2, 6))):
            word = WORDS[int(rng.integers(len(WORDS)))]
            height = float(rng.uniform(0.06, 0.16))
            x, y = float(rng.uniform(0.0, 0.7)), float(rng.uniform(0.0, 0.85))
            level = int(rng.choice([0, 255])) if rng.uniform() < 0.7 else int(rng.integers(256))
            lines.append((word, height, x, y, level))
        out.append(ImageRecord(f"text/{record.id}", record.label, partial(_draw, record.load, tuple(lines))))
    return out


def _draw(load, lines) -> Image.Image:
    image = load().convert("RGB")
    draw = ImageDraw.Draw(image)
    width, height = image.size
    for word, size, x, y, level in lines:
        font = ImageFont.load_default(size=max(8, round(size * height)))
        draw.text((x * width, y * height), word, fill=(level,) * 3, font=font)
    return image
