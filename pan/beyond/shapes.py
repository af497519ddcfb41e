"""Feature-map shapes of every layer for an input size, without running the model's arithmetic
(a shape-only pass), for the padding audit.
"""

from __future__ import annotations

import copy
import itertools
import sys
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from pan.capture.layers import is_analysed

__all__ = ["infer_in_channels", "pair", "run_shapes", "shape_copy", "timm_same_pools"]


def pair(value: int | Iterable[int]) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else tuple(int(v) for v in value)


def timm_same_pools() -> tuple[type, ...]:
    """timm's TF-"SAME" pools, if timm is loaded (a model holding them imported it)."""
    module = sys.modules.get("timm.layers.pool2d_same")
    if module is None:
        return ()
    return tuple(
        getattr(module, name) for name in ("MaxPool2dSame", "AvgPool2dSame") if hasattr(module, name)
    )


def _is_pool(module: nn.Module) -> bool:
    return isinstance(module, (nn.MaxPool2d, nn.AvgPool2d))


_SHAPE_PRESERVING = (
    nn.modules.batchnorm._BatchNorm,  # timm's BatchNormAct2d too
    nn.GroupNorm,
    nn.LayerNorm,  # timm's LayerNorm2d too
    nn.LocalResponseNorm,
    nn.modules.dropout._DropoutNd,
    nn.ReLU,
    nn.ReLU6,
    nn.Hardtanh,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SiLU,
    nn.Mish,
    nn.GELU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Softplus,
)
"""Elementwise or normalising modules whose output has their input's shape."""


class _SameShape(nn.Module):
    """Stands in for a norm or activation in the meta copy: the same shape, a new tensor, no work.

    On the meta device batch norm and activations run Python decompositions that take ~90 %
    of a ResNet-50 or EfficientNet-Lite shape pass; the sizes do not depend on them.
    """

    def forward(self, x: Tensor) -> Tensor:
        return x.view(x.shape)


def shape_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` on the meta device: same modules, no weight memory, no copying.

    Norms and activations become :class:`_SameShape`, which keeps every size as it is.
    """
    memo = {}
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        meta = tensor.detach().to("meta")
        memo[id(tensor)] = (
            nn.Parameter(meta, tensor.requires_grad) if isinstance(tensor, nn.Parameter) else meta
        )
    meta_model = copy.deepcopy(model, memo=memo).eval()
    norms = [
        name for name, module in meta_model.named_modules() if name and isinstance(module, _SHAPE_PRESERVING)
    ]
    for name in norms:
        try:
            meta_model.set_submodule(name, _SameShape())
        except (AttributeError, TypeError, KeyError):  # a container that refuses plain modules
            pass
    return meta_model


def infer_in_channels(model: nn.Module) -> int:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    return 3


class _ShapeRecorder:
    """Forward hooks that record, per audited layer, its input/output sizes and any pad module before it."""

    def __init__(self, model: nn.Module) -> None:
        self.records: dict[str, dict] = {}
        self._pad_outputs: dict[int, tuple[Tensor, tuple[int, ...], tuple[int, int]]] = {}
        self._handles = []
        for name, module in model.named_modules():
            if isinstance(module, nn.ConstantPad2d):
                self._handles.append(module.register_forward_hook(self._pad_hook))
            elif name and (is_analysed(module) or _is_pool(module)):
                self._handles.append(module.register_forward_hook(self._layer_hook(name)))

    def _pad_hook(self, module: nn.Module, inputs, output) -> None:
        if len(module.padding) == 4:  # keep the tensor alive so its id stays unique
            self._pad_outputs[id(output)] = (output, tuple(module.padding), tuple(inputs[0].shape[-2:]))

    def _layer_hook(self, name: str):
        def hook(module: nn.Module, inputs, output) -> None:
            if name in self.records or not inputs or not isinstance(output, Tensor):
                return
            x = inputs[0]
            before = self._pad_outputs.get(id(x))
            if before is None or before[0] is not x:
                before = (None, None, tuple(x.shape[-2:]))
            self.records[name] = {
                "module": module,
                "in": before[2],  # before the pad module, if any
                "seen": tuple(x.shape[-2:]),  # what the layer itself gets
                "out": tuple(output.shape[-2:]),
                "pad_before": before[1],
            }

        return hook

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._pad_outputs.clear()


def run_shapes(model: nn.Module, size: tuple[int, int], in_channels: int, device: str) -> dict[str, dict]:
    """Records of one forward pass of a single ``size`` input on ``device``."""
    x = torch.zeros(1, in_channels, *size, device=device)
    recorder = _ShapeRecorder(model)
    try:
        with torch.no_grad():
            model(x)
    finally:
        recorder.close()
    return recorder.records
