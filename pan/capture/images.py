"""Image sources: seeded crops of scikit-image's photos, a folder, Caltech101, ILSVRC2012 val.

Nothing is ever downloaded. An image source yields :class:`ImageRecord` s; each knows its id,
its label when the layout gives one, and how to load itself as an RGB PIL image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "ALPHA_MODES",
    "BUILTIN_ALL",
    "BUILTIN_PHOTOS",
    "IMAGE_SUFFIXES",
    "ImageReadError",
    "ImageRecord",
    "ImageSourceError",
    "ImageSpec",
    "MIN_BATCH_IMAGES",
    "PLAIN_MODES",
    "SIXTEEN_BIT_MODES",
    "SOURCES",
    "check_batch",
    "image_records",
    "read_image",
    "rgb_image",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
SOURCES = ("builtin", "folder", "caltech101", "imagenet", "text")
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
    if spec.source == "text":  # the builtin crops with text drawn on them (pan.capture.text_images)
        from pan.capture.text_images import text_records

        return text_records(_builtin(spec.count or BUILTIN_ALL, spec.seed), spec.seed)
    root = _dataset_root(spec)
    files = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not _hidden(p.relative_to(root))
    )
    if not files:
        raise ImageSourceError(f"images: no image files ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    if spec.count is not None and spec.count < len(files):
        chosen = np.random.default_rng(spec.seed).choice(len(files), spec.count, replace=False)
        files = [files[i] for i in sorted(chosen)]
    return [_file_record(root, path) for path in files]


MIN_BATCH_IMAGES = 8
"""The fewest images a §3 batch may have.

KS compares a border (one row or column of every image's map) with the centre. The values of
one image's border row are strongly correlated, so a border sample holds about as much
independent evidence as it has *images*, not values. With n images, image-to-image variation
alone then reaches a given KS statistic about as often as in a one-sample KS test of size n,
whose 5 % critical value is 0.56 for n = 5, 0.52 for n = 6, 0.48 for n = 7 and 0.45 for n = 8.
From 7 images on, chance alone stays below the default θ = 0.5 at the 5 % level; 8 keeps a
margin below θ and is a whole micro-batch. With 1 or 2 images, 56 % of a small model's
neurons came out as PANs. This is a floor, not a recommendation: the paper uses 64.
"""


def check_batch(
    records: Sequence[ImageRecord],
    requested: int | None,
    where: str = "images",
    minimum: int = MIN_BATCH_IMAGES,
) -> Sequence[ImageRecord]:
    """``records`` when there are enough of them, else :class:`ImageSourceError` saying what to set.

    ``requested`` is the configured image count (``None``: every image); ``where`` names the
    config section (``images`` or ``eval_images``) in the message; ``minimum`` the fewest
    images allowed (:data:`MIN_BATCH_IMAGES` for the §3 batch).
    """
    count = len(records)
    asked = f" ({requested} asked for)" if requested is not None else ""
    if count < minimum:
        raise ImageSourceError(
            f"{where}: only {count} images{asked}, fewer than the {minimum} the analysis needs (with "
            "fewer, a border's KS statistic reflects a handful of images and most neurons look like "
            f"PANs); give {where} a source with at least {minimum} images and set {where}.count to "
            f"{minimum} or more"
        )
    if requested is not None and count < requested:
        raise ImageSourceError(
            f"{where}: the source holds only {count} images but {requested} are asked for; "
            f"set {where}.count to {count} or fewer, or add images"
        )
    return records


def _hidden(relative: Path) -> bool:
    """A file or folder whose name starts with a dot (``.ipynb_checkpoints/``, ``._photo.jpg``
    of macOS) is no image and no class: it would add copies of images and a bogus label."""
    return any(part.startswith(".") for part in relative.parts)


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
    """Decode ``path`` as 8-bit RGB, or raise :class:`ImageReadError` naming the file.

    Every PIL mode converts by the rules of :func:`rgb_image`; an image those rules refuse
    (a 32-bit image outside their ranges, an unknown mode) raises rather than being clipped.
    """
    try:
        with Image.open(path) as image:
            return rgb_image(image, path)
    except ImageReadError:
        raise
    except Exception as error:
        raise ImageReadError(f"cannot read image {path}: {error}") from error


PLAIN_MODES = ("1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr", "LAB", "HSV")
"""8-bit modes (bilevel, grey, palette, colour spaces) that PIL converts to RGB exactly as is."""

ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")
"""Modes with an alpha channel: the alpha is dropped (the colours under it are kept)."""

SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
"""16-bit unsigned grey, any byte order: scaled by the type's range, value / 257."""


def rgb_image(image: Image.Image, source: str | Path = "image") -> Image.Image:
    """``image`` as 8-bit RGB, by these rules (``source`` names the file in errors):

    - 8-bit modes (:data:`PLAIN_MODES`): PIL's own conversion (grey replicated, palette looked up,
      CMYK/YCbCr/LAB/HSV converted).
    - Alpha (:data:`ALPHA_MODES`, and palettes with a transparent entry): the alpha is *dropped*,
      the colours stay, as ``convert("RGB")`` and torchvision's ``ImageFolder`` loader do, so a
      model sees what its usual evaluation shows it. Compositing on black would instead paint
      flat dark regions with sharp edges into the image, the very thing a padding detector reacts to.
    - 16-bit grey (:data:`SIXTEEN_BIT_MODES`): ``round(value / 257)``, 0..65535 onto 0..255, by
      the *type's* range, not the image's min/max, so a dark image stays dark and every image
      of a folder scales alike (65535 -> 255, 32896 -> 128, 257 -> 1). PIL's own conversion
      would clip everything above 255 to white.
    - 32-bit integer grey (``I``; 16-bit PNG and PGM often open as ``I``): values within
      0..65535 scale as 16-bit; others are refused.
    - 32-bit float grey (``F``): values within [0, 1] are multiplied by 255, else values within
      [0, 255] are kept (rounded); others (and NaN or infinities) are refused.
    - Any other mode is refused.

    Refusals raise :class:`ImageReadError` naming the file and its mode and saying what to do.
    """
    mode = image.mode
    if mode in ALPHA_MODES or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("LA" if mode == "La" else "RGBA")  # un-premultiplies La and RGBa
        return rgba.convert("RGB")
    if mode in PLAIN_MODES:
        return image.convert("RGB")
    if mode in SIXTEEN_BIT_MODES:
        return _grey_rgb(np.asarray(image, dtype=np.float64) / 257)
    if mode == "I":
        values = np.asarray(image, dtype=np.int64)
        low, high = _value_range(values)
        if low < 0 or high > 65535:
            raise ImageReadError(
                f"cannot read image {source}: mode 'I' (32-bit integer) with values {low}..{high}; "
                "pan reads 32-bit integer images only within 0..65535 (scaled as 16-bit): "
                "save it as an 8-bit or 16-bit image"
            )
        return _grey_rgb(values / 257)
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        low, high = _value_range(values)
        if not (np.isfinite(low) and np.isfinite(high)) or low < 0 or high > 255:
            raise ImageReadError(
                f"cannot read image {source}: mode 'F' (32-bit float) with values {low:g}..{high:g}; "
                "pan reads float images only within [0, 1] (scaled by 255) or [0, 255]: "
                "save it as an 8-bit image"
            )
        return _grey_rgb(values * 255 if high <= 1 else values)
    raise ImageReadError(
        f"cannot read image {source}: unsupported PIL mode {mode!r}; save it as an 8-bit RGB or grey image"
    )


def _value_range(values: np.ndarray) -> tuple:
    if values.size == 0:
        return 0, 0
    if values.dtype.kind == "f" and np.isnan(values).any():
        return float("nan"), float("nan")
    return values.min().item(), values.max().item()


def _grey_rgb(values: np.ndarray) -> Image.Image:
    """Grey values already in 0..255 (float) as an 8-bit RGB image, rounded half up."""
    grey = np.floor(values + 0.5).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2)))


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
