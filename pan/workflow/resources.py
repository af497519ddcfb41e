"""Memory requests of the heavy jobs, derived from layer shapes.

A cluster scheduler kills a job that uses more memory than it asked for, so requests must
follow the model: the activation dump from the shapes of its analysed layers (one shape-only
pass of the model on the meta device, in a light job before the dump), a KS job from the
shape of its layer's dump. ``tests/test_resources.py`` checks both against measured peaks.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pan.core.chunks import groups_from_back

__all__ = [
    "DUMP_BASE_MB",
    "KS_BASE_MB",
    "KS_LAYER_FACTOR",
    "MAPS_BUDGET_MB",
    "MB",
    "in_memory_ks_mem_mb",
    "map_groups",
    "dump_mem_mb",
    "ks_dump_mem_mb",
    "ks_job_mem_mb",
    "ks_mem_mb",
    "ks_shapes_mem_mb",
    "layer_shapes",
    "probe_mem_mb",
    "read_layer_shapes",
    "reflect_geometry",
    "write_layer_shapes",
]

MB = 1e6
DUMP_BASE_MB = 1200
"""Interpreter, torch, pan, the decoding threads and the writer's Parquet buffers (measured)."""
KS_BASE_MB = 350
"""Interpreter, numpy, polars and pyarrow of a KS job."""
MAPS_BUDGET_MB = 400
"""Maps a run scored in memory (no dump) holds at once: layers are recorded in groups of at most
this size (:func:`map_groups`), one forward pass per group (stopped after the group's deepest
layer), so a job stays under 2 GB (EfficientNet-Lite0 held whole, 0.67 GB, peaked at 1.84 GB).
Larger budgets were not faster: a Lite2 draw took 5.6 s at 400 MB, 6.0 s at 600 and 5.3 s at
700 (peaks 1.28, 1.44 and 1.57 GB), Lite0 3.5 s at 400 and 3.9 s at 700 (one-off runs)."""
PROBE_SORT_BYTES = 28
"""Bytes per value of a PAN layer's maps that its bootstrap holds at once in a probe job
(:func:`pan.core.bootstrap.sorted_with_images`: the centre's copy and int64 keys, then its
sorted keys and images)."""
KS_LAYER_FACTOR = 4.0
"""Copies of a layer's maps a KS job holds at its peak: the maps, the border and centre
samples, the sort keys of a chunk (bounded) and Arrow's read buffers."""


def layer_shapes(spec) -> dict[str, Any]:
    """The shapes a dump of ``spec`` will write, from a shape-only pass on the meta device (no
    weights, no compute): ``input_size``, ``parameters`` and per analysed layer, in the order
    of their first call, ``name, out_channels, height, width, scoreable`` (a map of at least
    3x3 has a centre to score its borders against; smaller maps get NaN statistics), and what
    a reflect variant of the layer pads (:func:`reflect_geometry`): ``input_height,
    input_width`` and ``padding`` ``[left, right, top, bottom]`` (null for a conv that does not
    pad with zeros, which every variant leaves as it is).

    A ``forward`` the meta device cannot run (``.item()``, an ``assert`` on values) gets one
    real pass on the CPU instead, with the default initialisation and one seeded random image.
    """
    import torch

    from pan.capture.inference import recording
    from pan.capture.layers import analysed_layers
    from pan.capture.models import load_model

    shapes: dict[str, tuple[int, int]] = {}
    inputs: dict[str, tuple[int, int]] = {}

    def keep(layer, maps) -> None:  # a hook that returns nothing leaves the output alone
        shapes.setdefault(layer.name, tuple(maps.shape[-2:]))

    def run(device: str):
        with torch.device(device):
            loaded = load_model(replace(spec, pretrained=False))
        layers = analysed_layers(loaded.model)
        size = loaded.input_size
        image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
        with torch.no_grad(), recording(layers, keep), _input_sizes(layers, inputs):
            loaded.model(image)
        return loaded, layers

    try:
        loaded, layers = run("meta")
    except Exception as error:  # noqa: BLE001 - any failure of the meta pass: try a real one
        logging.warning("the model cannot run on the meta device (%s); one CPU pass instead", error)
        shapes.clear()
        inputs.clear()
        loaded, layers = run("cpu")
    by_name = {layer.name: layer for layer in layers}
    rows = [
        {
            "name": name,
            "out_channels": by_name[name].out_channels,
            "height": h,
            "width": w,
            "scoreable": h >= 3 and w >= 3,
            **reflect_geometry(loaded.model, name, inputs[name]),
        }
        for name, (h, w) in shapes.items()
    ]
    for row in rows:
        if not row["scoreable"]:
            logging.warning(
                "layer %s: %dx%d maps have no centre to compare borders with; its %d neurons get NaN "
                "statistics and can be no PANs (a larger input_size gives it larger maps)",
                row["name"],
                row["height"],
                row["width"],
                row["out_channels"],
            )
    return {
        "input_size": loaded.input_size,
        "parameters": sum(p.numel() for p in loaded.model.parameters()),
        "layers": rows,
    }


def _input_sizes(layers, sizes: dict[str, tuple[int, int]]):
    """Within the block, the ``(height, width)`` of each layer's first input go into ``sizes``."""
    from contextlib import ExitStack

    def note(name: str, args) -> None:  # returns None: the input goes on unchanged
        sizes.setdefault(name, tuple(args[0].shape[-2:]))

    stack = ExitStack()
    for layer in layers:
        hook = lambda module, args, name=layer.name: note(name, args)
        stack.callback(layer.module.register_forward_pre_hook(hook).remove)
    return stack


def reflect_geometry(model, name: str, input_size: tuple[int, int]) -> dict[str, Any]:
    """What the reflect pass of analysed conv ``name`` pads, given the ``(height, width)`` of
    the conv's input: ``input_height, input_width`` of the map it mirrors (before any zero pad
    module right before the conv, whose padding joins the conv's own, as in
    :func:`pan.bias.reflect.with_reflect_padding`) and ``padding`` ``[left, right, top, bottom]``,
    null when the conv does not pad with zeros (left as it is by every variant)."""
    from pan.capture.padding import pad_module_before, zero_padding

    conv = model.get_submodule(name)
    height, width = input_size
    before = pad_module_before(model, name)
    try:
        own = zero_padding(conv, input_size=input_size)
    except ValueError:  # no zero padding to replace: the variants leave this conv as it is
        return {"input_height": height, "input_width": width, "padding": None}
    left, right, top, bottom = before
    return {
        "input_height": height - top - bottom,
        "input_width": width - left - right,
        "padding": [a + b for a, b in zip(own, before, strict=True)],
    }


def write_layer_shapes(spec, out: str | Path) -> dict[str, Any]:
    """Write :func:`layer_shapes` of ``spec`` as JSON."""
    shapes = layer_shapes(spec)
    Path(out).write_text(json.dumps(shapes, indent=1))
    return shapes


def dump_mem_mb(shapes: Mapping[str, Any], micro_batch: int) -> int:
    """Memory (MB) of an activation dump: the base, the weights, and per micro-batch the maps of
    every analysed layer (one in the forward pass, :data:`pan.core.dumps.PENDING_MICRO_BATCHES`
    waiting for the writer, one being written) and the decoded images ahead of it."""
    from pan.capture.inference import PREFETCH_BATCHES
    from pan.core.dumps import PENDING_MICRO_BATCHES

    maps = 4 * sum(layer["out_channels"] * layer["height"] * layer["width"] for layer in shapes["layers"])
    images = 4 * 3 * shapes["input_size"] ** 2
    per_batch = micro_batch * (maps * (PENDING_MICRO_BATCHES + 2) + images * (PREFETCH_BATCHES + 2))
    return math.ceil(DUMP_BASE_MB + (8 * shapes["parameters"] + per_batch) / MB)


def probe_mem_mb(
    shapes: Mapping[str, Any],
    pans: Mapping[str, int],
    micro_batch: int,
    images: int,
    conditions: int,
    threads: int,
) -> int:
    """Memory (MB) of a probe job (origin, flip: :mod:`pan.beyond.probe`): a forward-pass job's
    (:func:`dump_mem_mb`), the maps of the ``pans`` (layer -> PAN count) over ``images`` under
    every condition, twice (kept batch by batch, then joined), and the bootstrap of the
    ``threads`` largest of these layers at once (:data:`PROBE_SORT_BYTES` per value)."""
    layers = [(pans.get(layer["name"], 0), layer) for layer in shapes["layers"]]
    sizes = sorted(
        (4 * images * n * layer["height"] * layer["width"] for n, layer in layers if n), reverse=True
    )
    held = 2 * conditions * sum(sizes)
    sorting = PROBE_SORT_BYTES / 4 * sum(sizes[: max(1, threads)])
    return math.ceil(dump_mem_mb(shapes, micro_batch) + (held + sorting) / MB)


def read_layer_shapes(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def ks_mem_mb(images: int, neurons: int, height: int, width: int) -> int:
    """Memory (MB) of a KS job scoring one layer dump of that shape."""
    return math.ceil(KS_BASE_MB + KS_LAYER_FACTOR * 4 * images * neurons * height * width / MB)


def ks_job_mem_mb(dump: str | Path) -> int:
    """:func:`ks_mem_mb` of a layer dump file, from its Parquet metadata alone."""
    import pyarrow.parquet as pq

    metadata = pq.ParquetFile(dump).metadata
    meta = {k.decode(): v.decode() for k, v in (metadata.metadata or {}).items()}
    neurons = int(meta["neurons"])
    return ks_mem_mb(metadata.num_rows // neurons, neurons, int(meta["height"]), int(meta["width"]))


def ks_dump_mem_mb(dump_dir: str | Path) -> int:
    """Memory (MB) of a KS job scoring a whole dump, one layer at a time: its largest layer's.

    Before the dump exists (a dry run plans the job from its checkpoint's placeholder) it is the
    base alone; Snakemake plans the job again, with this request, once the dump is written."""
    files = sorted(Path(dump_dir).glob("*.parquet"))
    return max((ks_job_mem_mb(path) for path in files), default=KS_BASE_MB)


def ks_shapes_mem_mb(shapes: Mapping[str, Any], images: int) -> int:
    """:func:`ks_mem_mb` of the largest layer in ``shapes`` (:func:`layer_shapes`) over ``images``."""
    return max(
        ks_mem_mb(images, layer["out_channels"], layer["height"], layer["width"])
        for layer in shapes["layers"]
    )


def _layer_bytes(layer: Mapping[str, Any], images: int) -> int:
    return 4 * images * layer["out_channels"] * layer["height"] * layer["width"]


def map_groups(shapes: Mapping[str, Any], images: int, budget_mb: float = MAPS_BUDGET_MB) -> list[list[str]]:
    """The analysed layers of ``shapes`` (:func:`layer_shapes`) in depth order, cut into
    consecutive groups whose maps over ``images`` take at most ``budget_mb`` each (a layer
    larger than the budget is a group of its own): one forward pass records one group.

    Groups are filled from the deepest layer back (:func:`pan.core.chunks.groups_from_back`):
    as few groups as filling from the front, but the passes of every group before the last stop
    earlier (the last runs the whole model)."""
    names = [layer["name"] for layer in shapes["layers"]]
    sizes = [_layer_bytes(layer, images) for layer in shapes["layers"]]
    return groups_from_back(names, sizes, budget_mb * MB)


def in_memory_ks_mem_mb(shapes: Mapping[str, Any], images: int, budget_mb: float = MAPS_BUDGET_MB) -> int:
    """Memory (MB) of a KS job that makes its maps itself (:func:`pan.workflow.run_ks.score_run`
    without a dump): the base of a forward pass, the weights, the decoded images, the largest
    group of maps (:func:`map_groups`) and the scoring of its largest layer."""
    by_name = {layer["name"]: layer for layer in shapes["layers"]}
    groups = map_groups(shapes, images, budget_mb)
    held = max((sum(_layer_bytes(by_name[n], images) for n in group) for group in groups), default=0)
    largest = max((_layer_bytes(layer, images) for layer in shapes["layers"]), default=0)
    decoded = images * 4 * 3 * shapes["input_size"] ** 2
    scoring = (KS_LAYER_FACTOR - 1) * largest
    return math.ceil(DUMP_BASE_MB + (8 * shapes["parameters"] + decoded + held + scoring) / MB)
