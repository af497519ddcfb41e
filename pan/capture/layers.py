"""The convolutional layers the method analyses: every ``nn.Conv2d`` with a kernel larger than 1x1."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

__all__ = ["AnalysedLayer", "analysed_layers", "check_layer_names", "in_forward_order", "is_analysed"]

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class AnalysedLayer:
    """One analysed convolution, named by its module path in the model."""

    index: int
    name: str
    module: nn.Module
    """The conv, or a wrapper that replaced it (e.g. a ``ChannelPaddedConv2d`` holding it as
    ``.conv``): hooks record this module's output."""

    @property
    def conv(self) -> nn.Conv2d:
        """The convolution itself, also when :attr:`module` wraps it."""
        return self.module if isinstance(self.module, nn.Conv2d) else self.module.conv

    @property
    def out_channels(self) -> int:
        return self.conv.out_channels

    @property
    def kernel_size(self) -> tuple[int, int]:
        return tuple(self.conv.kernel_size)


def is_analysed(module: nn.Module) -> bool:
    """A layer is analysed when it is a ``Conv2d`` (subclasses included) with a kernel over 1x1."""
    return isinstance(module, nn.Conv2d) and tuple(module.kernel_size) != (1, 1)


def analysed_layers(model: nn.Module, example: torch.Tensor | None = None) -> list[AnalysedLayer]:
    """All analysed convolutions of ``model``: in the order of their first call in a forward
    pass on ``example`` (an input batch on the model's device) when given, else in definition
    (module registration) order, which differs when ``forward`` calls modules in another order."""
    convs = [(name, m) for name, m in model.named_modules() if name and is_analysed(m)]
    layers = [AnalysedLayer(i, name, m) for i, (name, m) in enumerate(convs)]
    return layers if example is None else in_forward_order(model, layers, example)


def in_forward_order(
    model: nn.Module, layers: Sequence[AnalysedLayer], example: torch.Tensor, name: str = "model"
) -> list[AnalysedLayer]:
    """``layers`` re-indexed 0, 1, ... in the order of their first call in one forward pass of
    ``model`` on ``example``, so that ``layer_index`` is depth in the forward pass (Table 1, the
    depth figures); layers the pass does not call follow in their given order.

    A model that fails on ``example`` raises ``ValueError`` naming the input's shape and dtype
    (``name`` names the model)."""
    import torch

    from pan.capture.inference import recording

    order: dict[str, int] = {}

    def note(layer: AnalysedLayer, maps: torch.Tensor) -> None:
        order.setdefault(layer.name, len(order))

    try:
        with torch.no_grad(), recording(layers, note):
            model(example)
    except (RuntimeError, TypeError, ValueError) as error:
        raise ValueError(
            f"model {name!r} failed on its first input, of shape {tuple(example.shape)} and dtype "
            f"{example.dtype} ({type(error).__name__}: {error}); give images as the model expects "
            "them: a float batch (images, channels, H, W) with the channels of its first conv, "
            "preprocessed by its transform"
        ) from error
    ranked = sorted(
        layers, key=lambda layer: (layer.name not in order, order.get(layer.name, 0), layer.index)
    )
    return [AnalysedLayer(i, layer.name, layer.module) for i, layer in enumerate(ranked)]


def check_layer_names(model: str, layers: Sequence[AnalysedLayer]) -> None:
    """Refuse layer names that cannot be file names: each layer's dump and KS table is
    ``{layer}.parquet``, so a ``/`` in a module name (``add_module("a/b", ...)``) would point
    into a folder that does not exist."""
    bad = [layer.name for layer in layers if "/" in layer.name or "\\" in layer.name]
    if bad:
        raise ValueError(
            f"model {model!r}: module name(s) {bad} contain '/' or '\\', and pan names each layer's "
            "files after its module: register those modules under names without slashes"
        )
