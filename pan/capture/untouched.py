"""A user's model, borrowed for a forward pass and handed back as it was.

pan runs models it did not build (:func:`pan.find_pans`, :func:`pan.with_reflect_padding`):
it may put them in eval mode and on its device for the pass, but afterwards every module's
mode and every parameter's and buffer's device are what they were, and no hook is left
(:func:`pan.inference.recording` removes its own). Inputs follow the model's dtype, so an
fp16 or bf16 model is fed its own precision rather than crashing on float32.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["borrowed", "first_input", "input_dtype", "unwrapped"]


@contextmanager
def borrowed(model: nn.Module, device: torch.device) -> Iterator[nn.Module]:
    """Within the block, ``model`` is in eval mode on ``device``; on exit (also on errors) each
    module's ``training`` flag and each parameter's and buffer's device are restored.

    Example::

        >>> import torch
        >>> net = torch.nn.Conv2d(3, 4, 3).train()
        >>> with borrowed(net, torch.device("cpu")):
        ...     net.training
        False
        >>> net.training
        True
    """
    if device.type == "meta":
        raise ValueError(
            "device 'meta' holds no weights, so a forward pass there computes nothing (and moving a "
            "model there destroys its weights): use 'cpu', 'cuda' or 'auto'"
        )
    modes = [(module, module.training) for module in model.modules()]
    places = [
        (module, kind, key, tensor.device)
        for module in model.modules()
        for kind, tensors in (("_parameters", module._parameters), ("_buffers", module._buffers))
        for key, tensor in tensors.items()
        if tensor is not None
    ]
    try:
        model.to(device).eval()
        yield model
    finally:
        for module, mode in modes:
            module.training = mode
        for module, kind, key, place in places:
            tensor = getattr(module, kind)[key]
            if tensor is not None and tensor.device != place:
                if kind == "_parameters":
                    tensor.data = tensor.data.to(place)
                else:
                    module._buffers[key] = tensor.to(place)


def input_dtype(model: nn.Module) -> torch.dtype:
    """The dtype the model's inputs should have: that of its first floating-point parameter
    (float16, bfloat16, ...), float32 when it has none."""
    import torch

    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def unwrapped(model: nn.Module) -> nn.Module:
    """``model`` itself, or the module inside a ``torch.compile`` wrapper (run eagerly, so hooks
    see every layer). A compiled module *inside* the model is refused, naming it: its layers'
    hooks and names (``..._orig_mod...``) cannot be relied on."""
    if _is_compiled(model):
        model = model._orig_mod
    inner = [name for name, module in model.named_modules() if name and _is_compiled(module)]
    if inner:
        raise ValueError(
            f"module(s) {inner} of the model are torch.compile'd; pan records layers with forward "
            "hooks, which a compiled module does not run reliably: give pan the model built without "
            "torch.compile (or put each compiled module's ._orig_mod back in its place)"
        )
    return model


def _is_compiled(module: Any) -> bool:
    return type(module).__name__ == "OptimizedModule" and hasattr(module, "_orig_mod")


def first_input(model: str, images: Sequence[Any], transform: Callable[[Any], torch.Tensor]) -> torch.Tensor:
    """The first of ``images`` (records or items), preprocessed by ``transform``, as a batch of
    one; refuses an input that is not a floating-point ``(channels, H, W)`` tensor, saying why."""
    import torch

    image = images[0]
    tensor = transform(image.load() if hasattr(image, "load") else image)
    if not isinstance(tensor, torch.Tensor) or tensor.ndim != 3:
        shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise ValueError(
            f"model {model!r}: the transform gives {shape} for an image, not a (channels, H, W) tensor"
        )
    if not tensor.is_floating_point():
        raise ValueError(
            f"model {model!r}: images are {tensor.dtype} tensors; pan feeds the model its input as "
            "is, so give floating-point images preprocessed as the model expects (for uint8 pixels: "
            "x.float() / 255, then the model's normalisation)"
        )
    return tensor[None]
