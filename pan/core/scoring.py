"""Per-layer KS scoring: every neuron x border of one activation dump (no threshold here).

``results/ks/{model}/{layer}.parquet`` has the columns of :data:`KS_SCHEMA`, one row per
neuron and border: the paper rule's statistics, the share rule's (``ks_plus_q, ks_minus_q``
against ``n_q`` centre values, :func:`pan.core.ks.share_size`), the image-bootstrap intervals of
both rules' strengths (:mod:`pan.core.bootstrap`; null when not asked for), and ``layer_padding``
(what the layer's conv pads with: ``zeros``, ``none``, ``reflect``, ...; see
:func:`pan.capture.padding.layer_padding`); :func:`read_ks_tables` reads a model's layers back as one
table.

On the CPU (the default) the layer is cut into cache-sized chunks of neurons scored by a
small thread pool (:mod:`pan.core.chunks`); no torch is imported.
``device="cuda"`` (or ``"auto"`` with a GPU present) scores with :mod:`pan.ks_torch` instead,
to the same bits.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pan.core.borders import BORDERS, border_samples, centre_samples
from pan.core.chunks import over_chunks
from pan.core.dumps import read_dump_metadata, read_feature_maps
from pan.core.ks import DEFAULT_SHARE, BorderKS, SortedSamples, borders_ks

__all__ = [
    "DEVICES",
    "INTERVAL_COLUMNS",
    "KS_SCHEMA",
    "MAX_THREADS",
    "PREFETCH_BYTES",
    "check_finite",
    "default_threads",
    "ks_table_files",
    "read_ks_tables",
    "resolve_device",
    "score_dump",
    "score_layer",
    "score_layer_maps",
    "score_layer_with_null",
    "score_maps",
]

INTERVAL_COLUMNS: tuple[str, ...] = (
    "strength_lo",
    "strength_hi",
    "strength_q_lo",
    "strength_q_hi",
    "neuron_strength_lo",
    "neuron_strength_hi",
    "neuron_strength_q_lo",
    "neuron_strength_q_hi",
)
"""Interval columns of a KS table (:mod:`pan.core.bootstrap` fills them): per border, then per
neuron (repeated on its four rows), the paper rule's interval then the share rule's (``_q``)."""

KS_SCHEMA = pa.schema(
    [
        ("layer", pa.string()),
        ("layer_index", pa.int32()),
        ("neuron", pa.int32()),
        ("border", pa.string()),
        ("ks", pa.float64()),
        ("ks_plus", pa.float64()),
        ("ks_minus", pa.float64()),
        ("n_border", pa.int64()),
        ("n_centre", pa.int64()),
        ("ks_plus_q", pa.float64()),
        ("ks_minus_q", pa.float64()),
        ("n_q", pa.int64()),
        *[(name, pa.float64()) for name in INTERVAL_COLUMNS],
    ]
)

PREFETCH_BYTES = 1 << 30
"""Layer dumps up to this size are read while the layer before is scored (two layers in memory
at once); larger ones after it (one)."""

MAX_THREADS = 8
"""At most this many threads score one layer on the CPU (see :func:`default_threads`)."""

DEVICES = ("cpu", "cuda", "auto", "torch-cpu")
"""Devices of :func:`score_maps`; ``"cuda:N"`` names one GPU, ``"torch-cpu"`` runs the torch
path on the CPU (checks of it; numpy is faster there)."""


def default_threads() -> int:
    """Threads for CPU scoring: ``OMP_NUM_THREADS`` when set (as by Snakemake for a job's
    shell commands; a ``script:`` job should pass ``threads=snakemake.threads``), else the
    CPUs this process may run on; at most :data:`MAX_THREADS`."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    count = int(env) if env.isdigit() and int(env) > 0 else len(os.sched_getaffinity(0))
    return max(1, min(count, MAX_THREADS))


def resolve_device(device: str) -> str:
    """``"cpu"``, ``"torch-cpu"`` or a CUDA device (``"cuda"``, ``"cuda:N"``); ``"auto"`` is
    ``"cuda"`` when torch sees a GPU, else ``"cpu"``. torch is imported only for a device other
    than ``"cpu"``."""
    if device not in DEVICES and not device.startswith("cuda:"):
        raise ValueError(f"device must be one of {DEVICES} or 'cuda:N', got {device!r}")
    if device == "cpu":
        return "cpu"
    from pan.ks_torch import torch_device  # the one way into torch from the core (import rule)

    return torch_device(device)


def score_maps(
    maps: np.ndarray,
    layer: str,
    layer_index: int,
    device: str = "cpu",
    threads: int | None = None,
    memory_bytes: int | None = None,
    q: float = DEFAULT_SHARE,
) -> pa.Table:
    """KS, KS+ and KS- of every neuron and border of ``maps`` ``(images, neurons, H, W)``, and
    the share rule's at share ``q`` (the interval columns null: see :func:`score_layer`).

    ``device``: ``"cpu"`` (numpy, ``threads`` threads, default :func:`default_threads`),
    ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (:mod:`pan.ks_torch`, neurons chunked to fit
    ``memory_bytes`` of GPU memory, default half the free memory; see :func:`resolve_device`).
    ``maps`` may be a torch tensor for a torch device. Every device gives the same table.
    """
    target = resolve_device(device)
    if target != "cpu":
        from pan.ks_torch import score_chunks

        chunks = score_chunks(maps, "cpu" if target == "torch-cpu" else target, memory_bytes, q=q)
    else:
        chunks = _score_chunks_numpy(np.asarray(maps), threads, q)
    return _table(chunks, layer, layer_index)


def _score_chunks_numpy(
    maps: np.ndarray, threads: int | None, q: float | None = None
) -> list[tuple[int, list[BorderKS]]]:
    """``(first neuron, [T, B, L, R results])`` per chunk of neurons, in neuron order."""
    n, c, h, w = maps.shape

    def score(start: int, stop: int) -> tuple[int, list[BorderKS]]:
        chunk = maps[:, start:stop]
        centre = SortedSamples(centre_samples(chunk), overwrite=True)  # a fresh copy: sort in place
        borders = [SortedSamples(v, overwrite=True) for v in border_samples(chunk).values()]
        return start, borders_ks(borders, centre, q)

    return over_chunks(score, c, n * max(h - 2, 0) * max(w - 2, 0), threads or default_threads())


def _table(chunks: list[tuple[int, list[BorderKS]]], layer: str, layer_index: int) -> pa.Table:
    """The KS table of one layer, rows by neuron, then border T B L R."""
    columns: dict[str, list[np.ndarray]] = {name: [] for name in KS_SCHEMA.names}
    border_rank: list[np.ndarray] = []
    for start, results in chunks:
        for border, result in zip(BORDERS, results, strict=True):
            size = len(result.ks)
            columns["neuron"].append(np.arange(start, start + size, dtype=np.int32))
            columns["border"].append(np.full(size, border))
            border_rank.append(np.full(size, BORDERS.index(border)))
            columns["ks"].append(result.ks)
            columns["ks_plus"].append(result.ks_plus)
            columns["ks_minus"].append(result.ks_minus)
            columns["n_border"].append(np.full(size, result.n_border, dtype=np.int64))
            columns["n_centre"].append(np.full(size, result.n_centre, dtype=np.int64))
            columns["ks_plus_q"].append(result.ks_plus_q)
            columns["ks_minus_q"].append(result.ks_minus_q)
            columns["n_q"].append(np.full(size, result.n_q, dtype=np.int64))
    arrays = {name: np.concatenate(parts) for name, parts in columns.items() if parts}
    rows = len(arrays["neuron"])
    arrays["layer"] = np.full(rows, layer, dtype=object)
    arrays["layer_index"] = np.full(rows, layer_index, dtype=np.int32)
    order = np.lexsort((np.concatenate(border_rank), arrays["neuron"]))  # neuron, then T B L R
    return pa.table(
        {
            name: pa.array(arrays[name][order], type=KS_SCHEMA.field(name).type)
            if name not in INTERVAL_COLUMNS
            else pa.nulls(rows, pa.float64())  # filled by the bootstrap pass, when asked for
            for name in KS_SCHEMA.names
        }
    )


def ks_table_files(ks_files: str | Path | Sequence[str | Path]) -> list[Path]:
    """KS table files from files, or folders of them (``results/ks/{model}``)."""
    paths = [ks_files] if isinstance(ks_files, (str, Path)) else list(ks_files)
    return [
        f for path in map(Path, paths) for f in (sorted(path.glob("*.parquet")) if path.is_dir() else [path])
    ]


def read_ks_tables(ks_files: str | Path | Sequence[str | Path]) -> pl.DataFrame:
    """The KS tables of one model's layers as one table: files, or a folder of them."""
    files = ks_table_files(ks_files)
    if not files:
        raise ValueError(f"no KS tables in {ks_files}")
    return pl.concat([pl.read_parquet(f) for f in files])


def check_finite(maps: np.ndarray, layer: str) -> None:
    """Refuse NaN or infinite activations, naming the layer, the neurons and how many values:
    KS statistics of such samples say nothing about padding (the model or its input is broken)."""
    if maps.size == 0 or (np.isfinite(maps.min()) and np.isfinite(maps.max())):
        return  # min and max are NaN or infinite when any value is: two passes, no mask
    bad = ~np.isfinite(maps)
    if bad.any():
        per_neuron = bad.sum(axis=(0, 2, 3))
        neurons = np.flatnonzero(per_neuron)
        shown = ", ".join(f"{n} ({per_neuron[n]} values)" for n in neurons[:10])
        more = f" and {len(neurons) - 10} more" if len(neurons) > 10 else ""
        raise ValueError(
            f"layer {layer!r}: {int(per_neuron.sum())} NaN or infinite activations in neurons "
            f"{shown}{more}; check the model's weights and its input normalisation"
        )


def score_layer(
    dump: str | Path,
    out: str | Path,
    device: str = "cpu",
    threads: int | None = None,
    memory_bytes: int | None = None,
    q: float = DEFAULT_SHARE,
    replicates: int = 0,
    seed: int = 0,
) -> pa.Table:
    """Score one layer dump (see :mod:`pan.capture.activations`) and write its KS table to ``out``
    (arguments after ``out`` as in :func:`score_maps`); with ``replicates`` > 0 with the
    image-bootstrap intervals (:func:`score_layer_with_null`)."""
    return score_layer_with_null(dump, out, device, threads, memory_bytes, q, replicates, seed, False)[0]


def score_layer_with_null(
    dump: str | Path,
    out: str | Path,
    device: str = "cpu",
    threads: int | None = None,
    memory_bytes: int | None = None,
    q: float = DEFAULT_SHARE,
    replicates: int = 0,
    seed: int = 0,
    interior: bool = True,
) -> tuple[pa.Table, pa.Table | None]:
    """:func:`score_layer`, and the layer's interior-line rows (:mod:`pan.core.interior`; ``None``
    when ``interior`` is false). The bootstrap (``replicates`` > 0, :mod:`pan.core.bootstrap`) and
    the interior lines run in one more pass over the maps, on the CPU whatever ``device``."""
    return _score(*_read(dump), out, device, threads, memory_bytes, q, replicates, seed, interior)


def _read(dump: str | Path, into: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, str]]:
    return read_feature_maps(dump, into=into), read_dump_metadata(dump)


def score_layer_maps(
    maps: np.ndarray,
    meta: Mapping[str, str],
    out: str | Path,
    device: str = "cpu",
    threads: int | None = None,
    memory_bytes: int | None = None,
    q: float = DEFAULT_SHARE,
) -> pa.Table:
    """Score one layer's ``maps`` ``(images, neurons, H, W)`` and write its KS table to ``out``:
    what :func:`score_layer` does after reading a dump, for maps held in memory (runs whose dump
    nobody reads again). ``meta``: ``layer``, ``layer_index`` and ``padding`` (as a dump's
    metadata)."""
    return _score(maps, meta, out, device, threads, memory_bytes, q, 0, 0, False)[0]


def _score(maps, meta, out, device, threads, memory_bytes, q, replicates, seed, interior):
    check_finite(maps, meta["layer"])
    layer, index = meta["layer"], int(meta["layer_index"])
    table = score_maps(maps, layer, index, device=device, threads=threads, memory_bytes=memory_bytes, q=q)
    rows = None
    if replicates or interior:
        from pan.core.bootstrap import resample_weights, uncertainty_pass

        weights = resample_weights(maps.shape[0], replicates, seed)
        intervals, rows = uncertainty_pass(
            np.asarray(maps), layer, index, q, weights, threads=threads or default_threads()
        )
        for name, values in intervals.items() if replicates else ():
            table = table.set_column(table.schema.get_field_index(name), name, pa.array(values, pa.float64()))
    padding = pa.array([meta.get("padding", "zeros")] * table.num_rows, pa.string())
    table = table.append_column("layer_padding", padding)
    pq.write_table(table, out)
    return table, rows if interior else None


def score_dump(
    dump_dir: str | Path,
    out_dir: str | Path,
    device: str = "cpu",
    threads: int | None = None,
    q: float = DEFAULT_SHARE,
    replicates: int = 0,
    seed: int = 0,
    interior_out: str | Path | None = None,
) -> list[Path]:
    """Score every layer of a model's activation dump into ``out_dir`` (one KS table per layer,
    ``{layer}.parquet``): one job per model, so Snakemake starts one process, not one per layer.
    With ``replicates`` > 0, also the bootstrap intervals; with ``interior_out``, the
    interior-line null of every layer into that file (see :func:`score_layer_with_null`).

    The next layer's dump is read on a second thread while a layer is scored (pyarrow and
    numpy release the GIL), when its file is at most :data:`PREFETCH_BYTES`; layers are read
    into two buffers used in turn (:class:`_ReadBuffers`), not into new memory each."""
    from pan.core.dumps import read_manifest

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, interiors = [], []
    manifest = read_manifest(dump_dir)
    layers = manifest["layers"]
    files = [Path(dump_dir) / layer["file"] for layer in layers]
    images = len(manifest["images"])
    sizes = [images * entry["out_channels"] * entry["height"] * entry["width"] for entry in layers]
    buffers = _ReadBuffers()
    with ThreadPoolExecutor(1, thread_name_prefix="ks-read") as reader:
        pending = reader.submit(_read, files[0], buffers.get(0, sizes[0])) if files else None
        for number, (layer, file) in enumerate(zip(layers, files, strict=True)):
            start = time.perf_counter()
            maps, meta = pending.result() if pending is not None else _read(file)
            pending = None
            if number + 1 < len(files) and _size(files[number + 1]) <= PREFETCH_BYTES:
                pending = reader.submit(_read, files[number + 1], buffers.get(number + 1, sizes[number + 1]))
            else:
                buffers.clear()  # nothing read ahead (the next layer is too large, or none is left)
            _, interior = _score(
                maps,
                meta,
                out_dir / layer["file"],
                device,
                threads,
                None,
                q,
                replicates,
                seed,
                interior_out is not None,
            )
            del maps
            written.append(out_dir / layer["file"])
            if interior is not None:
                interiors.append(interior)
            seconds = time.perf_counter() - start
            print(f"scored {layer['name']} ({layer['out_channels']} neurons) in {seconds:.2f} s")
    if interior_out is not None:
        from pan.core.interior import INTERIOR_SCHEMA

        table = pa.concat_tables(interiors) if interiors else INTERIOR_SCHEMA.empty_table()
        pq.write_table(table, interior_out)
    return written


class _ReadBuffers:
    """Two float32 buffers that :func:`score_dump` reads layers into in turn (one is scored while
    the next layer is read into the other): memory the process already holds, so the kernel
    does not fault in and zero fresh pages for every layer. Each grows to the largest layer
    read into it: no more than reading the two largest layers into new arrays holds."""

    def __init__(self) -> None:
        self.buffers: list[np.ndarray] = []
        self.clear()

    def get(self, number: int, values: int) -> np.ndarray:
        """A buffer of at least ``values`` floats for layer ``number`` (the other one's is
        being scored)."""
        if self.buffers[number % 2].size < values:
            self.buffers[number % 2] = np.empty(0, np.float32)  # freed before the larger one
            self.buffers[number % 2] = np.empty(values, np.float32)
        return self.buffers[number % 2]

    def clear(self) -> None:
        """Free both (a layer too large to read ahead is read alone)."""
        self.buffers = [np.empty(0, np.float32), np.empty(0, np.float32)]


def _size(path: Path) -> int:
    """Bytes of a file; 0 when it is missing (its read then raises the error)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0
