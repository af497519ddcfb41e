"""Inference helpers shared by every forward pass of pan: device, batches of images, hooks.

The activation dump (§3), the variant evaluation (§4), the PAN cards and the Python API all
run models through these, so every forward pass picks its device, preprocesses images and
records layer outputs the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch loads on first use: reading the config must not cost a torch import
    import torch

    from .layers import AnalysedLayer

DEFAULT_MICRO_BATCH = 16
"""Images per forward pass: memory grows with it, results do not depend on it."""


def pick_device(preference: str = "auto") -> torch.device:
    """CUDA when there is one (or when asked), else the CPU."""
    import torch

    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


def preprocessed_batches(
    images: Sequence[Any], transform: Callable[[Any], torch.Tensor], micro_batch: int
) -> Iterator[torch.Tensor]:
    """Load (``.load()`` of an image record, or the image itself) and preprocess ``images`` with
    ``transform``, ``micro_batch`` at a time, in order."""
    import torch

    for start in range(0, len(images), micro_batch):
        chunk = images[start : start + micro_batch]
        yield torch.stack([transform(image.load() if hasattr(image, "load") else image) for image in chunk])


@contextmanager
def recording(
    layers: Sequence[AnalysedLayer], sink: Callable[[AnalysedLayer, torch.Tensor], None]
) -> Iterator[None]:
    """Within the block, every forward of a layer in ``layers`` hands its output to ``sink``.

    The hooks are removed on exit, also when the block raises, so none leak into later use.
    """
    handles = []
    try:
        for layer in layers:
            hook = lambda module, inputs, output, layer=layer: sink(layer, output.detach())
            handles.append(layer.module.register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


class LayerReached(Exception):
    """Raised by a sink once the layer it waits for has run: the rest of the forward pass is
    not needed (see :func:`layer_outputs`)."""


def layer_outputs(
    model: torch.nn.Module,
    layer: AnalysedLayer,
    batches: Iterator[torch.Tensor],
    device: torch.device,
    on_batch: Callable[[int], None] = lambda n: None,
) -> torch.Tensor:
    """The outputs of ``layer`` of ``model`` over ``batches``, on the CPU, stopping each forward
    pass as soon as the layer has run."""
    import torch

    captured: list[torch.Tensor] = []

    def keep_and_stop(_: AnalysedLayer, maps: torch.Tensor) -> None:
        captured.append(maps.float().cpu())
        raise LayerReached

    with torch.inference_mode(), recording([layer], keep_and_stop):
        for batch in batches:
            try:
                model(batch.to(device))
            except LayerReached:
                pass
            on_batch(len(batch))
    return torch.cat(captured)
