"""The on-disk format of activation dumps: one Parquet file per layer plus a manifest.

Layout, one file per layer (``{layer}.parquet``), one row per image and neuron:

- ``sample`` (int32): the image's position in the batch (see ``manifest.json``);
- ``neuron`` (int32): the output channel;
- ``activation`` (fixed_size_list<float32>[height*width]): the neuron's map, row-major.

The schema metadata holds ``height``, ``width``, ``neurons``, ``layer`` and ``layer_index``. Beside the
files, ``manifest.json`` lists the layers in depth order and the images with their ids.
This module needs no torch, so reading a dump (KS scoring, figures) starts fast.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class LayerDump:
    """Manifest entry of one dumped layer."""

    index: int
    name: str
    out_channels: int
    kernel_size: tuple[int, int]
    height: int
    width: int
    file: str


class LayerWriters:
    """Opens one Parquet writer per layer on its first batch and appends row groups."""

    def __init__(self, out_dir: Path, stack: ExitStack):
        self.out_dir, self.stack = out_dir, stack
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.dumps: dict[str, LayerDump] = {}
        self.first_sample = 0

    def write(self, index: int, name: str, kernel_size: tuple[int, int], maps: np.ndarray) -> None:
        """Append ``maps`` ``(images, neurons, H, W)`` of layer ``name`` to its file."""
        n, c, h, w = maps.shape
        if name not in self.writers:
            dump = LayerDump(index, name, c, tuple(kernel_size), h, w, f"{name}.parquet")
            meta = {
                "height": str(h),
                "width": str(w),
                "neurons": str(c),
                "layer": name,
                "layer_index": str(index),
            }
            schema = pa.schema(
                [
                    ("sample", pa.int32()),
                    ("neuron", pa.int32()),
                    ("activation", pa.list_(pa.float32(), h * w)),
                ],
                metadata=meta,
            )
            self.writers[name] = self.stack.enter_context(
                pq.ParquetWriter(
                    self.out_dir / dump.file,
                    schema,
                    compression="none",
                    use_dictionary=False,
                    write_statistics=False,
                )
            )
            self.dumps[name] = dump
        values = np.ascontiguousarray(maps, dtype=np.float32).reshape(-1)
        samples = np.repeat(np.arange(self.first_sample, self.first_sample + n, dtype=np.int32), c)
        neurons = np.tile(np.arange(c, dtype=np.int32), n)
        activation = pa.FixedSizeListArray.from_arrays(pa.array(values), h * w)
        table = pa.Table.from_arrays(
            [pa.array(samples), pa.array(neurons), activation], schema=self.writers[name].schema
        )
        self.writers[name].write_table(table)


def write_manifest(dump_dir: Path, model: str, dumps: Sequence[LayerDump], records: Sequence) -> None:
    """List the dumped layers (depth order) and the images (batch order) beside the files."""
    manifest = {
        "model": model,
        "layers": [asdict(d) for d in dumps],
        "images": [{"sample": i, "id": r.id, "label": r.label} for i, r in enumerate(records)],
    }
    (Path(dump_dir) / MANIFEST).write_text(json.dumps(manifest, indent=1))


def read_manifest(dump_dir: str | Path) -> dict:
    """The manifest written by :func:`dump_activations`."""
    return json.loads((Path(dump_dir) / MANIFEST).read_text())


def read_feature_maps(path: str | Path, neurons: Sequence[int] | None = None) -> np.ndarray:
    """A layer dump as a float32 array ``(images, neurons, height, width)``.

    ``neurons`` restricts the read to some channels (for figures); default all.
    """
    table = pq.read_table(path, memory_map=True)
    meta = table.schema.metadata
    h, w, count = int(meta[b"height"]), int(meta[b"width"]), int(meta[b"neurons"])
    if neurons is not None:
        table = table.filter(pc.is_in(table["neuron"], pa.array(list(neurons), pa.int32())))
        count = len(set(neurons))
    values = table["activation"].combine_chunks().flatten().to_numpy()
    return values.reshape(-1, count, h, w)
