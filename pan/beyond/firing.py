"""Zero-line attack, inside the network: how PANs fire on an injected line of zeros (paper §5)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import polars as pl
import pyarrow as pa
import torch
from torch import nn

from pan.beyond.attack import (
    CLEAN,
    ORIENTATIONS,
    Line,
    clean_control,
    inject,
    line_predictions,
    plan_lines,
    prepared_run,
    reached,
)
from pan.core.labelling import DEFAULT_THETA, check_theta, pan_rule

__all__ = [
    "FIRING_SCHEMA",
    "FiringRecorder",
    "InjectedMaps",
    "firing_statistics",
    "injected_maps",
    "pan_firing",
    "strongest_firing_pan",
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


class FiringRecorder:
    """Forward-hook sink that keeps each layer's clean centres, then scores the counted rows of
    each line against them (one line's rows in memory at a time)."""

    def __init__(self, input_size: tuple[int, int], images: int, lines: Sequence[Line] = ()):
        self.input_size, self.images = input_size, images
        self.line: Line | None = None
        self.controls = list(dict.fromkeys(clean_control(line) for line in lines))
        """The counted rows of each line position, recorded on the clean images (kind ``clean``)."""
        self.control_windows: dict[Line, dict[tuple[str, int], list[np.ndarray]]] = {
            c: {} for c in self.controls
        }
        self.centre_parts: dict[str, np.ndarray] = {}
        self.filled: dict[str, int] = {}
        self.centres: dict[str, np.ndarray] = {}
        self.indices: dict[str, int] = {}
        self.shapes: dict[str, tuple[int, int]] = {}
        self.windows: dict[tuple[str, int], list[np.ndarray]] = {}
        self.tables: list[pa.Table] = []

    def sink(self, layer, maps: torch.Tensor) -> None:
        maps = maps.float().cpu().numpy()
        name = layer.name
        if self.line is None:  # the clean pass: centres go straight into one array per layer
            if name not in self.centre_parts:
                self.indices[name], self.shapes[name] = layer.index, maps.shape[-2:]
                self.filled[name] = 0
                shape = (maps.shape[1], self.images, *(max(size - 2, 0) for size in maps.shape[-2:]))
                self.centre_parts[name] = np.empty(shape, dtype=np.float32)
            start = self.filled[name]
            centre = maps[:, :, 1:-1, 1:-1].transpose(1, 0, 2, 3)
            self.centre_parts[name][:, start : start + len(maps)] = centre
            self.filled[name] += len(maps)
            for control in self.controls:
                self._keep_rows(name, maps, control, self.control_windows[control])
            return
        self._keep_rows(name, maps, self.line, self.windows)

    def _keep_rows(self, name: str, maps: np.ndarray, line: Line, windows: dict) -> None:
        rows = line.orientation == "rows"
        axis_size = maps.shape[2] if rows else maps.shape[3]
        size = self.input_size[0] if rows else self.input_size[1]
        for r in reached(line.index, size, axis_size):
            window = maps[:, :, r, :] if rows else maps[:, :, :, r]
            windows.setdefault((name, r), []).append(window.copy())

    def freeze_centres(self) -> None:
        """Sort each layer's clean centre once (after the clean pass), kept as sorted float32
        rows: half the memory of KS keys, which each line rebuilds for one layer at a time."""
        for name in list(self.centre_parts):
            values = self.centre_parts.pop(name)  # (neurons, images, H-2, W-2): rows in place
            values = values.reshape(values.shape[0], -1)
            values.sort(axis=1)
            self.centres[name] = values
        for control in self.controls:  # the same rows without any line
            self.line, self.windows = control, self.control_windows.pop(control)
            self.score_line()
        self.line = None

    def score_line(self) -> None:
        """Score the counted rows of the current line against the clean centres."""
        from pan.core.ks import SortedSamples, border_ks

        line = self.line
        rows = line.orientation == "rows"
        size = self.input_size[0] if rows else self.input_size[1]
        centres: dict[str, SortedSamples] = {}
        for (name, r), parts in sorted(self.windows.items(), key=lambda item: self.indices[item[0][0]]):
            if name not in centres:  # one layer's keys in memory at a time
                centres.clear()
                centres[name] = SortedSamples.from_sorted(self.centres[name])
            window = np.concatenate(parts)  # (images, neurons, length)
            values = window.transpose(1, 0, 2).reshape(window.shape[1], -1)
            result = border_ks(np.ascontiguousarray(values), centres[name])
            count = len(result.ks)
            map_size = self.shapes[name][0 if rows else 1]
            centre = line.index * map_size // size
            self.tables.append(
                pa.table(
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
            )
        self.windows.clear()

    def table(self) -> pa.Table:
        return pa.concat_tables(self.tables) if self.tables else FIRING_SCHEMA.empty_table()


def firing_statistics(
    net: nn.Module,
    batches: Sequence[torch.Tensor],
    lines: Sequence[Line],
    black: torch.Tensor,
    ids: Sequence[str],
    output_key: str | None = None,
    model: str = "model",
    progress: Callable[[int], None] = lambda n: None,
) -> tuple[pa.Table, pl.DataFrame]:
    """The theta-free firing statistics of every analysed neuron (:data:`FIRING_SCHEMA`) and
    the ``original`` predictions, from the same forward passes of ``net``."""
    from pan.capture.inference import recording
    from pan.capture.layers import analysed_layers

    recorder = FiringRecorder(tuple(batches[0].shape[-2:]), sum(len(batch) for batch in batches), lines)

    def on_line(variant: str, line: Line | None) -> None:
        recorder.line = line

    def after_line(variant: str, line: Line | None) -> None:
        if line is None:
            recorder.freeze_centres()
        else:
            recorder.score_line()

    with recording(analysed_layers(net, batches[0][:1]), recorder.sink):  # indexed as the dump
        predictions = line_predictions(
            {"original": net}, batches, lines, black, ids, output_key, model, on_line, after_line, progress
        )
    return recorder.table(), predictions


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
) -> None:
    """The theta-free job: firing statistics and ``original`` predictions of one model."""
    import pyarrow.parquet as pq

    from pan.logs import image_progress

    loaded, net, records, batches, black = prepared_run(model, images, count, micro_batch, device)
    lines = plan_lines(positions, kinds, *batches[0].shape[-2:])
    bar = image_progress(len(records) * (1 + len(lines)), f"lines {model.name}", progress)
    firing, predictions = firing_statistics(
        net, batches, lines, black, [r.id for r in records], model.output, model.name, bar.update
    )
    bar.close()
    pq.write_table(firing, firing_out)
    predictions.write_parquet(predictions_out)


def pan_firing(firing: pl.DataFrame, labels: pl.DataFrame, theta: float = DEFAULT_THETA) -> pl.DataFrame:
    """Per PAN and line whose orientation matches one of its borders: ``fires`` at theta (a
    counted row passes the PAN rule with the line and not on the clean images), and
    ``fires_clean`` (a counted row passes on the clean images already: near a border)."""
    theta = check_theta(theta)
    scored = firing.with_columns(passes=pan_rule(theta))
    keys = ["layer_index", "neuron", "orientation", "position", "map_line"]
    clean = scored.filter(pl.col("kind") == CLEAN).select(*keys, clean=pl.col("passes"))
    fires = (
        scored.filter(pl.col("kind") != CLEAN)
        .join(clean, on=keys, how="left")
        .group_by("layer", "layer_index", "neuron", "kind", "orientation", "position")
        .agg(
            fires=(pl.col("passes") & ~pl.col("clean").fill_null(False)).any(),
            fires_clean=pl.col("clean").fill_null(False).any(),
            best_ks=pl.col("ks").fill_nan(0.0).max(),
        )
    )
    frames = []
    for orientation, borders in ORIENTATIONS.items():
        pans = labels.filter(pl.any_horizontal(*[pl.col(f"pan_{b}") for b in borders])).select(
            "layer_index", "neuron", "pan_type"
        )
        frames.append(
            fires.filter(pl.col("orientation") == orientation).join(pans, on=["layer_index", "neuron"])
        )
    return pl.concat(frames).sort("layer_index", "neuron", "orientation", "position", "kind")


@dataclass(frozen=True)
class InjectedMaps:
    """One PAN's map on one image, clean and with each kind of line (the injection figure's data)."""

    layer: str
    neuron: int
    pan_type: str
    image_id: str
    orientation: str
    line: int
    map_line: int
    maps: dict[str, np.ndarray]
    """``clean`` and each kind -> ``(H, W)`` map."""


def strongest_firing_pan(firing: pl.DataFrame, labels: pl.DataFrame, theta: float) -> dict:
    """The PAN with the largest KS on a zero line (first kind if no zero), preferring columns."""
    fired = pan_firing(firing, labels, theta)
    if fired.is_empty():
        raise ValueError("no PAN with a border of a line's orientation: nothing to draw")
    kind = "zero" if "zero" in fired["kind"].to_list() else fired["kind"][0]
    best = fired.filter(pl.col("kind") == kind).sort(
        "fires", pl.col("orientation") == "columns", "best_ks", descending=True
    )
    return best.row(0, named=True)


def injected_maps(
    model,
    images,
    count: int | None,
    firing: str | Path,
    labels: str | Path,
    theta: float,
    kinds: Sequence[str],
    device: str = "auto",
) -> InjectedMaps:
    """The strongest firing PAN's map on the first evaluation image, clean and with each kind of
    line at the position where it fires most."""
    from pan.capture.inference import layer_outputs
    from pan.capture.layers import AnalysedLayer

    choice = strongest_firing_pan(pl.read_parquet(firing), pl.read_parquet(labels), theta)
    loaded, net, records, batches, black = prepared_run(model, images, 1, 1, device)
    height, width = batches[0].shape[-2:]
    watched = AnalysedLayer(choice["layer_index"], choice["layer"], net.get_submodule(choice["layer"]))
    maps = {"clean": layer_outputs(net, watched, iter(batches[:1]), batches[0].device)[0, choice["neuron"]]}
    index = -1
    for line in plan_lines([choice["position"]], kinds, height, width):
        if line.orientation != choice["orientation"]:
            continue
        index = line.index
        injected = inject(batches[0], line, black)
        maps[line.kind] = layer_outputs(net, watched, iter([injected]), injected.device)[0, choice["neuron"]]
    size = height if choice["orientation"] == "rows" else width
    map_size = maps["clean"].shape[0 if choice["orientation"] == "rows" else 1]
    return InjectedMaps(
        choice["layer"],
        choice["neuron"],
        choice["pan_type"],
        records[0].id,
        choice["orientation"],
        index,
        index * map_size // size,
        {name: m.numpy() for name, m in maps.items()},
    )
