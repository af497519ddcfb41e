"""The interior-line null: how often a rule calls a neuron "PAN" where there is no padding.

A rule for PANs compares a border line with the centre of the map. Applied to a line far from
every border, the same comparison says how often the rule fires on a line that no padding can
reach directly: its false-positive rate at that map size. Per layer and neuron, two interior
lines are scored exactly as borders are (:func:`pan.core.ks.cdf_statistics`: KS, the paper's KS+/KS-
against the top/bottom ``k`` = line size, the share rule's against the top/bottom share ``q``):

- ``row``: the middle row of the centre (row ``H // 2``, columns ``1 .. W-2``);
- ``column``: the middle column of the centre (column ``W // 2``, rows ``1 .. H-2``);

each against *the rest of the centre* (the centre minus that line), so that the line is never
part of what it is compared with. A line holds ``W-2`` (``H-2``) values per image where a
border holds ``W`` (``H``), so the paper rule keeps ``1/(H-3)`` of the rest for a row where it
keeps ``W/((H-2)(W-2))`` of the centre for a border: at most one row more lenient at the border
than here. The counts come from one search of each line in the sorted centre, less the line's
own counts, so no second centre is sorted. Maps below 4x4 have no rest of the centre for their
row: its statistics are NaN (never "PAN").

``results/interior/{model}.parquet`` holds :data:`INTERIOR_SCHEMA` rows, written by the KS job
from the same dump; :func:`interior_null` turns them into ``results/tables/interior_null.csv``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from pan.core.ks import BorderKS, SortedSamples, _counts, cdf_statistics, nan_result
from pan.core.labelling import DEFAULT_THETA, RULES, check_theta, rule_expr, strength_expr

__all__ = [
    "INTERIOR_LINES",
    "INTERIOR_SCHEMA",
    "interior_lines",
    "interior_ks",
    "interior_table",
    "interior_null",
    "write_interior_null",
]

INTERIOR_LINES: tuple[str, ...] = ("row", "column")
"""The interior lines scored per neuron."""

INTERIOR_SCHEMA = pa.schema(
    [
        ("layer", pa.string()),
        ("layer_index", pa.int32()),
        ("neuron", pa.int32()),
        ("line", pa.string()),
        ("height", pa.int32()),
        ("width", pa.int32()),
        ("ks", pa.float64()),
        ("ks_plus", pa.float64()),
        ("ks_minus", pa.float64()),
        ("ks_plus_q", pa.float64()),
        ("ks_minus_q", pa.float64()),
        ("n_line", pa.int64()),
        ("n_rest", pa.int64()),
        ("n_q", pa.int64()),
    ]
)


def interior_lines(maps: np.ndarray) -> dict[str, np.ndarray]:
    """``{line: (neurons, values)}`` of maps ``(images, neurons, H, W)``: the middle row and
    column of the centre, all images, fresh arrays."""
    h, w = maps.shape[-2:]
    lines = {"row": maps[:, :, h // 2, 1 : w - 1], "column": maps[:, :, 1 : h - 1, w // 2]}
    return {name: line.transpose(1, 0, 2).copy().reshape(maps.shape[1], -1) for name, line in lines.items()}


def interior_ks(maps: np.ndarray, centre: SortedSamples, q: float) -> list[BorderKS]:
    """The statistics of each interior line (in :data:`INTERIOR_LINES` order) against the rest
    of the centre, given the sorted centre of the same ``maps``."""
    results = []
    for values in interior_lines(maps).values():
        line = SortedSamples(values, overwrite=True)
        n1, n_rest = line.size, centre.size - line.size
        if n_rest <= 0 or n1 == 0:
            results.append(nan_result(centre.neurons, n1, max(n_rest, 0), q))
            continue
        le, lt = _counts(centre.keys, line.keys)
        for row, keys in enumerate(line.keys):  # the line's own values are part of the centre
            le[row] -= keys.searchsorted(keys, side="right")
            lt[row] -= keys.searchsorted(keys, side="left")
        results.append(cdf_statistics(le, lt, n1, n_rest, q))
    return results


def interior_table(
    chunks: list[tuple[int, list[BorderKS]]], layer: str, layer_index: int, height: int, width: int
) -> pa.Table:
    """:data:`INTERIOR_SCHEMA` rows of one layer from ``(first neuron, [row, column])`` chunks."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in INTERIOR_SCHEMA.names}
    for start, results in chunks:
        for line, result in zip(INTERIOR_LINES, results, strict=True):
            size = len(result.ks)
            parts["neuron"].append(np.arange(start, start + size, dtype=np.int32))
            parts["line"].append(np.full(size, line, dtype=object))
            for name in ("ks", "ks_plus", "ks_minus", "ks_plus_q", "ks_minus_q"):
                parts[name].append(getattr(result, name))
            for name, value in (
                ("n_line", result.n_border),
                ("n_rest", result.n_centre),
                ("n_q", result.n_q),
            ):
                parts[name].append(np.full(size, value, dtype=np.int64))
    arrays = {name: np.concatenate(p) for name, p in parts.items() if p}
    rows = len(arrays["neuron"])
    arrays |= {
        "layer": np.full(rows, layer, dtype=object),
        "layer_index": np.full(rows, layer_index, dtype=np.int32),
        "height": np.full(rows, height, dtype=np.int32),
        "width": np.full(rows, width, dtype=np.int32),
    }
    order = np.lexsort((arrays["line"] == "column", arrays["neuron"]))
    return pa.table(
        {
            name: pa.array(arrays[name][order], type=INTERIOR_SCHEMA.field(name).type)
            for name in INTERIOR_SCHEMA.names
        }
    )


def _wilson(hits: pl.Expr, total: pl.Expr, sign: float) -> pl.Expr:
    """One end of the 95 % Wilson interval of ``hits / total``, in %."""
    z = 1.959963984540054
    p = hits / total
    centre = p + z * z / (2 * total)
    half = z * ((p * (1 - p) / total + z * z / (4 * total * total)).sqrt())
    return (100 * (centre + sign * half) / (1 + z * z / total)).clip(0, 100)


def interior_null(
    interior: Mapping[str, pl.DataFrame],
    labels: Mapping[str, pl.DataFrame] | None = None,
    theta: float = DEFAULT_THETA,
) -> pl.DataFrame:
    """Per model, map size and rule: the interior-line false-positive rate.

    Columns: ``model, height, width, rule, layers, neurons, fp_neurons`` (neurons that pass
    the rule on at least one interior line), ``fp_pct`` (their share, %), ``fp_low_pct``,
    ``fp_high_pct`` (95 % Wilson interval, neurons taken as independent), ``fp_line_pct``
    (share of single lines that pass: the rate per border test), ``max_strength`` (the largest
    strength ``min(KS, max(KS+, KS-))`` of any interior line: how far the null stays below
    theta) and, given the models' labels,
    ``border_pans`` and ``border_pan_pct``: the neurons of those layers that the rule calls
    PANs at their real borders, for comparison.
    """
    theta = check_theta(theta)
    frames = []
    for model, rows in interior.items():
        for rule in RULES:
            per_neuron = (
                rows.with_columns(passes=rule_expr(rule, theta), strength=strength_expr(rule))
                .group_by("layer_index", "neuron", "height", "width")
                .agg(
                    passes=pl.col("passes").any(),
                    lines=pl.len(),
                    line_hits=pl.col("passes").sum(),
                    strength=pl.col("strength").max(),
                )
            )
            summary = per_neuron.group_by("height", "width").agg(
                layers=pl.col("layer_index").n_unique(),
                neurons=pl.len(),
                fp_neurons=pl.col("passes").sum(),
                line_hits=pl.col("line_hits").sum(),
                lines=pl.col("lines").sum(),
                max_strength=pl.col("strength").max(),
            )
            if labels is not None:
                sizes = rows.select("layer_index", "height", "width").unique()
                view = labels[model].join(sizes, on="layer_index")
                column = "is_pan" if rule == "paper" else f"is_pan_{rule}"
                border = view.group_by("height", "width").agg(border_pans=pl.col(column).sum())
                summary = summary.join(border, on=["height", "width"], how="left")
            frames.append(summary.with_columns(model=pl.lit(model), rule=pl.lit(rule)))
    table = pl.concat(frames, how="diagonal").with_columns(
        fp_pct=100 * pl.col("fp_neurons") / pl.col("neurons"),
        fp_low_pct=_wilson(pl.col("fp_neurons"), pl.col("neurons"), -1.0),
        fp_high_pct=_wilson(pl.col("fp_neurons"), pl.col("neurons"), 1.0),
        fp_line_pct=100 * pl.col("line_hits") / pl.col("lines"),
    )
    columns = ["model", "height", "width", "rule", "layers", "neurons", "fp_neurons"]
    columns += ["fp_pct", "fp_low_pct", "fp_high_pct", "fp_line_pct", "max_strength"]
    if labels is not None:
        table = table.with_columns(border_pan_pct=100 * pl.col("border_pans") / pl.col("neurons"))
        columns += ["border_pans", "border_pan_pct"]
    order = {rule: i for i, rule in enumerate(RULES)}
    return (
        table.with_columns(pl.col(c).round(3) for c in columns if c.endswith("_pct") or c == "max_strength")
        .with_columns(rank=pl.col("rule").replace_strict(order))
        .sort(
            pl.col("model").replace_strict({m: i for i, m in enumerate(interior)}), "height", "width", "rank"
        )
        .select(columns)
    )


def write_interior_null(
    interior_files: Mapping[str, str | Path],
    label_files: Mapping[str, str | Path],
    out: str | Path,
    theta: float,
) -> pl.DataFrame:
    """``results/tables/interior_null.csv`` from each model's interior rows and PAN labels."""
    table = interior_null(
        {model: pl.read_parquet(f) for model, f in interior_files.items()},
        {model: pl.read_parquet(f) for model, f in label_files.items()},
        theta,
    )
    table.write_csv(out)
    return table
