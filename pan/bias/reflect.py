"""Per-output-channel reflect padding: the convs of the paper's §4 model variants.

Padding is a property of a layer's input, not of its output channels, so a conv where only
some channels see reflect padding runs twice: once over the zero-padded input (the unchanged
conv) and once over the reflect-padded input for the selected channels only
(:class:`ChannelPaddedConv2d`). :func:`with_reflect_padding` builds such a variant from a
model without copying any weights. Which zero padding a conv has, and so what is replaced,
is read by :mod:`pan.capture.padding`.
"""

from __future__ import annotations

import copy
import itertools
import logging
from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pan.capture.layers import analysed_layers
from pan.capture.padding import (
    Padding,
    effective_weight,
    pad_module_before,
    padding_depends_on_input,
    timm_kind,
    zero_padding,
)

__all__ = ["ChannelPaddedConv2d", "with_reflect_padding"]

try:  # Optional dependency: TF-"SAME" convs that pick their padding from the input size.
    from efficientnet_lite_pytorch.utils import Conv2dDynamicSamePadding

    _DYNAMIC_SAME_PADDING_CONVS: tuple[type[nn.Module], ...] = (Conv2dDynamicSamePadding,)
except ImportError:
    _DYNAMIC_SAME_PADDING_CONVS = ()


def _channel_indices(channels: Iterable[int] | Tensor, out_channels: int) -> Tensor:
    """Sorted unique output channel indices from a boolean mask or an iterable of indices."""
    selection = torch.as_tensor(channels if isinstance(channels, Tensor) else list(channels))
    if selection.dtype == torch.bool:
        if selection.shape != (out_channels,):
            raise ValueError(f"channel mask must have shape ({out_channels},), got {tuple(selection.shape)}")
        return selection.nonzero().flatten()
    if selection.numel() and (selection.is_floating_point() or selection.is_complex()):
        raise TypeError(f"channel indices must be integers, got {selection.dtype}")
    indices = torch.unique(selection.long().flatten())  # unique() also sorts.
    if indices.numel() and (int(indices[0]) < 0 or int(indices[-1]) >= out_channels):
        raise IndexError(f"channel indices must lie in [0, {out_channels}), got {indices.tolist()}")
    return indices


class ChannelPaddedConv2d(nn.Module):
    """A zero-padded conv whose selected output channels see reflect padding instead.

    Wraps ``conv`` (its weight and bias are shared, not copied). The output of
    unselected channels is exactly ``conv(input)``. Selected channels are
    computed over the input padded with reflect by the same amounts, using only
    the weights they need: ``weight[selected]`` when ``groups == 1``, and for
    grouped or depthwise convs only the groups that hold a selected channel.
    When every channel is selected the zero-padded pass is skipped altogether.

    Args:
        conv: the convolution to wrap; it must pad with zeros (see :func:`zero_padding`).
        reflect_channels: output channels that use reflect padding, as indices or
            as a boolean mask of length ``conv.out_channels``.
        input_padding: zero padding ``(left, right, top, bottom)`` that a separate pad module
            applied right before ``conv`` in the original model (it is removed there): the
            zero pass applies it, the reflect pass adds it to the conv's own padding.
    """

    def __init__(
        self,
        conv: nn.Conv2d,
        reflect_channels: Iterable[int] | Tensor,
        input_padding: Padding = (0, 0, 0, 0),
    ) -> None:
        super().__init__()
        self.conv = conv
        effective_weight(conv)  # rejects convs whose forward pan cannot reproduce
        self._standardised_weight = timm_kind(conv) in ("std", "std_same")
        self.input_padding = tuple(int(p) for p in input_padding)
        if len(self.input_padding) != 4 or min(self.input_padding) < 0:
            raise ValueError(f"input_padding must be 4 non-negative amounts, got {input_padding}")
        # Known once for all inputs unless the conv pads by input size; computing it also
        # rejects convs that do not pad with zeros.
        self._fixed_padding = None if padding_depends_on_input(conv) else zero_padding(conv)
        selected = _channel_indices(reflect_channels, conv.out_channels).to(conv.weight.device)
        self.num_reflect_channels = selected.numel()
        self.register_buffer("reflect_channels", selected, persistent=False)
        self._plan_reflect_pass(selected)

    def _plan_reflect_pass(self, selected: Tensor) -> None:
        """Precompute which weights, input channels and groups the reflect pass needs."""
        conv = self.conv
        outputs_per_group = conv.out_channels // conv.groups
        inputs_per_group = conv.in_channels // conv.groups
        if conv.groups == 1:
            touched_groups = torch.zeros(1, dtype=torch.long, device=selected.device)
            weight_rows, input_channels = selected, None
        else:
            touched_groups = torch.unique(selected // outputs_per_group)
            weight_rows = _group_members(touched_groups, outputs_per_group)
            input_channels = _group_members(touched_groups, inputs_per_group)
            if input_channels.numel() == conv.in_channels:
                input_channels = None
        # Position of each selected channel among the reflect pass outputs (None: all, in order).
        if torch.equal(weight_rows, selected):
            picked_outputs = None
        else:
            group_rank = torch.searchsorted(touched_groups, selected // outputs_per_group)
            picked_outputs = group_rank * outputs_per_group + selected % outputs_per_group
        self.reflect_groups = touched_groups.numel()
        self.register_buffer("_reflect_weight_rows", weight_rows, persistent=False)
        self.register_buffer("_reflect_input_channels", input_channels, persistent=False)
        self.register_buffer("_reflect_picked_outputs", picked_outputs, persistent=False)

    @property
    def selects_all_channels(self) -> bool:
        """Whether every output channel pads with reflect (the ``reflect`` variant)."""
        return self.num_reflect_channels == self.conv.out_channels

    @property
    def variant_padding(self) -> str:
        """What this conv pads with, as :func:`pan.capture.padding.layer_padding` names it."""
        return "reflect" if self.selects_all_channels else "zeros and reflect"

    def forward(self, x: Tensor) -> Tensor:
        conv = self.conv
        has_input_padding = any(self.input_padding)
        if self.num_reflect_channels == 0:
            return conv(F.pad(x, self.input_padding) if has_input_padding else x)
        pads = self._fixed_padding
        if pads is None:
            left, right, top, bottom = self.input_padding
            padded_size = (x.shape[-2] + top + bottom, x.shape[-1] + left + right)
            pads = zero_padding(conv, input_size=padded_size)
        if has_input_padding:
            pads = tuple(own + extra for own, extra in zip(pads, self.input_padding, strict=True))
        _check_reflect_fits(pads, x, getattr(self, "layer_name", ""))
        weight = effective_weight(conv) if self._standardised_weight else conv.weight
        if self.selects_all_channels:
            reflect_padded = F.pad(x, pads, mode="reflect")
            return self._conv_unpadded(reflect_padded, weight, conv.bias, conv.groups)

        zero_padded = conv(F.pad(x, self.input_padding) if has_input_padding else x)
        if self._reflect_input_channels is not None:
            x = x.index_select(1, self._reflect_input_channels)
        rows = self._reflect_weight_rows
        bias = conv.bias[rows] if conv.bias is not None else None
        reflect_padded = F.pad(x, pads, mode="reflect")
        reflected = self._conv_unpadded(reflect_padded, weight[rows], bias, self.reflect_groups)
        if self._reflect_picked_outputs is not None:
            reflected = reflected.index_select(1, self._reflect_picked_outputs)
        # In place: ``zero_padded`` is this call's own fresh output, so no full-size copy is needed.
        return zero_padded.index_copy_(1, self.reflect_channels, reflected)

    def _conv_unpadded(self, x: Tensor, weight: Tensor, bias: Tensor | None, groups: int) -> Tensor:
        """The wrapped conv's stride and dilation over an already padded input."""
        return F.conv2d(x, weight, bias, self.conv.stride, 0, self.conv.dilation, groups)

    def extra_repr(self) -> str:
        extra = f", input_padding={self.input_padding}" if any(self.input_padding) else ""
        return f"reflect_channels={self.num_reflect_channels}/{self.conv.out_channels}{extra}"


def _group_members(groups: Tensor, group_size: int) -> Tensor:
    """Flat indices of every member of ``groups`` when groups are consecutive blocks of ``group_size``."""
    offsets = torch.arange(group_size, device=groups.device)
    return (groups[:, None] * group_size + offsets).flatten()


def _check_reflect_fits(pads: Padding, x: Tensor, name: str = "") -> None:
    """Reflect padding must be smaller than the input it mirrors; say so plainly, naming the layer."""
    height, width = x.shape[-2:]
    left, right, top, bottom = pads
    if max(left, right) >= width or max(top, bottom) >= height:
        layer = f"layer {name!r}: " if name else ""
        raise ValueError(
            f"{layer}reflect padding (left, right, top, bottom)={pads} needs each amount smaller than "
            f"the padded side; input is {height}x{width} (a larger input size gives larger maps)"
        )


def with_reflect_padding(
    model: nn.Module, channels: Mapping[str, Iterable[int] | Tensor] | None = None
) -> nn.Module:
    """A variant of ``model`` where the given channels of analysed convs pad with reflect.

    ``channels=None`` selects every channel of every analysed layer (the
    ``reflect`` variant); otherwise it maps analysed layer names (module paths,
    as in :func:`pan.capture.layers.analysed_layers`) to output channel indices or
    boolean masks. Layers absent from the mapping, or mapped to no channel, stay
    untouched.

    The module tree is deep-copied but every parameter and buffer is shared
    with ``model``, so the variant costs no weight memory and ``model`` itself
    is left unchanged. Sharing means in-place updates reach both models
    (training, or BatchNorm statistics in train mode): use variants in eval mode.
    The replaced convs live on as ``<name>.conv`` inside their wrapper. A zero pad module
    right before a wrapped conv in an ``nn.Sequential`` becomes an ``nn.Identity`` and its
    padding moves into the wrapper (``input_padding``), so it is reflected too.

    Raises:
        KeyError: for a name in ``channels`` that is not an analysed layer of ``model``.

    Example::

        >>> import pan, torch, torchvision
        >>> net = torchvision.models.resnet18().eval()
        >>> reflect = pan.with_reflect_padding(net)  # every analysed conv pads with reflect
        >>> pan_reflect = pan.with_reflect_padding(net, {"conv1": [3, 17], "layer1.0.conv1": [5]})
        >>> logits = pan_reflect(torch.rand(1, 3, 224, 224))
    """
    layers = {layer.name: layer for layer in analysed_layers(model)}
    if channels is None:
        selection = {name: torch.ones(layer.out_channels, dtype=torch.bool) for name, layer in layers.items()}
    else:
        unknown = [name for name in channels if name not in layers]
        if unknown:
            raise KeyError(f"not analysed layers of the model: {unknown}")
        selection = channels

    shared_tensors = itertools.chain(model.parameters(), model.buffers())
    variant = copy.deepcopy(model, memo={id(tensor): tensor for tensor in shared_tensors})
    for name, layer_channels in selection.items():
        conv = variant.get_submodule(name)
        if conv.padding_mode != "zeros":  # no zero padding to replace: left as it is
            logging.info("layer %s pads with %s, not zeros: left as it is", name, conv.padding_mode)
            continue
        reflect_channels = _channel_indices(layer_channels, conv.out_channels)
        if reflect_channels.numel():
            input_padding = _take_pad_module_before(variant, name)
            wrapper = ChannelPaddedConv2d(conv, reflect_channels, input_padding)
            wrapper.layer_name = name  # named in its errors
            variant.set_submodule(name, wrapper)
    return variant


def _take_pad_module_before(model: nn.Module, name: str) -> Padding:
    """Replace a zero pad module right before ``name`` in its ``nn.Sequential`` by an identity.

    Returns the padding it applied, ``(0, 0, 0, 0)`` when there is none.
    """
    padding = pad_module_before(model, name)
    if any(padding):
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        keys = list(parent._modules)
        parent._modules[keys[keys.index(child) - 1]] = nn.Identity()
    return padding
