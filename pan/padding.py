"""Per-output-channel reflect padding: the model variants of the paper's §4.

The paper compares a pre-trained model against versions of itself where some
convolutional neurons see reflect instead of zero padding:

- ``original``:     unchanged;
- ``reflect``:      every analysed convolution pads with reflect;
- ``pan_reflect``:  only the PANs (selected output channels) pad with reflect,
  every other channel keeps zero padding;
- ``rand_reflect``: the same mechanism with a random control set of channels.

Padding is a property of a layer's input, not of its output channels, so a
conv where only some channels see reflect padding runs twice: once over the
zero-padded input (the unchanged conv) and once over the reflect-padded input
for the selected channels only (:class:`ChannelPaddedConv2d`).
:func:`with_reflect_padding` builds such a variant from a model without copying
any weights.

A convolution whose ``padding_mode`` is not ``'zeros'`` is rejected with a
``ValueError``: it has no zero padding to replace, and silently treating it as
unpadded would hide a model that is not what the experiment assumes.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pan.layers import analysed_layers

try:  # Optional dependency: TF-"SAME" convs that pick their padding from the input size.
    from efficientnet_lite_pytorch.utils import Conv2dDynamicSamePadding

    _DYNAMIC_SAME_PADDING_CONVS: tuple[type[nn.Module], ...] = (Conv2dDynamicSamePadding,)
except ImportError:
    _DYNAMIC_SAME_PADDING_CONVS = ()

__all__ = ["ChannelPaddedConv2d", "with_reflect_padding", "zero_padding"]

Padding = tuple[int, int, int, int]
"""Amounts of padding as ``(left, right, top, bottom)``, the order of ``F.pad``."""


def zero_padding(conv: nn.Conv2d, input_size: tuple[int, int] | None = None) -> Padding:
    """The zero padding ``(left, right, top, bottom)`` that ``conv`` applies to its input.

    Adds the conv's own ``padding`` (integers, tuples, ``'same'`` or ``'valid'``)
    to any explicit zero padding module it runs first (an attribute
    ``static_padding`` holding ``nn.ZeroPad2d``, a zero ``nn.ConstantPad2d`` or
    an identity, as in EfficientNet's ``Conv2dStaticSamePadding``).
    ``input_size`` ``(height, width)`` is needed only for convs that compute
    TF-"SAME" padding from the input at forward time (``Conv2dDynamicSamePadding``).

    Raises:
        ValueError: if ``conv`` does not pad with zeros (``padding_mode`` is not
            ``'zeros'``), its ``static_padding`` is not a zero padding, or
            ``input_size`` is missing for a dynamic-padding conv.
    """
    if conv.padding_mode != "zeros":
        raise ValueError(
            f"{type(conv).__name__} pads with {conv.padding_mode!r}, not zeros: "
            "there is no zero padding to replace with reflect"
        )
    if _padding_depends_on_input(conv):
        if input_size is None:
            raise ValueError(f"{type(conv).__name__} pads depending on the input: pass input_size")
        explicit = _tf_same_padding(conv, input_size)
    else:
        explicit = _static_padding(conv)
    return tuple(own + extra for own, extra in zip(_own_padding(conv), explicit, strict=True))


def _padding_depends_on_input(conv: nn.Conv2d) -> bool:
    """Whether ``conv`` computes its padding from the input size at forward time."""
    return isinstance(conv, _DYNAMIC_SAME_PADDING_CONVS)


def _own_padding(conv: nn.Conv2d) -> Padding:
    """The padding ``F.conv2d`` applies from ``conv.padding``, following PyTorch's rules."""
    if conv.padding == "valid":
        return (0, 0, 0, 0)
    if conv.padding == "same":
        total_h, total_w = (d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size, strict=True))
        return _split_evenly(total_h, total_w)
    pad_h, pad_w = conv.padding
    return (pad_w, pad_w, pad_h, pad_h)


def _static_padding(conv: nn.Conv2d) -> Padding:
    """Zero padding ``conv`` applies itself, through a ``static_padding`` module, before ``F.conv2d``."""
    pad = getattr(conv, "static_padding", None)
    # EfficientNet ports define their own ``Identity`` class, hence the name check.
    if pad is None or isinstance(pad, nn.Identity) or type(pad).__name__ == "Identity":
        return (0, 0, 0, 0)
    if isinstance(pad, nn.ZeroPad2d) or (isinstance(pad, nn.ConstantPad2d) and pad.value == 0):
        return tuple(pad.padding)
    raise ValueError(f"{type(conv).__name__}.static_padding is not a zero padding: {pad!r}")


def _tf_same_padding(conv: nn.Conv2d, input_size: tuple[int, int]) -> Padding:
    """TensorFlow's "SAME" padding: output size ``ceil(input / stride)``, extra pixel right/bottom."""
    totals = [
        max((-(-size // stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
        for size, stride, kernel, dilation in zip(
            input_size, conv.stride, conv.kernel_size, conv.dilation, strict=True
        )
    ]
    return _split_evenly(*totals)


def _split_evenly(total_h: int, total_w: int) -> Padding:
    """Split total padding between both sides, the odd pixel going right/bottom."""
    return (total_w // 2, total_w - total_w // 2, total_h // 2, total_h - total_h // 2)


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
    """

    def __init__(self, conv: nn.Conv2d, reflect_channels: Iterable[int] | Tensor) -> None:
        super().__init__()
        self.conv = conv
        # Known once for all inputs unless the conv pads by input size; computing it also
        # rejects convs that do not pad with zeros.
        self._fixed_padding = None if _padding_depends_on_input(conv) else zero_padding(conv)
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

    def forward(self, x: Tensor) -> Tensor:
        conv = self.conv
        if self.num_reflect_channels == 0:
            return conv(x)
        pads = self._fixed_padding
        if pads is None:
            pads = zero_padding(conv, input_size=tuple(x.shape[-2:]))
        _check_reflect_fits(pads, x)
        if self.selects_all_channels:
            reflect_padded = F.pad(x, pads, mode="reflect")
            return self._conv_unpadded(reflect_padded, conv.weight, conv.bias, conv.groups)

        zero_padded = conv(x)
        if self._reflect_input_channels is not None:
            x = x.index_select(1, self._reflect_input_channels)
        rows = self._reflect_weight_rows
        bias = conv.bias[rows] if conv.bias is not None else None
        reflect_padded = F.pad(x, pads, mode="reflect")
        reflected = self._conv_unpadded(reflect_padded, conv.weight[rows], bias, self.reflect_groups)
        if self._reflect_picked_outputs is not None:
            reflected = reflected.index_select(1, self._reflect_picked_outputs)
        # In place: ``zero_padded`` is this call's own fresh output, so no full-size copy is needed.
        return zero_padded.index_copy_(1, self.reflect_channels, reflected)

    def _conv_unpadded(self, x: Tensor, weight: Tensor, bias: Tensor | None, groups: int) -> Tensor:
        """The wrapped conv's stride and dilation over an already padded input."""
        return F.conv2d(x, weight, bias, self.conv.stride, 0, self.conv.dilation, groups)

    def extra_repr(self) -> str:
        return f"reflect_channels={self.num_reflect_channels}/{self.conv.out_channels}"


def _group_members(groups: Tensor, group_size: int) -> Tensor:
    """Flat indices of every member of ``groups`` when groups are consecutive blocks of ``group_size``."""
    offsets = torch.arange(group_size, device=groups.device)
    return (groups[:, None] * group_size + offsets).flatten()


def _check_reflect_fits(pads: Padding, x: Tensor) -> None:
    """Reflect padding must be smaller than the input it mirrors; say so plainly."""
    height, width = x.shape[-2:]
    left, right, top, bottom = pads
    if max(left, right) >= width or max(top, bottom) >= height:
        raise ValueError(
            f"reflect padding (left, right, top, bottom)={pads} needs each amount smaller than "
            f"the padded side; input is {height}x{width}"
        )


def with_reflect_padding(
    model: nn.Module, channels: Mapping[str, Iterable[int] | Tensor] | None = None
) -> nn.Module:
    """A variant of ``model`` where the given channels of analysed convs pad with reflect.

    ``channels=None`` selects every channel of every analysed layer (the
    ``reflect`` variant); otherwise it maps analysed layer names (module paths,
    as in :func:`pan.layers.analysed_layers`) to output channel indices or
    boolean masks. Layers absent from the mapping, or mapped to no channel, stay
    untouched.

    The module tree is deep-copied but every parameter and buffer is shared
    with ``model``, so the variant costs no weight memory and ``model`` itself
    is left unchanged. Sharing means in-place updates reach both models
    (training, or BatchNorm statistics in train mode): use variants in eval mode.
    The replaced convs live on as ``<name>.conv`` inside their wrapper.

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
        reflect_channels = _channel_indices(layer_channels, conv.out_channels)
        if reflect_channels.numel():
            variant.set_submodule(name, ChannelPaddedConv2d(conv, reflect_channels))
    return variant
