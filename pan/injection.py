"""The zero-line attack (paper §5: claimed, never measured).

"Adding a one-row/column of zeros anywhere in the input will cause PANs to fire." On the §4
evaluation images, a one-pixel line is written into the preprocessed input at each configured
position (a fraction of the height for rows, of the width for columns; input row/column
``min(floor(position * size), size - 1)``), of one of three kinds:

- ``zero``:   0 in the model's input space (after normalisation): what the first conv pads with;
- ``black``:  pixel value 0 (the model's transform of a black image): what an attacker draws;
- ``copied``: the control: the same line of pixels copied from row/column
  ``(index + max(1, size // 8)) % size`` of the same image, a change of content that is not
  padding-like.

**PAN firing** (theta-free statistics, :func:`firing_statistics`). A line at input row ``p``
of an ``S``-pixel input lands, at a layer whose maps have ``s`` rows, on map row
``c = floor(p * s / S)``; the rows that count are ``c - 1, c, c + 1`` (clipped to the map),
the 3x3 neighbourhood a kernel of the next layer sees (:func:`reached`; columns alike).
Each such row of each neuron, over all injected images, is scored against that neuron's §3
centre (rows and columns ``1 .. s-2``) on the *clean* images with §3's KS, KS+ and KS-
(:func:`pan.ks.border_ks`). At theta (:func:`injection_summary`) a PAN with a border of the
line's orientation (T or B for rows, L or R for columns) *fires* at a position when one of
the counted rows passes the PAN rule (:func:`pan.labelling.pan_rule`) with the line and not
without it: the same rows of the clean images are scored too (kind ``clean``), since near a
border (small maps) they can pass with no line at all. ``pans_firing_fraction`` is the share
of (PAN, position) pairs that fire.

**Predictions** (:func:`line_predictions`): per image, line and variant (``original``,
``pan_reflect``, ``rand_reflect``), the top-1 class and the L1 distance between the logits
of the injected and the clean image under the same variant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
import polars as pl
import pyarrow as pa

from .labelling import DEFAULT_THETA, check_theta, pan_rule

if TYPE_CHECKING:  # torch loads lazily: the config imports the defaults below
    import torch
    from torch import nn

KINDS: tuple[str, ...] = ("zero", "black", "copied")
DEFAULT_KINDS = KINDS
DEFAULT_POSITIONS: tuple[float, ...] = (0.25, 0.5, 0.75)
DEFAULT_INJECTION_COUNT = 16
"""Evaluation images that get lines: each costs ``1 + 2 * positions * kinds`` forward passes
per variant (57 for the defaults), so the default takes the first 16 of the §4 images."""
ORIENTATIONS: dict[str, tuple[str, str]] = {"rows": ("T", "B"), "columns": ("L", "R")}
"""Line orientation -> the PAN borders it mimics."""
PREDICTION_VARIANTS: tuple[str, ...] = ("original", "pan_reflect", "rand_reflect")

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

PREDICTION_COLUMNS = (
    "sample",
    "id",
    "variant",
    "kind",
    "orientation",
    "position",
    "line",
    "pred_clean",
    "pred_injected",
    "changed",
    "l1",
)
"""Columns of the prediction files and of ``results/tables/injection_{model}.csv``."""


@dataclass(frozen=True)
class Line:
    """One injected line: its kind, orientation, configured position and input row/column."""

    kind: str
    orientation: str
    position: float
    index: int
    source: int
    """Row/column the ``copied`` line's pixels come from (-1 for the other kinds)."""


def input_line(position: float, size: int) -> int:
    """The input row (column) of a line at ``position`` (a fraction) of ``size`` pixels."""
    return min(int(position * size), size - 1)


def copy_source(index: int, size: int) -> int:
    """Where the control line's pixels come from: ``size // 8`` further on (at least 1), wrapped."""
    return (index + max(1, size // 8)) % size


def plan_lines(positions: Sequence[float], kinds: Sequence[str], height: int, width: int) -> list[Line]:
    """Every line of the config for a ``height x width`` input, rows first."""
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown line kinds {unknown}; use some of {KINDS}")
    lines = []
    for orientation, size in (("rows", height), ("columns", width)):
        for position in positions:
            index = input_line(position, size)
            for kind in kinds:
                source = copy_source(index, size) if kind == "copied" else -1
                lines.append(Line(kind, orientation, float(position), index, source))
    return lines


CLEAN = "clean"
"""Kind of the control rows in the firing statistics: the counted rows of a line position on
the clean images; a PAN fires only on rows that do not pass the PAN rule there already."""


def clean_control(line: Line) -> Line:
    """The clean control of ``line``: the same orientation and position, nothing drawn."""
    return Line(CLEAN, line.orientation, line.position, line.index, -1)


def reached(index: int, input_size: int, map_size: int) -> list[int]:
    """The map rows (columns) that count for a line at input row ``index`` (see module docstring)."""
    centre = index * map_size // input_size
    return [r for r in (centre - 1, centre, centre + 1) if 0 <= r < map_size]


def black_value(transform: Callable[[Any], torch.Tensor]) -> torch.Tensor:
    """The model's input-space value ``(channels,)`` of a black pixel (pixel value 0)."""
    from PIL import Image

    image = transform(Image.new("RGB", (256, 256)))
    return image[:, image.shape[1] // 2, image.shape[2] // 2].clone()


def inject(batch: torch.Tensor, line: Line, black: torch.Tensor) -> torch.Tensor:
    """A copy of ``batch`` ``(images, channels, H, W)`` with ``line`` written into every image."""
    out = batch.clone()
    view = out if line.orientation == "rows" else out.transpose(2, 3)
    source = batch if line.orientation == "rows" else batch.transpose(2, 3)
    if line.kind == "zero":
        view[:, :, line.index, :] = 0
    elif line.kind == "black":
        view[:, :, line.index, :] = black.to(batch)[None, :, None]
    elif line.kind == "copied":
        view[:, :, line.index, :] = source[:, :, line.source, :]
    else:
        raise ValueError(f"unknown line kind {line.kind!r}; use one of {KINDS}")
    return out


def line_predictions(
    nets: Mapping[str, nn.Module],
    batches: Sequence[torch.Tensor],
    lines: Sequence[Line],
    black: torch.Tensor,
    ids: Sequence[str],
    output_key: str | None = None,
    model: str = "model",
    on_line: Callable[[str, Line | None], None] = lambda variant, line: None,
    after_line: Callable[[str, Line | None], None] = lambda variant, line: None,
    progress: Callable[[int], None] = lambda n: None,
) -> pl.DataFrame:
    """Top-1 and logit L1 of every image with every line against the clean image, per variant.

    Each variant runs the clean batches first (``line`` None), then each line over every
    batch; ``on_line``/``after_line`` are called around each of these passes (the firing
    statistics hook into them).
    """
    import torch

    from .evaluation import output_logits

    def logits(net: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return output_logits(net(batch), output_key, model=model).float().cpu()

    frames = []
    with torch.inference_mode():
        for variant, net in nets.items():
            on_line(variant, None)
            clean = torch.cat([logits(net, batch) for batch in batches])
            after_line(variant, None)
            progress(len(ids))
            for line in lines:
                on_line(variant, line)
                injected = torch.cat([logits(net, inject(batch, line, black)) for batch in batches])
                after_line(variant, line)
                progress(len(ids))
                pred_clean, pred_injected = clean.argmax(1).numpy(), injected.argmax(1).numpy()
                frames.append(
                    pl.DataFrame(
                        {
                            "sample": np.arange(len(ids), dtype=np.int32),
                            "id": list(ids),
                            "variant": variant,
                            "kind": line.kind,
                            "orientation": line.orientation,
                            "position": line.position,
                            "line": line.index,
                            "pred_clean": pred_clean.astype(np.int64),
                            "pred_injected": pred_injected.astype(np.int64),
                            "changed": pred_clean != pred_injected,
                            "l1": (injected - clean).abs().sum(1).double().numpy(),
                        }
                    )
                )
    return pl.concat(frames).select(PREDICTION_COLUMNS)


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
        from .ks import SortedSamples, border_ks

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
    from .inference import recording
    from .layers import analysed_layers

    recorder = FiringRecorder(tuple(batches[0].shape[-2:]), sum(len(batch) for batch in batches), lines)

    def on_line(variant: str, line: Line | None) -> None:
        recorder.line = line

    def after_line(variant: str, line: Line | None) -> None:
        if line is None:
            recorder.freeze_centres()
        else:
            recorder.score_line()

    with recording(analysed_layers(net), recorder.sink):
        predictions = line_predictions(
            {"original": net}, batches, lines, black, ids, output_key, model, on_line, after_line, progress
        )
    return recorder.table(), predictions


def _prepared(model, images, count: int | None, micro_batch: int, device: str):
    """The loaded model on its device, the first ``count`` evaluation records and their batches."""
    from .images import image_records
    from .inference import pick_device, preprocessed_batches
    from .models import load_model

    loaded = load_model(model)
    records = image_records(images)
    records = records[:count] if count is not None else records
    target = pick_device(device)
    net = loaded.model.to(target).eval()
    batches = [b.to(target) for b in preprocessed_batches(records, loaded.transform, micro_batch)]
    return loaded, net, records, batches, black_value(loaded.transform)


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

    from .logs import image_progress

    loaded, net, records, batches, black = _prepared(model, images, count, micro_batch, device)
    lines = plan_lines(positions, kinds, *batches[0].shape[-2:])
    bar = image_progress(len(records) * (1 + len(lines)), f"lines {model.name}", progress)
    firing, predictions = firing_statistics(
        net, batches, lines, black, [r.id for r in records], model.output, model.name, bar.update
    )
    bar.close()
    pq.write_table(firing, firing_out)
    predictions.write_parquet(predictions_out)


def write_variant_predictions(
    model,
    images,
    positions: Sequence[float],
    kinds: Sequence[str],
    count: int | None,
    pan_labels: str | Path,
    out: str | Path,
    rand_seed: int = 0,
    micro_batch: int = 16,
    device: str = "auto",
    progress: TextIO | None = None,
) -> pl.DataFrame:
    """The label-dependent job: predictions of ``pan_reflect`` and ``rand_reflect`` with lines."""
    from .logs import image_progress
    from .padding import with_reflect_padding
    from .variants import variant_channels

    loaded, net, records, batches, black = _prepared(model, images, count, micro_batch, device)
    channels = variant_channels(pl.read_parquet(pan_labels), rand_seed)
    nets = {
        name: with_reflect_padding(net, channels[name]).eval() for name in ("pan_reflect", "rand_reflect")
    }
    lines = plan_lines(positions, kinds, *batches[0].shape[-2:])
    bar = image_progress(len(records) * (1 + len(lines)) * len(nets), f"lines {model.name}", progress)
    table = line_predictions(
        nets, batches, lines, black, [r.id for r in records], model.output, model.name, progress=bar.update
    )
    bar.close()
    table.write_parquet(out)
    return table


def write_injection_table(prediction_files: Iterable[str | Path], out: str | Path) -> pl.DataFrame:
    """``injection_{model}.csv``: the prediction files of one model, variants in order."""
    table = pl.concat([pl.read_parquet(f) for f in prediction_files])
    order = {v: i for i, v in enumerate(PREDICTION_VARIANTS)}
    table = table.sort(pl.col("variant").replace_strict(order), "orientation", "position", "kind", "sample")
    table.write_csv(out)
    return table


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


SUMMARY_COLUMNS = (
    "model",
    "kind",
    "orientation",
    "variant",
    "pans",
    "pans_firing_fraction",
    "top1_change_rate",
    "mean_l1",
)
"""Columns of ``results/tables/injection_summary.csv``."""


def injection_summary(
    firing: Mapping[str, pl.DataFrame],
    labels: Mapping[str, pl.DataFrame],
    predictions: Mapping[str, pl.DataFrame],
    theta: float = DEFAULT_THETA,
) -> pl.DataFrame:
    """Per model, kind, orientation and variant: PANs of that orientation, the share of
    (PAN, position) pairs that fire (measured on the original model, so the same for every
    variant), the top-1 change rate and the mean L1 logit distance."""
    frames = []
    for model, table in predictions.items():
        fired = pan_firing(firing[model], labels[model], theta)
        label = labels[model]
        pans = {
            o: label.filter(pl.any_horizontal(*[pl.col(f"pan_{b}") for b in borders])).height
            for o, borders in ORIENTATIONS.items()
        }
        share = fired.group_by("kind", "orientation").agg(pans_firing_fraction=pl.col("fires").mean())
        frames.append(
            table.group_by("kind", "orientation", "variant")
            .agg(top1_change_rate=pl.col("changed").mean(), mean_l1=pl.col("l1").mean())
            .join(share, on=["kind", "orientation"], how="left")
            .with_columns(
                model=pl.lit(model),
                pans=pl.col("orientation").replace_strict(pans, return_dtype=pl.Int64),
            )
        )
    kind_order = {k: i for i, k in enumerate(KINDS)}
    variant_order = {v: i for i, v in enumerate(PREDICTION_VARIANTS)}
    return (
        pl.concat(frames)
        .select(SUMMARY_COLUMNS)
        .sort(
            "model",
            pl.col("kind").replace_strict(kind_order),
            "orientation",
            pl.col("variant").replace_strict(variant_order),
        )
    )


def write_injection_summary(
    models: Sequence[str],
    firing_files: Sequence[str | Path],
    label_files: Sequence[str | Path],
    table_files: Sequence[str | Path],
    out: str | Path,
    theta: float,
) -> pl.DataFrame:
    """``injection_summary.csv`` from each model's firing statistics, labels and injection table."""
    summary = injection_summary(
        {m: pl.read_parquet(f) for m, f in zip(models, firing_files, strict=True)},
        {m: pl.read_parquet(f) for m, f in zip(models, label_files, strict=True)},
        {m: pl.read_csv(f) for m, f in zip(models, table_files, strict=True)},
        theta,
    )
    summary.write_csv(out)
    return summary


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
    from .inference import layer_outputs
    from .layers import AnalysedLayer

    choice = strongest_firing_pan(pl.read_parquet(firing), pl.read_parquet(labels), theta)
    loaded, net, records, batches, black = _prepared(model, images, 1, 1, device)
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
