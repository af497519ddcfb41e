"""Record the feature maps of every analysed layer and stream them to Parquet, layer by layer.

One forward pass per micro-batch feeds every layer; each layer's maps go straight to its own
file (format: :mod:`pan.dumps`), so memory holds one micro-batch of maps, never the whole
batch of every layer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TextIO

import torch
from torch import nn

from .dumps import LayerDump, LayerWriters, write_manifest
from .images import ImageRecord, ImageSpec, image_records
from .layers import AnalysedLayer, analysed_layers
from .logs import image_progress
from .models import LoadedModel, ModelSpec, load_model


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


def pick_device(preference: str = "auto") -> torch.device:
    """CUDA when there is one (or when asked), else the CPU."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


def preprocessed_batches(
    records: Sequence[ImageRecord], loaded: LoadedModel, batch_size: int
) -> Iterator[torch.Tensor]:
    """Decode and preprocess ``records`` with the model's own transform, in order."""
    for start in range(0, len(records), batch_size):
        yield torch.stack([loaded.transform(r.load()) for r in records[start : start + batch_size]])


def dump_activations(
    model: ModelSpec,
    images: ImageSpec,
    out_dir: str | Path,
    micro_batch: int = 16,
    device: str = "auto",
    progress: TextIO | None = None,
) -> list[LayerDump]:
    """Run ``images`` through ``model`` and write every analysed layer's maps under ``out_dir``.

    Progress (images/s) goes to ``progress``, by default the current ``sys.stderr`` (the job's
    log under :func:`pan.logs.log_to`).
    """
    loaded = load_model(model)  # first: a missing-weights error comes before any image work
    records = image_records(images)
    target = pick_device(device)
    net: nn.Module = loaded.model.to(target)
    layers = analysed_layers(net)
    if not layers:
        raise ValueError(f"model {model.name!r} has no Conv2d layer with a kernel larger than 1x1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bar = image_progress(len(records), f"activations {model.name}", progress)
    with ExitStack() as stack, torch.inference_mode():
        writers = LayerWriters(out_dir, stack)
        sink = lambda layer, maps: writers.write(
            layer.index, layer.name, layer.kernel_size, maps.float().cpu().numpy()
        )
        stack.enter_context(recording(layers, sink))
        for batch in preprocessed_batches(records, loaded, micro_batch):
            net(batch.to(target))
            writers.first_sample += len(batch)
            bar.update(len(batch))
    bar.close()
    dumps = [writers.dumps[layer.name] for layer in layers if layer.name in writers.dumps]
    write_manifest(out_dir, model.name, dumps, records)
    return dumps
