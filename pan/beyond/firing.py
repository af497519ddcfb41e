"""Zero-line attack, inside the network: how PANs fire on an injected line of zeros (paper §5)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

import numpy as np
import polars as pl
import pyarrow as pa
import torch
from torch import nn

from pan.beyond.attack import (
    Line,
    clean_control,
    inject,
    line_predictions,
    plan_lines,
    prepared_run,
    reached,
)
from pan.core.chunks import groups_from_back
from pan.core.ks import SortedSamples, borders_ks

__all__ = [
    "FIRING_CENTRES_MB",
    "FIRING_SCHEMA",
    "FiringRecorder",
    "centre_groups",
    "firing_statistics",
    "write_firing_statistics",
]

FIRING_SCHEMA = pa.schema(
    [
        ("layer", pa.string()),
        ("layer_index", pa.int32()),
        ("neuron", pa.int32()),
        ("kind", pa.string()),
        ("orientation", pa.string()),
        ("position", pa.float64()),
        ("line", pa.int32()),
        ("map_line", pa.int32()),
        ("offset", pa.int32()),
        ("ks", pa.float64()),
        ("ks_plus", pa.float64()),
        ("ks_minus", pa.float64()),
        ("n_border", pa.int64()),
        ("n_centre", pa.int64()),
    ]
)
"""``results/injection/{model}/firing.parquet``: one row per neuron, line and counted row."""


FIRING_CENTRES_MB = 400
"""Clean centres a firing job holds at once: the analysed layers are scored in groups of at
most this size (:func:`centre_groups`), each group over every line in passes stopped after its
deepest layer, so the job stays under 2 GB (EfficientNet-Lite2's centres over 64 images take
1.19 GB)."""


class FiringRecorder:
    """Forward-hook sink for one group of layers. The clean pass keeps each layer's centre and
    its ring (the border rows and columns); once it is done the clean control rows are rebuilt
    from these, per layer, and scored before the centre is sorted into KS keys in place. Each
    line's counted rows are then scored against the centres (one line's rows in memory)."""

    def __init__(
        self, input_size: tuple[int, int], images: int, lines: Sequence[Line] = (), threads: int = 1
    ):
        self.input_size, self.images, self.threads = input_size, images, threads
        self.line: Line | None = None
        self.controls = list(dict.fromkeys(clean_control(line) for line in lines))
        """The counted rows of each line position, recorded on the clean images (kind ``clean``)."""
        self.order = {line: i for i, line in enumerate([*self.controls, *lines])}
        """Controls, then lines: the order of the firing table."""
        self.centre_parts: dict[str, np.ndarray] = {}
        self.rings: dict[str, dict[str, np.ndarray]] = {}
        self.filled: dict[str, int] = {}
        self.centres: dict[str, SortedSamples] = {}
        self.indices: dict[str, int] = {}
        self.shapes: dict[str, tuple[int, int]] = {}
        self.windows: dict[tuple[str, int], list[np.ndarray]] = {}
        self.tables: list[tuple[tuple[int, int, int], pa.Table]] = []
        """``((line order, layer index, map row), rows)``: sorted by key into the firing table."""

    def sink(self, layer, maps: torch.Tensor) -> None:
        maps = maps.float().cpu().numpy()
        name = layer.name
        if self.line is None:  # the clean pass: centre and ring straight into one array each
            if name not in self.centre_parts:
                self._allocate(layer, maps.shape)
            part = slice(self.filled[name], self.filled[name] + len(maps))
            self.centre_parts[name][:, part] = maps[:, :, 1:-1, 1:-1].transpose(1, 0, 2, 3)
            ring = self.rings[name]
            ring["top"][part], ring["bottom"][part] = maps[:, :, 0, :], maps[:, :, -1, :]
            ring["left"][part], ring["right"][part] = maps[:, :, :, 0], maps[:, :, :, -1]
            self.filled[name] += len(maps)
            return
        self._keep_rows(name, maps, self.line)

    def _allocate(self, layer, shape: tuple[int, ...]) -> None:
        neurons, height, width = shape[1:]
        self.indices[layer.name], self.shapes[layer.name] = layer.index, (height, width)
        self.filled[layer.name] = 0
        centre = (neurons, self.images, max(height - 2, 0), max(width - 2, 0))
        self.centre_parts[layer.name] = np.empty(centre, dtype=np.float32)
        sides = {"top": width, "bottom": width, "left": height, "right": height}
        self.rings[layer.name] = {
            side: np.empty((self.images, neurons, size), dtype=np.float32) for side, size in sides.items()
        }

    def _keep_rows(self, name: str, maps: np.ndarray, line: Line) -> None:
        rows = line.orientation == "rows"
        for r in reached(line.index, self._size(line), maps.shape[2] if rows else maps.shape[3]):
            window = maps[:, :, r, :] if rows else maps[:, :, :, r]
            self.windows.setdefault((name, r), []).append(window.copy())

    def _size(self, line: Line) -> int:
        return self.input_size[0] if line.orientation == "rows" else self.input_size[1]

    def _clean_row(self, name: str, centre: np.ndarray, orientation: str, r: int) -> np.ndarray:
        """Map row (column) ``r`` of the clean pass ``(images, neurons, length)``, from the ring
        and the unsorted centre ``(neurons, images, H-2, W-2)``: the values a line's pass keeps."""
        ring = self.rings[name]
        rows = orientation == "rows"
        first, last, before, after = (
            ("top", "bottom", "left", "right") if rows else ("left", "right", "top", "bottom")
        )
        length, across = self.shapes[name] if rows else self.shapes[name][::-1]
        if r == 0:
            return ring[first]
        if r == length - 1:
            return ring[last]
        inner = centre[:, :, r - 1, :] if rows else centre[:, :, :, r - 1]
        parts = [ring[before][:, :, r : r + 1], inner.transpose(1, 0, 2)]
        if across > 1:  # a one-wide map's first and last column are the same one
            parts.append(ring[after][:, :, r : r + 1])
        return np.concatenate(parts, axis=2)

    def freeze_centres(self) -> None:
        """Score the clean control rows, then sort each layer's centre into KS keys in place
        (once, after the clean pass: every line is scored against them)."""
        for name in sorted(self.centre_parts, key=self.indices.get):
            values = self.centre_parts.pop(name)  # (neurons, images, H-2, W-2)
            rows = {}
            for control in self.controls:
                length = self.shapes[name][0 if control.orientation == "rows" else 1]
                for r in reached(control.index, self._size(control), length):
                    rows[control, r] = self._clean_row(name, values, control.orientation, r)
            self.centres[name] = SortedSamples(values.reshape(values.shape[0], -1), overwrite=True)
            self._score(name, rows)
        self.rings.clear()

    def score_line(self) -> None:
        """Score the counted rows of the current line against the clean centres."""
        by_layer: dict[str, dict] = {}
        for (name, r), parts in self.windows.items():
            by_layer.setdefault(name, {})[self.line, r] = np.concatenate(parts)
        self.windows.clear()
        for name in sorted(by_layer, key=self.indices.get):
            self._score(name, by_layer.pop(name))

    def _score(self, name: str, rows: dict[tuple[Line, int], np.ndarray]) -> None:
        """One search per neuron for every counted row of ``name`` (``(images, neurons, length)``
        each) against its centre."""
        if not rows:
            return
        borders = [
            SortedSamples(window.transpose(1, 0, 2).reshape(window.shape[1], -1)) for window in rows.values()
        ]
        for (line, r), result in zip(
            rows, borders_ks(borders, self.centres[name], threads=self.threads), strict=True
        ):
            self.tables.append(((self.order[line], self.indices[name], r), self._rows(name, line, r, result)))

    def _rows(self, name: str, line: Line, r: int, result) -> pa.Table:
        count = len(result.ks)
        map_size = self.shapes[name][0 if line.orientation == "rows" else 1]
        centre = line.index * map_size // self._size(line)
        return pa.table(
            {
                "layer": pa.array([name] * count, pa.string()),
                "layer_index": pa.array(np.full(count, self.indices[name], dtype=np.int32)),
                "neuron": pa.array(np.arange(count, dtype=np.int32)),
                "kind": pa.array([line.kind] * count, pa.string()),
                "orientation": pa.array([line.orientation] * count, pa.string()),
                "position": pa.array(np.full(count, line.position)),
                "line": pa.array(np.full(count, line.index, dtype=np.int32)),
                "map_line": pa.array(np.full(count, r, dtype=np.int32)),
                "offset": pa.array(np.full(count, r - centre, dtype=np.int32)),
                "ks": pa.array(result.ks),
                "ks_plus": pa.array(result.ks_plus),
                "ks_minus": pa.array(result.ks_minus),
                "n_border": pa.array(np.full(count, result.n_border, dtype=np.int64)),
                "n_centre": pa.array(np.full(count, result.n_centre, dtype=np.int64)),
            },
            schema=FIRING_SCHEMA,
        )

    def end_pass(self) -> None:
        """After a pass over every batch: the clean pass freezes the centres, a line's is scored."""
        if self.line is None:
            self.freeze_centres()
        else:
            self.score_line()


def _table_in_order(tables: Sequence[tuple[tuple[int, int, int], pa.Table]]) -> pa.Table:
    """The firing table from keyed parts (of one or several recorders): controls, then lines,
    each by layer index and map row."""
    ordered = [table for _, table in sorted(tables, key=lambda item: item[0])]
    return pa.concat_tables(ordered) if ordered else FIRING_SCHEMA.empty_table()


def centre_groups(
    net: nn.Module, sample: torch.Tensor, images: int, budget_mb: float = FIRING_CENTRES_MB
) -> list[list]:
    """The analysed layers of ``net`` in depth order, cut into consecutive groups whose clean
    centres over ``images`` take at most ``budget_mb`` each, filled from the deepest layer
    back (:func:`pan.core.chunks.groups_from_back`: the passes of every group but the last stop
    early, the earlier the cheaper)."""
    from pan.capture.inference import recording
    from pan.capture.layers import analysed_layers

    layers = analysed_layers(net, sample[:1])
    sizes: dict[str, int] = {}

    def measure(layer, maps: torch.Tensor) -> None:
        channels, height, width = maps.shape[1:]
        sizes.setdefault(layer.name, 4 * images * channels * max(height - 2, 0) * max(width - 2, 0))

    with torch.inference_mode(), recording(layers, measure):
        net(sample[:1])
    return groups_from_back(layers, [sizes[layer.name] for layer in layers], budget_mb * 1e6) or [[]]


def firing_statistics(
    net: nn.Module,
    batches: Sequence[torch.Tensor],
    lines: Sequence[Line],
    black: torch.Tensor,
    ids: Sequence[str],
    output_key: str | None = None,
    model: str = "model",
    progress: Callable[[int], None] = lambda n: None,
    groups: Sequence[Sequence] | None = None,
    threads: int = 1,
) -> tuple[pa.Table, pl.DataFrame]:
    """The theta-free firing statistics of every analysed neuron (:data:`FIRING_SCHEMA`) and
    the ``original`` predictions. The deepest group of layers (:func:`centre_groups`) is
    recorded in the prediction passes; each earlier group in passes of its own, stopped after
    its deepest layer; rows are scored on ``threads`` threads. The table depends on neither."""
    from pan.capture.inference import recording

    images = sum(len(batch) for batch in batches)
    groups = centre_groups(net, batches[0], images) if groups is None else groups
    size = tuple(batches[0].shape[-2:])
    parts: list[tuple[tuple[int, int, int], pa.Table]] = []
    for group in groups[:-1]:
        recorder = FiringRecorder(size, images, lines, threads)
        with recording(group, recorder.sink):
            _stopped_passes(net, batches, lines, black, group[-1], recorder, lambda: progress(images))
        parts += recorder.tables
    recorder = FiringRecorder(size, images, lines, threads)

    def on_line(variant: str, line: Line | None) -> None:
        recorder.line = line

    def after_line(variant: str, line: Line | None) -> None:
        recorder.end_pass()

    with recording(groups[-1] if groups else [], recorder.sink):
        predictions = line_predictions(
            {"original": net}, batches, lines, black, ids, output_key, model, on_line, after_line, progress
        )
    return _table_in_order([*parts, *recorder.tables]), predictions


def _stopped_passes(
    net, batches, lines, black, last, recorder: FiringRecorder, done: Callable[[], None]
) -> None:
    """The clean pass and every line's, each stopped once ``last`` has run (its hook, added
    after the recorder's, ends the pass)."""
    from pan.capture.inference import LayerReached, recording

    def stop(layer, maps) -> None:
        raise LayerReached

    with torch.inference_mode(), recording([last], stop):
        for line in [None, *lines]:
            recorder.line = line
            for batch in batches:
                try:
                    net(batch if line is None else inject(batch, line, black))
                except LayerReached:
                    pass
            recorder.end_pass()
            done()


def write_firing_statistics(
    model,
    images,
    positions: Sequence[float],
    kinds: Sequence[str],
    count: int | None,
    firing_out: str | Path,
    predictions_out: str | Path,
    micro_batch: int,
    device: str = "auto",
    progress: TextIO | None = None,
    threads: int = 1,
) -> None:
    """The theta-free job: firing statistics and ``original`` predictions of one model (rows
    scored on ``threads`` threads, the forward passes on torch's)."""
    import pyarrow.parquet as pq

    from pan.logs import image_progress

    loaded, net, records, batches, black = prepared_run(model, images, count, micro_batch, device)
    lines = plan_lines(positions, kinds, *batches[0].shape[-2:])
    groups = centre_groups(net, batches[0], len(records))
    passes = len(records) * (1 + len(lines)) * len(groups)
    bar = image_progress(passes, f"lines {model.name} ({len(groups)} layer groups)", progress)
    firing, predictions = firing_statistics(
        net,
        batches,
        lines,
        black,
        [r.id for r in records],
        model.output,
        model.name,
        bar.update,
        groups,
        threads,
    )
    bar.close()
    pq.write_table(firing, firing_out)
    predictions.write_parquet(predictions_out)
