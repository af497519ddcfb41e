"""Zero ``Pad`` nodes of an onnx2torch graph folded into the convs they feed (:mod:`pan.capture.onnx`).

A ``Pad`` whose output reaches one conv through casts, identities and transposes only, padding
zeros on the spatial axes, becomes the conv's own padding (symmetric amounts) or an
``nn.ZeroPad2d`` right before it in an ``nn.Sequential`` (asymmetric), the two forms pan's
padding code reads and every §4 variant reflects.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

__all__ = ["OnnxConversionError", "fold_zero_pads"]

_PASS_THROUGH = ("OnnxCast", "OnnxCopyIdentity", "Identity")
"""onnx2torch modules that change neither the values nor the axes of a tensor."""


class OnnxConversionError(ValueError):
    """An ONNX graph cannot be turned into a PyTorch module; the message names the node."""


def fold_zero_pads(graph, probe, run) -> None:
    """Fold every zero ``Pad`` of ``graph`` that feeds one conv into that conv; ``run(graph, probe)``
    runs the graph once, recording the amounts each pad applies."""
    from torch import nn

    pads = {}  # pad node target -> torch-format amounts, recorded on the probe
    hooks = []
    for node in graph.graph.nodes:
        if node.op == "call_module" and type(graph.get_submodule(node.target)).__name__.startswith("OnnxPad"):
            module = graph.get_submodule(node.target)
            hooks.append(module.register_forward_hook(_pad_recorder(pads, node.target), with_kwargs=True))
    run(graph, probe)
    for hook in hooks:
        hook.remove()
    for node in list(graph.graph.nodes):
        record = pads.get(node.target) if node.op == "call_module" else None
        if record is None:
            continue
        amounts, mode, value, ndim = record
        found = _conv_after(graph, node) if mode == "constant" and value == 0 and ndim == 4 else None
        per_axis = _per_axis(amounts, ndim)
        if found is None or min(min(p) for p in per_axis) < 0:
            continue
        conv_node, axes = found
        (top, bottom), (left, right) = per_axis[axes[2]], per_axis[axes[3]]
        if any(per_axis[axes[0]]) or any(per_axis[axes[1]]):
            continue  # pads the batch or channel axis: not a spatial padding
        node.replace_all_uses_with(node.args[0])
        graph.graph.erase_node(node)
        _pad_conv(graph, conv_node.target, (left, right, top, bottom))
        logging.info("ONNX Pad %s folded into conv %s as zero padding", node.target, conv_node.target)
    for node in graph.graph.nodes:  # onnx2torch's own pad before an asymmetrically padded conv
        if node.op == "call_module" and isinstance(graph.get_submodule(node.target), nn.Sequential):
            _normalise_sequential(graph.get_submodule(node.target))
    graph.graph.eliminate_dead_code()
    graph.recompile()
    graph.delete_all_unused_submodules()


def _pad_recorder(pads: dict, target: str):
    def record(module, args, kwargs, output):
        from onnx2torch.node_converters.pad import _onnx_padding_to_torch

        if hasattr(module, "pads"):  # OnnxPadStatic: torch format already
            amounts, value = list(module.pads), module.constant_value
        else:
            amounts = _onnx_padding_to_torch(args[1].tolist())
            value = args[2] if len(args) > 2 else kwargs.get("constant_value", 0.0)
        value = float(value) if value is not None else 0.0
        pads[target] = (amounts, module.mode, value, args[0].ndim)

    return record


def _per_axis(amounts: list[int], ndim: int) -> list[tuple[int, int]]:
    """Torch-format pad amounts (last axis first) as ``(begin, end)`` for every axis."""
    amounts = list(amounts) + [0] * (2 * ndim - len(amounts))
    pairs = [(int(amounts[2 * j]), int(amounts[2 * j + 1])) for j in range(ndim)]
    return pairs[::-1]


def _conv_after(graph, node):
    """The conv node that ``node``'s output alone reaches through value- and axis-keeping nodes,
    with the axes of ``node``'s output that the conv's input axes are; ``None`` if none."""
    from torch import nn

    axes = [0, 1, 2, 3]
    while len(node.users) == 1:
        user = next(iter(node.users))
        if user.op != "call_module" or user.args[0] is not node:
            return None
        module = graph.get_submodule(user.target)
        if _analysed_conv(module) is not None:
            return user, axes
        name = type(module).__name__
        if name == "OnnxTranspose" and module.perm is not None and len(user.args) == 1:
            axes = [axes[p] for p in module.perm]
        elif not (name in _PASS_THROUGH or isinstance(module, nn.Identity)) or len(user.args) != 1:
            return None
        node = user
    return None


def _analysed_conv(module):
    from torch import nn

    if isinstance(module, nn.Sequential) and isinstance(module[-1], nn.Conv2d):
        return module[-1]
    return module if isinstance(module, nn.Conv2d) else None


def _pad_conv(graph, target: str, padding: tuple[int, int, int, int]) -> None:
    """Add zero ``padding`` (left, right, top, bottom) to the conv at ``target``."""
    from torch import nn

    module = graph.get_submodule(target)
    left, right, top, bottom = padding
    if (
        isinstance(module, nn.Conv2d)
        and left == right
        and top == bottom
        and isinstance(module.padding, tuple)
    ):
        module.padding = (module.padding[0] + top, module.padding[1] + left)
        return
    if isinstance(module, nn.Sequential):
        _normalise_sequential(module)
        if isinstance(module[0], nn.ZeroPad2d):
            old = module[0].padding
            module[0] = nn.ZeroPad2d(tuple(a + b for a, b in zip(old, padding, strict=True)))
            return
        raise OnnxConversionError(f"cannot fold an ONNX Pad into {target}: {module}")
    graph.add_submodule(target, nn.Sequential(OrderedDict(pad=nn.ZeroPad2d(padding), conv=module)))


def _normalise_sequential(module) -> None:
    """``onnx2torch``'s ``Sequential(OnnxPadStatic, Conv2d)``: the pad as an ``nn.ZeroPad2d``."""
    from torch import nn

    if len(module) != 2 or not isinstance(module[-1], nn.Conv2d):
        return
    pad = module[0]
    if type(pad).__name__ == "OnnxPadStatic" and pad.mode == "constant" and pad.constant_value == 0:
        per_axis = _per_axis(pad.pads, 4)
        if not any(per_axis[0] + per_axis[1]) and min(min(p) for p in per_axis) >= 0:
            (top, bottom), (left, right) = per_axis[2], per_axis[3]
            module[0] = nn.ZeroPad2d((left, right, top, bottom))
