"""Inference helpers shared by every forward pass of pan: device, precision, batches, hooks.

The activation dump (§3), the variant evaluation (§4), the PAN cards and the Python API all
run models through these, so every forward pass picks its device, keeps float32 exact,
preprocesses images and records layer outputs the same way:

- :func:`full_float32`: CUDA computes float32 convolutions and matmuls in TF32 by default, so
  activations and labels would depend on the machine; within pan's forward passes they run
  in full float32, and the user's setting comes back afterwards.
- :func:`preprocessed_batches`: images are decoded and preprocessed by a few threads (PIL
  and torchvision release the GIL), in order, a bounded number of micro-batches ahead, into
  pinned memory when they go to a GPU.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch loads on first use: reading the config must not cost a torch import
    import torch

    from pan.capture.layers import AnalysedLayer

__all__ = [
    "DEFAULT_MICRO_BATCH",
    "ImageShapeError",
    "LayerReached",
    "PREFETCH_BATCHES",
    "decode_workers",
    "full_float32",
    "layer_outputs",
    "pick_device",
    "preprocessed_batches",
    "recording",
]

DEFAULT_MICRO_BATCH = 4
"""Images per forward pass. On a CPU small batches are the fast ones: EfficientNet-Lite0-2 on 2
threads run 4 images at 2.3-3.1x the images/s of 16, whose maps no longer fit the caches, and
batches of 4, 8 and 16 gave bit-identical logits, 1 or 2 did not (``benchmarks/micro_batch.py``).
On a GPU larger batches are faster: set ``micro_batch`` to 32-64 there."""
PREFETCH_BATCHES = 2
"""Micro-batches decoded ahead of the forward pass: memory stays bounded by a few of them."""


def decode_workers() -> int:
    """Threads that decode and preprocess images: the cores there are, at most 8."""
    return max(
        1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    )


def pick_device(preference: str = "auto") -> torch.device:
    """CUDA when there is one (or when asked), else the CPU."""
    import torch

    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


@contextmanager
def full_float32() -> Iterator[None]:
    """Within the block, float32 convolutions and matmuls on CUDA run in full float32 (no TF32);
    the previous settings are restored on exit, also when the block raises."""
    import torch

    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    saved = conv.fp32_precision, matmul.fp32_precision
    conv.fp32_precision = matmul.fp32_precision = "ieee"
    try:
        yield
    finally:
        conv.fp32_precision, matmul.fp32_precision = saved


def preprocessed_batches(
    images: Sequence[Any],
    transform: Callable[[Any], torch.Tensor],
    micro_batch: int,
    workers: int | None = None,
    pin_memory: bool = False,
) -> Iterator[torch.Tensor]:
    """Load (``.load()`` of an image record, or the image itself) and preprocess ``images`` with
    ``transform``, ``micro_batch`` at a time, in order; ``workers`` threads (default
    :func:`decode_workers`) work up to :data:`PREFETCH_BATCHES` micro-batches ahead."""
    import torch

    def prepared(image: Any) -> torch.Tensor:
        return transform(image.load() if hasattr(image, "load") else image)

    first: list = []  # (shape, position) of the first image: every image must match it

    def stacked(start: int, tensors: list[torch.Tensor]) -> torch.Tensor:
        for offset, tensor in enumerate(tensors):
            if not first:
                first.append((tuple(tensor.shape), start + offset))
            elif tuple(tensor.shape) != first[0][0]:
                raise ImageShapeError(
                    f"images {_image_name(images, first[0][1])} and {_image_name(images, start + offset)} "
                    f"have different shapes after the transform, {first[0][0]} and {tuple(tensor.shape)}; "
                    "a layer's maps must have one size across the batch: use a transform that "
                    "ends in a fixed-size crop (resize the short side, then centre-crop)"
                )
        batch = torch.stack(tensors)
        return batch.pin_memory() if pin_memory else batch

    starts = range(0, len(images), micro_batch)
    chunks = [images[start : start + micro_batch] for start in starts]
    workers = workers or decode_workers()
    if workers == 1:
        for start, chunk in zip(starts, chunks, strict=True):
            yield stacked(start, [prepared(image) for image in chunk])
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="pan-decode") as pool:
        pending: deque[tuple[int, list]] = deque()
        for start, chunk in zip(starts, chunks, strict=True):
            pending.append((start, [pool.submit(prepared, image) for image in chunk]))
            if len(pending) > PREFETCH_BATCHES:
                start_done, futures = pending.popleft()
                yield stacked(start_done, [future.result() for future in futures])
        while pending:
            start_done, futures = pending.popleft()
            yield stacked(start_done, [future.result() for future in futures])


class ImageShapeError(ValueError):
    """Two images of one batch differ in shape after the transform; the message names both."""


def _image_name(images: Sequence[Any], position: int) -> str:
    """An image of a batch as errors name it: its record's id, else its position."""
    image = images[position]
    return repr(image.id) if hasattr(image, "id") else f"#{position}"


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

    with torch.inference_mode(), full_float32(), recording([layer], keep_and_stop):
        for batch in batches:
            try:
                model(batch.to(device))
            except LayerReached:
                pass
            on_batch(len(batch))
    return torch.cat(captured)
