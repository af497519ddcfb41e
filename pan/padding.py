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

A convolution whose ``padding_mode`` is not ``'zeros'`` (reflect, replicate, circular)
has no zero padding to replace: every variant leaves it as it is, and
:func:`layer_padding` names what it pads with, so its neurons, which cannot see zero
padding, can only be downstream PANs. :class:`ChannelPaddedConv2d` itself refuses one.

Zero padding comes in several forms, all treated alike (:func:`zero_padding`):

- the conv's own ``padding`` (integers, tuples, ``'same'``, ``'valid'``), which covers
  timm's ``create_conv2d`` when TF "SAME" padding is static (stride 1, odd kernel: it
  becomes symmetric padding of a plain ``nn.Conv2d``);
- a ``static_padding`` module run by the conv (EfficientNet-Lite's
  ``Conv2dStaticSamePadding``) or the cached ``pad`` of timm's ``Conv2dSameExport``;
- TF "SAME" padding computed from the input size at forward time: EfficientNet-Lite's
  ``Conv2dDynamicSamePadding``, timm's ``Conv2dSame`` (what ``create_conv2d`` builds when
  "SAME" cannot be static), ``Conv2dSameExport`` before its first call and
  ``StdConv2dSame``/``ScaledStdConv2dSame`` with ``same_pad``;
- a zero ``nn.ZeroPad2d``/``nn.ConstantPad2d`` right before the conv in an
  ``nn.Sequential`` (timm's ``cpubone``, hand-built nets): :func:`with_reflect_padding`
  folds it into the wrapped conv (``input_padding``) and leaves an ``nn.Identity`` in
  its place, so the selected channels see reflect padding by the sum of both amounts.

timm's weight-standardised convs (``StdConv2d``, ``ScaledStdConv2d`` and their ``Same``
forms) convolve with a standardised weight, which the reflect pass reproduces. Any other
``Conv2d`` subclass that overrides ``forward`` is rejected by :class:`ChannelPaddedConv2d`:
calling ``F.conv2d`` with its raw weight could silently compute something else.
timm's ``MixedConv2d`` is an ``nn.ModuleDict`` of plain/``Conv2dSame`` convs, each analysed
and wrapped on its own (``<name>.0``, ``<name>.1``, ...); ``CondConv2d`` is no ``Conv2d``
subclass, so it is not analysed and keeps zero padding in every variant.
"""

from __future__ import annotations

import copy
import itertools
import logging
import sys
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

_PLAIN_FORWARDS = {nn.Conv2d.forward}
"""Conv forwards that amount to ``F.conv2d(pad(x), conv.weight, ...)``; extended lazily."""

__all__ = [
    "ChannelPaddedConv2d",
    "effective_weight",
    "is_zero_pad_module",
    "tf_same_padding",
    "with_reflect_padding",
    "zero_padding",
]

Padding = tuple[int, int, int, int]
"""Amounts of padding as ``(left, right, top, bottom)``, the order of ``F.pad``."""


def zero_padding(conv: nn.Conv2d, input_size: tuple[int, int] | None = None) -> Padding:
    """The zero padding ``(left, right, top, bottom)`` that ``conv`` applies to its input.

    Adds the conv's own ``padding`` (integers, tuples, ``'same'`` or ``'valid'``)
    to any explicit zero padding module it runs first (an attribute
    ``static_padding`` holding ``nn.ZeroPad2d``, a zero ``nn.ConstantPad2d`` or
    an identity, as in EfficientNet's ``Conv2dStaticSamePadding``; the cached ``pad``
    of timm's ``Conv2dSameExport``).
    ``input_size`` ``(height, width)`` is needed only for convs that compute
    TF-"SAME" padding from the input at forward time (``Conv2dDynamicSamePadding``,
    timm's ``Conv2dSame``, ``StdConv2dSame`` and ``Conv2dSameExport`` before its first call).
    A pad module *before* the conv is not the conv's: see :func:`with_reflect_padding`.

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
        explicit = tf_same_padding(conv.kernel_size, conv.stride, conv.dilation, input_size)
    else:
        explicit = _static_padding(conv)
    return tuple(own + extra for own, extra in zip(_own_padding(conv), explicit, strict=True))


def _timm_class(module: str, name: str) -> type | None:
    """A timm class if timm is already imported (a model holding timm layers imported it)."""
    loaded = sys.modules.get(module)
    return getattr(loaded, name, None) if loaded is not None else None


def _timm_kind(conv: nn.Module) -> str | None:
    """Which timm conv ``conv`` is: 'same', 'same_export', 'std', 'std_same' or None.

    Looked up in ``sys.modules``: a model holding timm layers has imported timm, and pan
    never imports it (seconds of start-up) for models that do not.
    """
    kinds = {
        ("timm.layers.conv2d_same", "Conv2dSame"): "same",
        ("timm.layers.conv2d_same", "Conv2dSameExport"): "same_export",
        ("timm.layers.std_conv", "StdConv2d"): "std",
        ("timm.layers.std_conv", "ScaledStdConv2d"): "std",
        ("timm.layers.std_conv", "StdConv2dSame"): "std_same",
        ("timm.layers.std_conv", "ScaledStdConv2dSame"): "std_same",
    }
    for (module, name), kind in kinds.items():
        cls = _timm_class(module, name)
        if cls is not None and isinstance(conv, cls):
            return kind
    return None


def _padding_depends_on_input(conv: nn.Module) -> bool:
    """Whether ``conv`` computes its padding from the input size at forward time."""
    if isinstance(conv, _DYNAMIC_SAME_PADDING_CONVS):
        return True
    kind = _timm_kind(conv)
    if kind == "same":
        return True
    if kind == "same_export":  # pads by the size of its first input, then keeps that pad
        return getattr(conv, "pad", None) is None
    return kind == "std_same" and bool(getattr(conv, "same_pad", False))


def effective_weight(conv: nn.Conv2d) -> Tensor:
    """The weight ``conv`` convolves with: ``conv.weight``, standardised for timm's StdConv convs.

    Raises:
        ValueError: for a ``Conv2d`` subclass whose ``forward`` pan does not know, since its
            output may not be ``F.conv2d`` of the raw weight over the padded input.
    """
    kind = _timm_kind(conv)
    if kind in ("std", "std_same"):
        gain = getattr(conv, "gain", None)
        scale = None if gain is None else (gain * conv.scale).view(-1)
        flat = conv.weight.reshape(1, conv.out_channels, -1)
        return F.batch_norm(
            flat, None, None, weight=scale, training=True, momentum=0.0, eps=conv.eps
        ).reshape_as(conv.weight)
    if kind is None and type(conv).forward not in _known_plain_forwards():
        raise ValueError(
            f"{type(conv).__name__} overrides Conv2d.forward in a way pan does not know: its reflect "
            "variant cannot be built (supported: nn.Conv2d, EfficientNet-Lite's same-padding convs, "
            "timm's Conv2dSame, Conv2dSameExport and StdConv convs)"
        )
    return conv.weight


def _known_plain_forwards() -> set:
    """Forwards equal to zero padding then ``F.conv2d`` with ``conv.weight``."""
    if len(_PLAIN_FORWARDS) == 1:
        _PLAIN_FORWARDS.update(cls.forward for cls in _DYNAMIC_SAME_PADDING_CONVS)
        try:
            from efficientnet_lite_pytorch.utils import Conv2dStaticSamePadding

            _PLAIN_FORWARDS.add(Conv2dStaticSamePadding.forward)
        except ImportError:
            pass
    return _PLAIN_FORWARDS


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
    attribute = "pad" if _timm_kind(conv) == "same_export" else "static_padding"
    pad = getattr(conv, attribute, None)
    # EfficientNet ports define their own ``Identity`` class, hence the name check.
    if pad is None or isinstance(pad, nn.Identity) or type(pad).__name__ == "Identity":
        return (0, 0, 0, 0)
    if is_zero_pad_module(pad):
        return tuple(pad.padding)
    raise ValueError(f"{type(conv).__name__}.{attribute} is not a zero padding: {pad!r}")


def is_zero_pad_module(module: nn.Module) -> bool:
    """``nn.ZeroPad2d`` or ``nn.ConstantPad2d`` with value 0 that only adds (no negative amounts)."""
    return (
        isinstance(module, nn.ConstantPad2d)
        and module.value == 0
        and len(module.padding) == 4
        and min(module.padding) >= 0
    )


def tf_same_padding(
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    input_size: tuple[int, int],
) -> Padding:
    """TensorFlow's "SAME" padding: output size ``ceil(input / stride)``, extra pixel right/bottom.

    The same rule as timm's ``pad_same`` and EfficientNet-Lite's dynamic convs.
    """
    totals = [
        max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        for size, s, k, d in zip(input_size, _pair(stride), _pair(kernel_size), _pair(dilation), strict=True)
    ]
    return _split_evenly(*totals)


def _pair(value: int | Iterable[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


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
        self._standardised_weight = _timm_kind(conv) in ("std", "std_same")
        self.input_padding = tuple(int(p) for p in input_padding)
        if len(self.input_padding) != 4 or min(self.input_padding) < 0:
            raise ValueError(f"input_padding must be 4 non-negative amounts, got {input_padding}")
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
        _check_reflect_fits(pads, x)
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
            variant.set_submodule(name, ChannelPaddedConv2d(conv, reflect_channels, input_padding))
    return variant


def layer_padding(model: nn.Module, name: str) -> str:
    """What the analysed conv ``name`` of ``model`` pads its input with: ``"zeros"`` (its own
    padding, a pad module run by it or right before it, or TF "SAME" padding), ``"none"`` (no
    padding at all), or its ``padding_mode`` (``"reflect"``, ``"replicate"``, ``"circular"``); in
    a variant, ``"reflect"`` (or ``"zeros and reflect"`` when only some channels reflect)."""
    conv = model.get_submodule(name)
    if isinstance(conv, ChannelPaddedConv2d):  # a variant's conv (the reflect control's)
        return "reflect" if conv.selects_all_channels else "zeros and reflect"
    if conv.padding_mode != "zeros":
        return conv.padding_mode
    if _padding_depends_on_input(conv) or any(zero_padding(conv)) or any(_pad_module_before(model, name)):
        return "zeros"
    return "none"


def _pad_module_before(model: nn.Module, name: str) -> Padding:
    """The padding of a zero pad module right before ``name`` in a plain ``nn.Sequential``."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    if not isinstance(parent, nn.Sequential) or type(parent).forward is not nn.Sequential.forward:
        return (0, 0, 0, 0)
    keys = list(parent._modules)
    position = keys.index(child)
    if position == 0 or not is_zero_pad_module(parent._modules[keys[position - 1]]):
        return (0, 0, 0, 0)
    return tuple(parent._modules[keys[position - 1]].padding)


def _take_pad_module_before(model: nn.Module, name: str) -> Padding:
    """Replace a zero pad module right before ``name`` in its ``nn.Sequential`` by an identity.

    Returns the padding it applied, ``(0, 0, 0, 0)`` when there is none.
    """
    padding = _pad_module_before(model, name)
    if any(padding):
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        keys = list(parent._modules)
        parent._modules[keys[keys.index(child) - 1]] = nn.Identity()
    return padding
