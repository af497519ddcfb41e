"""What a conv pads its input with: zero padding in all its forms, read without running it.

The §4 variants (:mod:`pan.bias.reflect`) replace exactly the zero padding found here.
The paper's setting, for context:

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

import sys
from collections.abc import Iterable

import torch.nn.functional as F
from torch import Tensor, nn

try:  # Optional dependency: TF-"SAME" convs that pick their padding from the input size.
    from efficientnet_lite_pytorch.utils import Conv2dDynamicSamePadding

    _DYNAMIC_SAME_PADDING_CONVS: tuple[type[nn.Module], ...] = (Conv2dDynamicSamePadding,)
except ImportError:
    _DYNAMIC_SAME_PADDING_CONVS = ()

_PLAIN_FORWARDS = {nn.Conv2d.forward}
"""Conv forwards that amount to ``F.conv2d(pad(x), conv.weight, ...)``; extended lazily."""

__all__ = [
    "effective_weight",
    "is_zero_pad_module",
    "register_zero_padded_conv",
    "tf_same_padding",
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
    if padding_depends_on_input(conv):
        if input_size is None:
            raise ValueError(f"{type(conv).__name__} pads depending on the input: pass input_size")
        explicit = tf_same_padding(conv.kernel_size, conv.stride, conv.dilation, input_size)
    else:
        explicit = declared_static_padding(conv)
    return tuple(own + extra for own, extra in zip(own_padding(conv), explicit, strict=True))


def _timm_class(module: str, name: str) -> type | None:
    """A timm class if timm is already imported (a model holding timm layers imported it)."""
    loaded = sys.modules.get(module)
    return getattr(loaded, name, None) if loaded is not None else None


def timm_kind(conv: nn.Module) -> str | None:
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


def padding_depends_on_input(conv: nn.Module) -> bool:
    """Whether ``conv`` computes its padding from the input size at forward time."""
    if isinstance(conv, _DYNAMIC_SAME_PADDING_CONVS):
        return True
    kind = timm_kind(conv)
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
    kind = timm_kind(conv)
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


def register_zero_padded_conv(cls: type[nn.Conv2d]) -> None:
    """Declare that ``cls.forward`` pads by :func:`zero_padding` (its ``padding`` and
    ``static_padding``) then convolves with ``weight``, on every channel it does not already
    reflect itself, so :class:`pan.bias.reflect.ChannelPaddedConv2d` may wrap it (e.g. a
    repaired student's convs)."""
    _known_plain_forwards().add(cls.forward)


def own_padding(conv: nn.Conv2d) -> Padding:
    """The padding ``F.conv2d`` applies from ``conv.padding``, following PyTorch's rules."""
    if conv.padding == "valid":
        return (0, 0, 0, 0)
    if conv.padding == "same":
        total_h, total_w = (d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size, strict=True))
        return _split_evenly(total_h, total_w)
    pad_h, pad_w = conv.padding
    return (pad_w, pad_w, pad_h, pad_h)


def declared_static_padding(conv: nn.Conv2d) -> Padding:
    """Zero padding ``conv`` applies itself, through a ``static_padding`` module, before ``F.conv2d``."""
    attribute = "pad" if timm_kind(conv) == "same_export" else "static_padding"
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


def layer_padding(model: nn.Module, name: str) -> str:
    """What the analysed conv ``name`` of ``model`` pads its input with: ``"zeros"`` (its own
    padding, a pad module run by it or right before it, or TF "SAME" padding), ``"none"`` (no
    padding at all), ``"unknown"`` (a ``Conv2d`` subclass with a ``forward`` of its own that pan
    does not know, which may pad in ways its attributes do not show, e.g. a user's own
    ``Conv2dSame``), or its ``padding_mode`` (``"reflect"``, ``"replicate"``, ``"circular"``); in
    a variant, ``"reflect"`` (or ``"zeros and reflect"`` when only some channels reflect)."""
    conv = model.get_submodule(name)
    variant_padding = getattr(conv, "variant_padding", None)  # a §4 variant's conv (pan.bias.reflect)
    if variant_padding is not None:
        return variant_padding
    if conv.padding_mode != "zeros":
        return conv.padding_mode
    if padding_depends_on_input(conv) or any(pad_module_before(model, name)):
        return "zeros"
    if timm_kind(conv) is None and type(conv).forward not in _known_plain_forwards():
        return "unknown"
    if any(zero_padding(conv)):
        return "zeros"
    return "none"


def pad_module_before(model: nn.Module, name: str) -> Padding:
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
