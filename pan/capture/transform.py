"""The evaluation transform pan defines (EfficientNet-Lite, python and ONNX models), without torchvision.

Resize the short side (bilinear), centre-crop, scale pixels to [0, 1], normalise: the same
tensor, bit for bit, as torchvision's ``Compose([Resize, CenterCrop, ToTensor, Normalize])``
(``tests/test_transform.py`` compares them), computed with PIL and torch alone. Importing
torchvision costs about 1.2 s (its ``ops`` import ``torch._dynamo``), which every job that
loads such a model paid for these few lines; inputs other than an RGB ``PIL`` image that fits
the crop (tensors, other modes) still go through torchvision's own transform.
"""

from __future__ import annotations

import importlib.util
import runpy
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["CHANNEL_ORDERS", "EvalTransform", "imagenet_categories"]

CHANNEL_ORDERS = ("rgb", "bgr")


@dataclass(frozen=True)
class EvalTransform:
    """Resize the short side to ``resize_size`` (bilinear), centre-crop ``input_size``, scale to
    [0, 1], reorder to ``channel_order`` and normalise by ``mean`` and ``std`` (in that order)."""

    input_size: int
    resize_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    channel_order: str = "rgb"

    def __post_init__(self) -> None:
        if self.channel_order not in CHANNEL_ORDERS:
            raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {self.channel_order!r}")
        if any(float(s) == 0 for s in self.std):
            raise ValueError(f"std {self.std} has a zero: normalising would divide by it")

    def __call__(self, image: Any) -> torch.Tensor:
        import numpy as np
        import torch
        from PIL import Image

        if not isinstance(image, Image.Image) or image.mode != "RGB":
            return self.torchvision()(image)
        width, height = _resized_size(image.width, image.height, self.resize_size)
        if (width, height) != image.size:
            image = image.resize((width, height), Image.BILINEAR)
        size = self.input_size
        if size > width or size > height:  # torchvision pads first; check_crop refuses this for models
            return self.torchvision()(image)
        top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
        image = image.crop((left, top, left + size, top + size))
        pixels = torch.from_numpy(np.array(image, np.uint8, copy=True)).view(size, size, 3)
        tensor = pixels.permute((2, 0, 1)).contiguous().to(dtype=torch.get_default_dtype()).div(255)
        if self.channel_order == "bgr":
            tensor = tensor.flip(0)
        mean = torch.as_tensor(self.mean, dtype=tensor.dtype).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=tensor.dtype).view(-1, 1, 1)
        return tensor.sub_(mean).div_(std)

    def torchvision(self):
        """The same transform as torchvision composes it."""
        from torchvision import transforms

        steps = [
            transforms.Resize(self.resize_size, interpolation=transforms.InterpolationMode.BILINEAR),
            transforms.CenterCrop(self.input_size),
            transforms.ToTensor(),
        ]
        if self.channel_order == "bgr":
            steps.append(transforms.Lambda(_flip_channels))
        return transforms.Compose([*steps, transforms.Normalize(self.mean, self.std)])


def _resized_size(width: int, height: int, short: int) -> tuple[int, int]:
    """torchvision's output size of ``Resize(short)``: the short side ``short``, the long side
    scaled and truncated."""
    if width <= height:
        return short, int(short * height / width)
    return int(short * width / height), short


def _flip_channels(image):
    """RGB to BGR (a top-level function, so the transform pickles)."""
    return image.flip(0)


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names as torchvision lists them, read from its data file
    (``torchvision/models/_meta.py``, plain lists) without importing the package."""
    found = importlib.util.find_spec("torchvision")
    locations = list(found.submodule_search_locations or []) if found else []
    data = Path(locations[0]) / "models" / "_meta.py" if locations else None
    if data is None or not data.is_file():
        from torchvision.models._meta import _IMAGENET_CATEGORIES

        return list(_IMAGENET_CATEGORIES)
    return list(runpy.run_path(str(data))["_IMAGENET_CATEGORIES"])
