"""The on-disk format of activation dumps: one Parquet file per layer plus a manifest.

Layout, one file per layer (``{layer}.parquet``), one row per image and neuron:

- ``sample`` (int32): the image's position in the batch (see ``manifest.json``);
- ``neuron`` (int32): the output channel;
- ``activation`` (fixed_size_binary[4*height*width], not null): the neuron's map as row-major
  little-endian float32, e.g. ``np.frombuffer(value, "<f4").reshape(height, width)``.

The maps are bytes rather than ``fixed_size_list<float32>`` because Parquet decodes a nested list
value by value (about 1 GB in 2-7 s) but a fixed-size binary column as one copy (memory speed);
:func:`read_feature_maps` still reads dumps of the list kind, written by earlier versions.
The schema metadata holds ``height``, ``width``, ``neurons``, ``layer`` and ``layer_index``. Beside the
files, ``manifest.json`` lists the layers in depth order and the images with their ids.
This module needs no torch, so reading a dump (KS scoring, figures) starts fast.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = [
    "BackgroundWrites",
    "DumpError",
    "LayerDump",
    "LayerWriters",
    "MANIFEST",
    "PENDING_MICRO_BATCHES",
    "read_dump_metadata",
    "read_feature_maps",
    "read_manifest",
    "write_manifest",
]

MANIFEST = "manifest.json"
PENDING_MICRO_BATCHES = 2
"""Micro-batches of maps that may wait for the dump's writer thread (memory stays bounded)."""


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
    padding: str = "zeros"
    """What the conv pads its input with (:func:`pan.capture.padding.layer_padding`)."""


class LayerWriters:
    """Opens one Parquet writer per layer on its first batch and appends row groups."""

    def __init__(self, out_dir: Path, stack: ExitStack, paddings: Mapping[str, str] | None = None):
        self.out_dir = out_dir
        self.paddings = dict(paddings or {})
        stack.callback(self.close)  # after whatever enters ``stack`` later (a writer thread)
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.dumps: dict[str, LayerDump] = {}
        self.first_sample = 0

    def write(
        self,
        index: int,
        name: str,
        kernel_size: tuple[int, int],
        maps: np.ndarray,
        first_sample: int | None = None,
    ) -> None:
        """Append ``maps`` ``(images, neurons, H, W)`` of layer ``name`` to its file, as the images
        ``first_sample, first_sample + 1, ...`` (default :attr:`first_sample`)."""
        first = self.first_sample if first_sample is None else first_sample
        n, c, h, w = maps.shape
        if name not in self.writers:
            padding = self.paddings.get(name, "zeros")
            dump = LayerDump(index, name, c, tuple(kernel_size), h, w, f"{name}.parquet", padding)
            meta = {
                "height": str(h),
                "width": str(w),
                "neurons": str(c),
                "layer": name,
                "layer_index": str(index),
                "padding": padding,
            }
            schema = pa.schema(
                [
                    ("sample", pa.int32()),
                    ("neuron", pa.int32()),
                    pa.field("activation", pa.binary(4 * h * w), nullable=False),
                ],
                metadata=meta,
            )
            self.writers[name] = pq.ParquetWriter(
                self.out_dir / dump.file,
                schema,
                compression="none",
                use_dictionary=False,
                write_statistics=False,
            )
            self.dumps[name] = dump
        values = np.ascontiguousarray(maps, dtype="<f4")
        samples = np.repeat(np.arange(first, first + n, dtype=np.int32), c)
        neurons = np.tile(np.arange(c, dtype=np.int32), n)
        activation = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(4 * h * w), n * c, [None, pa.py_buffer(values)]
        )
        table = pa.Table.from_arrays(
            [pa.array(samples), pa.array(neurons), activation], schema=self.writers[name].schema
        )
        self.writers[name].write_table(table)

    def close(self) -> None:
        """Close every layer's file."""
        for writer in self.writers.values():
            writer.close()


class BackgroundWrites:
    """Runs calls on one writer thread, in order, at most ``limit`` waiting: the forward pass goes
    on while earlier maps are written (pyarrow releases the GIL), and memory stays bounded.

    A failed call is raised by the next :meth:`submit` or on exit; on exit the thread finishes
    what was submitted first.
    """

    def __init__(self, limit: int):
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, limit))
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="pan-dump-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            function, args = item
            if self.error is None:
                try:
                    function(*args)
                except BaseException as error:  # handed to the submitting thread
                    self.error = error

    def submit(self, function, *args) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((function, args))

    def __enter__(self) -> BackgroundWrites:
        return self

    def __exit__(self, kind, error, trace) -> None:
        self.queue.put(None)
        self.thread.join()
        if kind is None and self.error is not None:
            raise self.error


def write_manifest(dump_dir: Path, model: str, dumps: Sequence[LayerDump], records: Sequence) -> None:
    """List the dumped layers (depth order) and the images (batch order) beside the files."""
    manifest = {
        "model": model,
        "layers": [asdict(d) for d in dumps],
        "images": [{"sample": i, "id": r.id, "label": r.label} for i, r in enumerate(records)],
    }
    (Path(dump_dir) / MANIFEST).write_text(json.dumps(manifest, indent=1))


class DumpError(ValueError):
    """An activation dump is missing or unreadable; the message names the file and what to rerun."""


def _rerun(dump_dir: Path) -> str:
    return (
        f"rerun the model's activation dump: delete {dump_dir} and run snakemake again "
        "(or snakemake --forcerun activations <your target>, which redoes every model's dump)"
    )


def read_manifest(dump_dir: str | Path) -> dict:
    """The manifest written by :func:`dump_activations`, or :class:`DumpError` saying what to rerun."""
    dump_dir = Path(dump_dir)
    path = dump_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise DumpError(f"activation dump manifest {path} is missing; {_rerun(dump_dir)}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DumpError(
            f"activation dump manifest {path} is unreadable ({error}); {_rerun(dump_dir)}"
        ) from error
    if not isinstance(manifest, dict) or not all(key in manifest for key in ("model", "layers", "images")):
        raise DumpError(
            f"activation dump manifest {path} lacks 'model', 'layers' or 'images'; {_rerun(dump_dir)}"
        )
    return manifest


def read_dump_metadata(path: str | Path) -> dict[str, str]:
    """The schema metadata of a layer dump (``height``, ``width``, ``neurons``, ``layer``,
    ``layer_index``), or :class:`DumpError` naming the file and what to rerun."""
    path = Path(path)
    try:
        meta = pq.read_schema(path).metadata or {}
        meta = {key.decode(): value.decode() for key, value in meta.items()}
    except (OSError, pa.ArrowException) as error:
        raise _layer_error(path, error) from error
    missing = [key for key in ("height", "width", "neurons", "layer", "layer_index") if key not in meta]
    if missing:
        raise DumpError(f"layer dump {path} is no pan dump (metadata lacks {missing}); {_rerun(path.parent)}")
    return meta


def _layer_error(path: Path, error: BaseException) -> DumpError:
    if isinstance(error, FileNotFoundError):
        return DumpError(f"layer dump {path} is missing; {_rerun(path.parent)}")
    return DumpError(f"layer dump {path} is unreadable ({error}); {_rerun(path.parent)}")


def _map_values(column: pa.ChunkedArray) -> np.ndarray:
    """The float32 values of an ``activation`` column, maps one after the other."""
    if not pa.types.is_fixed_size_binary(column.type):  # a list column of an earlier version
        return column.combine_chunks().flatten().to_numpy()
    width = column.type.byte_width
    parts = [
        np.frombuffer(
            chunk.buffers()[1], dtype="<f4", count=len(chunk) * width // 4, offset=chunk.offset * width
        )
        for chunk in column.chunks
    ]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.empty(0, np.float32)


def _read_binary_maps(path: Path, file: pq.ParquetFile, into: np.ndarray | None = None) -> np.ndarray | None:
    """The float32 values of a dump of the binary kind, one row group at a time into one array
    (one copy of each map, no whole-file temporary): the front of ``into`` when it is large
    enough, else a new array; ``None`` for a dump of the list kind."""
    field = file.schema_arrow.field("activation")
    if not pa.types.is_fixed_size_binary(field.type):
        return None
    width = field.type.byte_width
    size = file.metadata.num_rows * width // 4
    values = into[:size] if into is not None and into.size >= size else np.empty(size, dtype=np.float32)
    position = 0
    for group in range(file.num_row_groups):
        column = file.read_row_group(group, columns=["activation"], use_threads=False)["activation"]
        part = _map_values(column)
        if position + part.size > values.size:
            raise DumpError(f"layer dump {path} holds more rows than its footer says; {_rerun(path.parent)}")
        values[position : position + part.size] = part
        position += part.size
    return values[:position]


def read_feature_maps(
    path: str | Path, neurons: Sequence[int] | None = None, into: np.ndarray | None = None
) -> np.ndarray:
    """A layer dump as a float32 array ``(images, neurons, height, width)``.

    ``neurons`` restricts the read to some channels (for figures); default all. ``into``: a
    flat float32 array to read all neurons into when it is large enough (the maps are then a
    view of its front), so that a caller reading layer after layer (:func:`pan.core.scoring.score_dump`)
    reuses memory the kernel has already handed out instead of faulting new pages in. A whole
    dump is read, not memory-mapped: the mapped file's pages fault in one by one.
    A missing, truncated or corrupt file raises :class:`DumpError` naming it and what to rerun.
    """
    path = Path(path)
    meta = read_dump_metadata(path)
    h, w, count = int(meta["height"]), int(meta["width"]), int(meta["neurons"])
    try:
        values = None
        if neurons is None:
            values = _read_binary_maps(path, pq.ParquetFile(path), into)
        if values is None:
            table = pq.read_table(path, memory_map=True)
            if neurons is not None:
                table = table.filter(pc.is_in(table["neuron"], pa.array(list(neurons), pa.int32())))
                count = len(set(neurons))
            values = _map_values(table["activation"])
    except (OSError, pa.ArrowException, KeyError) as error:
        raise _layer_error(path, error) from error
    if count * h * w and values.size % (count * h * w):
        raise DumpError(
            f"layer dump {path} holds {values.size} values, not whole maps of {count} neurons of "
            f"{h}x{w}; {_rerun(path.parent)}"
        )
    return values.reshape(-1, count, h, w)
