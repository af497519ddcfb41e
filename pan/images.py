"""Image sources: seeded crops of scikit-image's photos, a folder, Caltech101, ILSVRC2012 val.

Nothing is ever downloaded. An image source yields :class:`ImageRecord` s; each knows its id,
its label when the layout gives one, and how to load itself as an RGB PIL image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
SOURCES = ("builtin", "folder", "caltech101", "imagenet")
BUILTIN_PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "retina",
    "rocket",
)
"""The natural photographs that ship inside scikit-image (no download needed)."""
BUILTIN_ALL = 256
"""Crops that ``count: null`` means for the builtin source, which has no end."""


class ImageSourceError(ValueError):
    """The image configuration points at nothing usable; the message says what to fix."""


class ImageReadError(OSError):
    """An image file cannot be decoded."""


@dataclass(frozen=True)
class ImageSpec:
    """Which images to use, as written under ``images:`` (or ``eval_images:``) in the config."""

    source: str = "builtin"
    path: str | None = None
    count: int | None = 64
    """How many images are drawn (``None``: every image of the source)."""
    seed: int = 0


@dataclass(frozen=True)
class ImageRecord:
    """One image: a stable id, its label if known, and how to load it."""

    id: str
    label: str | None
    _load: Callable[[], Image.Image]

    def load(self) -> Image.Image:
        return self._load()


def image_records(spec: ImageSpec) -> list[ImageRecord]:
    """The images of ``spec``: ``count`` of them drawn with ``seed`` (all if ``None``).

    Raises :class:`ImageSourceError` for a missing or empty folder and for bad sizes.
    """
    if spec.source not in SOURCES:
        raise ImageSourceError(f"images: unknown source {spec.source!r}; use one of {SOURCES}")
    if spec.count is not None and spec.count < 1:
        raise ImageSourceError(f"images: count must be positive, got {spec.count}")
    if spec.source == "builtin":
        return _builtin(spec.count or BUILTIN_ALL, spec.seed)
    root = _dataset_root(spec)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ImageSourceError(f"images: no image files ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    if spec.count is not None and spec.count < len(files):
        chosen = np.random.default_rng(spec.seed).choice(len(files), spec.count, replace=False)
        files = [files[i] for i in sorted(chosen)]
    return [_file_record(root, path) for path in files]


def _dataset_root(spec: ImageSpec) -> Path:
    if not spec.path:
        raise ImageSourceError(f"images: source {spec.source!r} needs a 'path'")
    root = Path(spec.path)
    if not root.is_dir():
        raise ImageSourceError(f"images: folder {root} does not exist (source {spec.source!r})")
    if spec.source == "caltech101":  # torchvision's layout or the extracted archive itself
        for candidate in (root / "caltech101" / "101_ObjectCategories", root / "101_ObjectCategories"):
            if candidate.is_dir():
                return candidate
    if spec.source == "imagenet" and (root / "val").is_dir():  # torchvision's ImageNet layout
        return root / "val"
    return root


def _file_record(root: Path, path: Path) -> ImageRecord:
    relative = path.relative_to(root)
    label = relative.parts[0] if len(relative.parts) > 1 else None  # ImageFolder layout
    return ImageRecord(relative.as_posix(), label, lambda: read_image(path))


def read_image(path: Path) -> Image.Image:
    """Decode ``path`` as RGB, or raise :class:`ImageReadError` naming the file."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except Exception as error:
        raise ImageReadError(f"cannot read image {path}: {error}") from error


def _builtin(count: int, seed: int) -> list[ImageRecord]:
    """``count`` seeded random crops (0.25-1 of the area, aspect 3/4-4/3, half of them flipped)."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(count):
        photo = BUILTIN_PHOTOS[int(rng.integers(len(BUILTIN_PHOTOS)))]
        crop = _Crop(
            area=rng.uniform(0.25, 1.0),
            aspect=float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))),
            x=rng.uniform(),
            y=rng.uniform(),
            flip=bool(rng.uniform() < 0.5),
        )
        records.append(ImageRecord(f"{photo}/{i:05d}", None, partial(crop.apply, photo)))
    return records


@dataclass(frozen=True)
class _Crop:
    """A crop box relative to the photo's size, and whether to mirror it."""

    area: float
    aspect: float
    x: float
    y: float
    flip: bool

    def apply(self, photo: str) -> Image.Image:
        image = _photo(photo)
        width, height = image.size
        w = min(width, round(np.sqrt(self.area * width * height * self.aspect)))
        h = min(height, round(np.sqrt(self.area * width * height / self.aspect)))
        left, top = round(self.x * (width - w)), round(self.y * (height - h))
        image = image.crop((left, top, left + w, top + h))
        return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if self.flip else image


@lru_cache(maxsize=len(BUILTIN_PHOTOS))
def _photo(name: str) -> Image.Image:
    import skimage.data

    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
