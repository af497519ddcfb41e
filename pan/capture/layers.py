"""The convolutional layers the method analyses: every ``nn.Conv2d`` with a kernel larger than 1x1."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

__all__ = ["AnalysedLayer", "analysed_layers", "is_analysed"]


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


def analysed_layers(model: nn.Module) -> list[AnalysedLayer]:
    """All analysed convolutions of ``model`` in definition (module registration) order."""
    convs = [(name, m) for name, m in model.named_modules() if name and is_analysed(m)]
    return [AnalysedLayer(i, name, m) for i, (name, m) in enumerate(convs)]
