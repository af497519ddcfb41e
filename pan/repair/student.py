"""Students: a teacher's architecture with its padding changed by a strategy, saved and loaded.

A student's convs keep their module paths and parameter names, so its state dict has the
teacher's keys, its analysed layers the teacher's names (PAN sets compare layer by layer), and
the §3 dump records them like any conv. A conv whose padding changes becomes a
:class:`StudentConv2d`: an ``nn.Conv2d`` whose selected output channels pad with reflect and
the others with zeros by the same amounts. Which channels reflect is a persistent buffer
(``<layer>.reflect_mask``), so a saved state dict says how to rebuild its student.

A student whose every channel reflects says ``padding_mode == "reflect"``: the §4 variants and
the reflect control leave it as it is (there is no zero padding left to replace). A partly
reflected one (``pan_reflect``) says ``"zeros"`` and can be wrapped by
:class:`pan.padding.ChannelPaddedConv2d` like any zero-padded conv. The teacher is never changed:
a student is a deep copy.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pan.bias.reflect import _take_pad_module_before
from pan.capture.layers import analysed_layers
from pan.capture.models import LoadedModel, load_model
from pan.capture.padding import (
    effective_weight,
    pad_module_before,
    padding_depends_on_input,
    register_zero_padded_conv,
    tf_same_padding,
    zero_padding,
)

from .names import STRATEGIES

if TYPE_CHECKING:
    import polars as pl

    from .names import RepairedModelSpec

__all__ = [
    "MASK_SUFFIX",
    "StudentConv2d",
    "build_student",
    "load_student",
    "save_student",
    "student_channels",
]

MASK_SUFFIX = ".reflect_mask"
"""State-dict key suffix of a student conv's reflect channels."""


class StudentConv2d(nn.Conv2d):
    """A conv (weights shared with ``conv``) whose ``reflect_mask`` channels pad with reflect.

    The padding is the original conv's, all of it explicit: its own ``padding``, its
    ``static_padding`` module, a zero pad module that stood right before it (``input_padding``)
    and TF "SAME" padding computed from the input size (``dynamic``). Unselected channels
    compute exactly the original conv's output.
    """

    def __init__(self, conv: nn.Conv2d, reflect_mask: Tensor, input_padding=(0, 0, 0, 0)) -> None:
        if effective_weight(conv) is not conv.weight:
            raise ValueError(f"{type(conv).__name__} standardises its weight: no student conv for it")
        super().__init__(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=tuple(conv.stride),
            padding=0,
            dilation=tuple(conv.dilation),
            groups=conv.groups,
            bias=conv.bias is not None,
            device="meta",
        )
        self.weight, self.bias = conv.weight, conv.bias
        self.dynamic = padding_depends_on_input(conv)
        own = (0, 0, 0, 0) if self.dynamic else zero_padding(conv)
        if self.dynamic:  # own padding only; TF "SAME" padding comes from the input size
            pad_h, pad_w = conv.padding if not isinstance(conv.padding, str) else (0, 0)
            own = (pad_w, pad_w, pad_h, pad_h)
        total = tuple(a + b for a, b in zip(own, input_padding, strict=True))
        self.static_padding = nn.ZeroPad2d(total) if any(total) else nn.Identity()
        mask = torch.as_tensor(reflect_mask, dtype=torch.bool, device="cpu")  # also under a meta device
        if mask.shape != (conv.out_channels,):
            raise ValueError(f"reflect_mask must have shape ({conv.out_channels},), got {tuple(mask.shape)}")
        self._any_reflect, every = bool(mask.any()), bool(mask.all())
        if self.dynamic and self._any_reflect and not every:
            raise ValueError("a conv that pads by its input size can only reflect all channels or none")
        self.register_buffer("reflect_mask", mask.to(conv.weight.device))
        self.padding_mode = "reflect" if every else "zeros"

    def _pads(self, x: Tensor) -> tuple[int, int, int, int]:
        fixed = (
            tuple(self.static_padding.padding) if isinstance(self.static_padding, nn.ZeroPad2d) else (0,) * 4
        )
        if not self.dynamic:
            return fixed
        extra = tf_same_padding(self.kernel_size, self.stride, self.dilation, tuple(x.shape[-2:]))
        return tuple(a + b for a, b in zip(fixed, extra, strict=True))

    def _conv(self, x: Tensor, pads, mode: str) -> Tensor:
        padded = F.pad(x, pads, mode=mode) if any(pads) else x
        return F.conv2d(padded, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def forward(self, x: Tensor) -> Tensor:
        pads = self._pads(x)
        if self.padding_mode == "reflect":
            return self._conv(x, pads, "reflect")
        zero = self._conv(x, pads, "constant")
        if not self._any_reflect:
            return zero
        reflected = self._conv(x, pads, "reflect")
        return torch.where(self.reflect_mask.view(1, -1, 1, 1), reflected, zero)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, reflect={int(self.reflect_mask.sum())}/{self.out_channels}"


register_zero_padded_conv(StudentConv2d)


def _pads_at_all(model: nn.Module, name: str, conv: nn.Conv2d) -> bool:
    if conv.padding_mode != "zeros":
        return False
    return padding_depends_on_input(conv) or any(zero_padding(conv)) or any(pad_module_before(model, name))


def student_channels(
    teacher: nn.Module, strategy: str, labels: pl.DataFrame | None = None
) -> dict[str, Tensor]:
    """Analysed layer -> boolean mask of the output channels that pad with reflect in the student
    (layers that do not pad with zeros, or whose mask selects nothing, are left out)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown repair strategy {strategy!r}; use one of {STRATEGIES}")
    layers = [layer for layer in analysed_layers(teacher) if _pads_at_all(teacher, layer.name, layer.conv)]
    if strategy == "zero_line":
        return {}
    if strategy == "reflect":
        return {layer.name: torch.ones(layer.out_channels, dtype=torch.bool) for layer in layers}
    if labels is None:
        raise ValueError("the pan_reflect strategy needs the teacher's PAN labels")
    from pan.bias.variants import pan_channels

    pans = pan_channels(labels)
    masks = {}
    for layer in layers:
        if layer.name in pans:
            mask = torch.zeros(layer.out_channels, dtype=torch.bool)
            mask[torch.as_tensor(pans[layer.name], dtype=torch.long)] = True
            masks[layer.name] = mask
    return masks


def _swapped(teacher: nn.Module, masks: dict[str, Tensor]) -> nn.Module:
    student = copy.deepcopy(teacher)  # own parameters: training the student leaves the teacher as it is
    for name, mask in masks.items():
        conv = student.get_submodule(name)
        input_padding = _take_pad_module_before(student, name)
        student.set_submodule(name, StudentConv2d(conv, mask, input_padding))
    return student


def build_student(teacher: nn.Module, strategy: str, labels: pl.DataFrame | None = None) -> nn.Module:
    """The plain swap of ``teacher`` by ``strategy`` (``labels``: its PAN labels, for
    ``pan_reflect``): a deep copy whose padding changed, not yet trained."""
    return _swapped(teacher, student_channels(teacher, strategy, labels))


def save_student(student: nn.Module, path: str | Path) -> None:
    """The student's state dict (with its reflect masks), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    torch.save({k: v.detach().cpu().contiguous() for k, v in student.state_dict().items()}, tmp)
    tmp.replace(path)


def load_student(spec: RepairedModelSpec) -> LoadedModel:
    """A student from its teacher's spec and its state dict (``spec.state_dict``); with
    ``pretrained: false`` the student's architecture only, default-initialised."""
    teacher = load_model(replace(spec.teacher, pretrained=spec.pretrained))
    path = Path(spec.state_dict)
    if not path.is_file():
        raise FileNotFoundError(f"model {spec.name!r}: no student weights at {path}; run its repair first")
    state = torch.load(path, map_location="cpu", weights_only=True)
    masks = {
        key.removesuffix(MASK_SUFFIX): value for key, value in state.items() if key.endswith(MASK_SUFFIX)
    }
    student = _swapped(teacher.model, masks)
    if spec.pretrained:
        student.load_state_dict(state, strict=True)
    return LoadedModel(spec, student, teacher.transform, teacher.categories, teacher.input_size)
