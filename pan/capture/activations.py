"""Record the feature maps of every analysed layer and stream them to Parquet, layer by layer.

One forward pass per micro-batch feeds every layer; each layer's maps go straight to its own
file (format: :mod:`pan.core.dumps`), so memory holds one micro-batch of maps, never the whole
batch of every layer. The workflow (:func:`dump_activations`) and the Python API
(:func:`pan.api.find_pans`) both go through :func:`dump_module_activations`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import nn

from pan.capture.images import ImageRecord, ImageSpec, image_records
from pan.capture.inference import (
    DEFAULT_MICRO_BATCH,
    LayerReached,
    full_float32,
    pick_device,
    preprocessed_batches,
    recording,
)
from pan.capture.layers import AnalysedLayer, analysed_layers, check_layer_names, in_forward_order
from pan.capture.models import ModelSpec, load_model
from pan.capture.padding import layer_padding
from pan.capture.untouched import borrowed, first_input, input_dtype, unwrapped
from pan.core.dumps import (
    MANIFEST,
    PENDING_MICRO_BATCHES,
    BackgroundWrites,
    LayerDump,
    LayerWriters,
    write_manifest,
)
from pan.logs import image_progress

__all__ = ["check_single_calls", "dump_activations", "dump_module_activations", "record_maps"]


def check_single_calls(model: str, calls: Mapping[str, int]) -> None:
    """Refuse a forward pass that ran an analysed layer more than once (``calls``: layer -> count).

    A conv run twice per forward pass (weight sharing, a recurrent block, one conv at two
    scales) gives each image several maps of different depths or sizes; one KS sample per
    layer would mix them, so such layers are refused rather than analysed wrongly.
    """
    repeated = {name: count for name, count in calls.items() if count > 1}
    if repeated:
        listing = ", ".join(f"{name!r} ({count} calls)" for name, count in repeated.items())
        raise ValueError(
            f"model {model!r}: analysed layer(s) {listing} ran more than once per forward pass "
            "(weight sharing, a recurrent block or one conv at several scales); pan needs one map "
            "per image and layer, so it cannot analyse such a layer: give each use of the conv its "
            "own module"
        )


def check_whole_batch(model: str, layer: str, images: int, batch: int) -> None:
    """Refuse a layer that ran on ``images`` of a micro-batch of ``batch`` (a branch taken for
    some inputs only): its KS sample would hold fewer images than the batch, below the minimum
    the analysis needs, without saying so."""
    if images != batch:
        raise ValueError(
            f"model {model!r}: analysed layer {layer!r} ran on {images} of the {batch} images of a "
            "micro-batch (a branch taken for some inputs only); pan scores every layer on every "
            "image of the batch: make the branch run for every image, or analyse a model without it"
        )


def check_every_image(model: str, rows: Mapping[str, int], images: int) -> None:
    """Refuse layers that ran for some micro-batches and not for others (``rows``: layer ->
    images seen, of ``images``)."""
    partial = {layer: seen for layer, seen in rows.items() if seen != images}
    if partial:
        listing = ", ".join(f"{layer!r} ({seen} of {images} images)" for layer, seen in partial.items())
        raise ValueError(
            f"model {model!r}: analysed layer(s) {listing} did not run for every image (a branch "
            "taken for some inputs only); pan scores every layer on every image of the batch: make "
            "the branch run for every image, or analyse a model without it"
        )


def dump_activations(
    model: ModelSpec,
    images: ImageSpec,
    out_dir: str | Path,
    micro_batch: int = DEFAULT_MICRO_BATCH,
    device: str = "auto",
    progress: TextIO | None = None,
) -> list[LayerDump]:
    """Run ``images`` through the model of ``model`` and write every analysed layer's maps
    under ``out_dir``, each with the model's own evaluation transform.

    Progress (images/s) goes to ``progress``, by default the current ``sys.stderr`` (the job's
    log under :func:`pan.logs.log_to`).
    """
    loaded = load_model(model)  # first: a missing-weights error comes before any image work
    return dump_module_activations(
        loaded.model,
        loaded.transform,
        image_records(images),
        out_dir,
        model.name,
        micro_batch,
        device,
        progress,
    )


def dump_module_activations(
    net: nn.Module,
    transform: Callable[[Any], torch.Tensor],
    records: Sequence[ImageRecord],
    out_dir: str | Path,
    name: str,
    micro_batch: int = DEFAULT_MICRO_BATCH,
    device: str = "auto",
    progress: TextIO | None = None,
    layers: Sequence[AnalysedLayer] | None = None,
) -> list[LayerDump]:
    """Write every analysed layer's maps of the model ``net`` (named ``name``) over ``records``,
    preprocessed by ``transform``, under ``out_dir``; the manifest is written last.

    ``layers`` (default: :func:`pan.capture.layers.analysed_layers` of ``net``) are the modules whose
    outputs are recorded, e.g. the reflect wrappers of a variant under their convs' names."""
    target, net, layers = _recording_setup(net, name, device, layers)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST).unlink(missing_ok=True)  # a failed rerun must not leave a stale manifest
    bar = image_progress(len(records), f"activations {name}", progress)
    calls: Counter[str] = Counter()  # hook calls per layer in the current forward pass
    rows: Counter[str] = Counter()  # images each layer has seen so far
    current = [0]  # images in the current micro-batch

    def sink(layer: AnalysedLayer, maps: torch.Tensor) -> None:
        calls[layer.name] += 1
        if calls[layer.name] == 1:  # a second call is refused after the pass, never written
            check_whole_batch(name, layer.name, len(maps), current[0])
            rows[layer.name] += len(maps)
            # A copy: the model may change its conv's output in place after the hook (ReLU).
            values = maps.to("cpu", torch.float32, copy=True).numpy()
            background.submit(writers.write, layer.index, layer.name, layer.kernel_size, values, first)

    writers: LayerWriters | None = None
    first = 0
    on_gpu = target.type == "cuda"
    try:
        with ExitStack() as stack, torch.inference_mode(), full_float32():
            stack.enter_context(borrowed(net, target))
            dtype = input_dtype(net)
            example = first_input(name, records, transform).to(target, dtype)
            layers = in_forward_order(net, layers, example, name)
            paddings = {layer.name: layer_padding(net, layer.name) for layer in layers}
            writers = LayerWriters(out_dir, stack, paddings)
            background = stack.enter_context(BackgroundWrites(limit=PENDING_MICRO_BATCHES * len(layers)))
            stack.enter_context(recording(layers, sink))
            for batch in preprocessed_batches(records, transform, micro_batch, pin_memory=on_gpu):
                calls.clear()
                current[0] = len(batch)
                net(batch.to(target, dtype, non_blocking=on_gpu))
                check_single_calls(name, calls)
                first += len(batch)
                bar.update(len(batch))
            check_every_image(name, rows, len(records))
    except BaseException:  # no half-written layer files without a manifest
        for dump in writers.dumps.values() if writers else ():
            (out_dir / dump.file).unlink(missing_ok=True)
        raise
    bar.close()
    dumps = [writers.dumps[layer.name] for layer in layers if layer.name in writers.dumps]
    write_manifest(out_dir, name, dumps, records)
    return dumps


def _recording_setup(net, name: str, device: str, layers) -> tuple:
    """``(device, unwrapped net, its analysed layers)`` for a recording pass, the layers checked:
    at least one, and names that name files."""
    target = pick_device(device)
    net = unwrapped(net)
    layers = analysed_layers(net) if layers is None else list(layers)
    if not layers:
        raise ValueError(f"model {name!r} has no Conv2d layer with a kernel larger than 1x1")
    check_layer_names(name, layers)
    return target, net, layers


def record_maps(
    net: nn.Module,
    transform: Callable[[Any], torch.Tensor],
    records: Sequence[ImageRecord],
    name: str,
    groups: Sequence[Sequence[str]] | None = None,
    micro_batch: int = DEFAULT_MICRO_BATCH,
    device: str = "auto",
    progress: TextIO | None = None,
    layers: Sequence[AnalysedLayer] | None = None,
) -> Iterator[tuple[AnalysedLayer, Any]]:
    """``(layer, maps)`` of every analysed layer, in forward order, with the maps held in memory:
    float32 arrays ``(images, neurons, H, W)``, the values :func:`dump_module_activations`
    writes (same layers, indexes, checks and forward passes), for runs whose dump nobody reads
    again (controls, draws): scoring them skips a Parquet write and read of the whole dump.

    ``groups`` (layer names; default one group of every layer) are recorded one forward pass
    each, over images decoded once, so memory holds one group's maps
    (:func:`pan.workflow.resources.map_groups`); a group is yielded layer by layer, so a caller
    that drops each array once scored frees it."""
    import numpy as np

    target, net, layers = _recording_setup(net, name, device, layers)
    on_gpu = target.type == "cuda"
    with ExitStack() as stack, torch.inference_mode(), full_float32():
        stack.enter_context(borrowed(net, target))
        dtype = input_dtype(net)
        layers = in_forward_order(net, layers, first_input(name, records, transform).to(target, dtype), name)
        batches = list(preprocessed_batches(records, transform, micro_batch))  # a few MB each
        by_name = {layer.name: layer for layer in layers}
        grouped = {n for group in groups or [] for n in group}
        plan = [list(g) for g in groups or []] + [
            [layer.name for layer in layers if layer.name not in grouped]
        ]
        plan = [[n for n in group if n in by_name] for group in plan]
        plan = [group for group in plan if group]
        for number, group in enumerate(plan):
            chosen = [by_name[n] for n in group]
            maps: dict[str, np.ndarray] = {}
            calls: Counter[str] = Counter()  # hook calls per layer in the current forward pass
            rows: Counter[str] = Counter()  # images each layer has seen so far
            # A pass for a group before the last stops once its layers have run: shallow groups
            # cost part of a forward pass. The last group's pass runs the whole model.
            at = {"first": 0, "batch": 0, "stop": number < len(plan) - 1, "size": len(chosen)}

            def sink(
                layer: AnalysedLayer,
                values: torch.Tensor,
                maps=maps,
                calls=calls,
                rows=rows,
                at=at,
            ) -> None:
                calls[layer.name] += 1
                if calls[layer.name] == 1:  # a second call is refused after the pass
                    check_whole_batch(name, layer.name, len(values), at["batch"])
                    rows[layer.name] += len(values)
                    if layer.name not in maps:
                        maps[layer.name] = np.empty((len(records), *values.shape[1:]), dtype=np.float32)
                    # Copied now: the model may change its conv's output in place (ReLU).
                    first = at["first"]
                    maps[layer.name][first : first + len(values)] = values.to("cpu", torch.float32).numpy()
                if at["stop"] and len(calls) == at["size"]:  # the group's deepest layer has run
                    raise LayerReached

            bar = image_progress(len(records), f"activations {name} ({len(chosen)} layers)", progress)
            with recording(chosen, sink):
                for batch in batches:
                    calls.clear()
                    at["batch"] = len(batch)
                    try:
                        net(batch.to(target, dtype, non_blocking=on_gpu))
                    except LayerReached:
                        pass
                    check_single_calls(name, calls)
                    at["first"] += len(batch)
                    bar.update(len(batch))
            bar.close()
            check_every_image(name, rows, len(records))
            for layer in chosen:
                if layer.name in maps:
                    yield layer, maps.pop(layer.name)
