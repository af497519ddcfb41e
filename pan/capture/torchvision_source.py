"""torchvision models for :func:`pan.capture.models.load_model`: builders, weights from torch's
cache (never downloaded: a missing file is named with where to put it) and their transforms."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pan.capture.models import (
    DEFAULT_INPUT_SIZE,
    LoadedModel,
    MissingWeightsError,
    ModelSpec,
    ModelSpecError,
    check_crop,
    default_transform,
    imagenet_categories,
)

if TYPE_CHECKING:
    import torch

__all__ = ["load_torchvision", "torchvision_builder", "torchvision_weights", "torchvision_weights_path"]


def _torchvision_transform(spec: ModelSpec, weights) -> tuple[Callable[[Any], torch.Tensor], int]:
    """The weights' own evaluation transform, with every transform key of ``spec`` that is set
    in place of the weights' value (unset resize keeps the weights' resize/crop ratio)."""
    from torchvision.transforms._presets import ImageClassification

    own = weights.transforms()
    if not (spec.input_size or spec.resize_size or spec.mean):
        return own, own.crop_size[0]
    size = spec.input_size or own.crop_size[0]
    resize = spec.resize_size or round(size * own.resize_size[0] / own.crop_size[0])
    check_crop(size, resize, spec.name)
    transform = ImageClassification(
        crop_size=size,
        resize_size=resize,
        mean=spec.mean or own.mean,
        std=spec.std or own.std,
        interpolation=own.interpolation,
    )
    return transform, size


def torchvision_builder(spec: ModelSpec):
    """The torchvision builder function named by ``spec``, or :class:`ModelSpecError`."""
    from torchvision import models

    try:
        return models.get_model_builder(spec.builder)
    except ValueError as error:
        close = difflib.get_close_matches(spec.builder, models.list_models(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see torchvision.models.list_models()"
        raise ModelSpecError(
            f"model {spec.name!r}: unknown torchvision builder {spec.builder!r}{hint}"
        ) from error


def torchvision_weights(spec: ModelSpec):
    """The torchvision weights enum member named by ``spec`` (no download)."""
    from torchvision import models

    torchvision_builder(spec)
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


def load_torchvision(spec: ModelSpec) -> LoadedModel:
    import torch
    from torchvision import models

    if not spec.pretrained:  # the named weights' transform and classes, not the weights
        model = torchvision_builder(spec)(weights=None)
        categories = imagenet_categories() if spec.weights else None
        if not spec.weights:
            size = spec.input_size or DEFAULT_INPUT_SIZE
            return LoadedModel(spec, model, default_transform(spec), categories, size)
        transform, size = _torchvision_transform(spec, torchvision_weights(spec))
        return LoadedModel(spec, model, transform, categories, size)
    weights = torchvision_weights(spec)
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
    categories = list(weights.meta.get("categories") or []) or None
    transform, size = _torchvision_transform(spec, weights)
    return LoadedModel(spec, model, transform, categories, size)
