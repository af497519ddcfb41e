"""The paper's tables: Table 1 (PANs per layer) and Table 2 (PAN types per model) from PAN
labels (:mod:`pan.labelling`), Table 3 (classes whose odds move) from odds (:mod:`pan.odds`).

Models are named by the mappings the tables are given (model -> file), never by file names."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from .labelling import PAN_TYPES, read_labels
from .odds import DEFAULT_ODDS_THRESHOLD, ODDS_VARIANTS, read_odds


def table1(labels: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Per model and layer: neurons, PANs, PAN percentage (rounded down) and edge detectors."""
    per_model = [
        frame.group_by("layer_index", "layer", maintain_order=True)
        .agg(
            neurons=pl.len(),
            pans=pl.col("is_pan").sum(),
            edge_detectors=pl.col("is_edge_detector").sum(),
        )
        .sort("layer_index")
        .select(pl.lit(model).alias("model"), pl.all())
        for model, frame in labels.items()
    ]
    return (
        pl.concat(per_model)
        .with_columns(
            pan_pct=(pl.col("pans") * 100 // pl.col("neurons")).cast(pl.Int64),
        )
        .select("model", "layer_index", "layer", "neurons", "pans", "pan_pct", "edge_detectors")
    )


def table2(labels: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Per model: count of each PAN type in the paper's order, then totals and PAN share."""
    rows = []
    for model, frame in labels.items():
        counts = dict(frame.filter(pl.col("is_pan"))["pan_type"].value_counts().iter_rows())
        neurons, pans = frame.height, int(frame["is_pan"].sum())
        rows.append(
            {
                "model": model,
                **{t: int(counts.get(t, 0)) for t in PAN_TYPES},
                "pans": pans,
                "edge_detectors": int(frame["is_edge_detector"].sum()),
                "neurons": neurons,
                "pan_pct": round(100 * pans / neurons, 2) if neurons else 0.0,
            }
        )
    return pl.DataFrame(rows)


def write_table1(pan_files: Mapping[str, str | Path], out: str | Path) -> pl.DataFrame:
    """Write Table 1 as CSV from each model's PAN labels (model -> ``results/pans/{model}.parquet``)."""
    table = table1({model: read_labels(f) for model, f in pan_files.items()})
    table.write_csv(out)
    return table


def write_table2(pan_files: Mapping[str, str | Path], out: str | Path) -> pl.DataFrame:
    """Write Table 2 as CSV from each model's PAN labels (model -> ``results/pans/{model}.parquet``)."""
    table = table2({model: read_labels(f) for model, f in pan_files.items()})
    table.write_csv(out)
    return table


TABLE3_SCHEMA = {
    "model": pl.String,
    "variant": pl.String,
    "direction": pl.String,
    "class_index": pl.Int64,
    "class_name": pl.String,
    "odds": pl.Float64,
    "log_odds": pl.Float64,
}
"""Columns of ``table3.csv``: one row per model, variant and class beyond the threshold."""


def table3(odds: Mapping[str, pl.DataFrame], threshold: float = DEFAULT_ODDS_THRESHOLD) -> pl.DataFrame:
    """The classes whose odds move by more than ``threshold`` (e.g. 0.07 for 7%), per model and variant.

    Columns: ``model, variant, direction, class_index, class_name, odds, log_odds``;
    ``direction`` is ``down`` (``1 / odds > 1 + threshold``, listed first) or ``up``
    (``odds > 1 + threshold``); models in the given order, variants in :data:`ODDS_VARIANTS`
    order, ``down`` before ``up``, the largest change first.
    """
    if not threshold > 0:
        raise ValueError(f"odds threshold must be positive, got {threshold}")
    rows = [
        frame.select(
            pl.lit(model).alias("model"),
            pl.lit(variant).alias("variant"),
            pl.when(pl.col(f"odds_{variant}") > 1)
            .then(pl.lit("up"))
            .otherwise(pl.lit("down"))
            .alias("direction"),
            "class_index",
            pl.col("class_name").cast(pl.String),
            pl.col(f"odds_{variant}").alias("odds"),
            pl.col(f"log_odds_{variant}").alias("log_odds"),
        )
        .filter((pl.col("odds") > 1 + threshold) | (1 / pl.col("odds") > 1 + threshold))
        .sort(["direction", pl.col("log_odds").abs()], descending=[False, True], maintain_order=True)
        for model, frame in odds.items()
        for variant in ODDS_VARIANTS
    ]
    return pl.concat(rows).cast(TABLE3_SCHEMA) if rows else pl.DataFrame(schema=TABLE3_SCHEMA)


def write_table3(
    odds_files: Mapping[str, str | Path], out: str | Path, threshold: float = DEFAULT_ODDS_THRESHOLD
) -> pl.DataFrame:
    """Write Table 3 from each model's odds table (model -> ``odds_{model}.csv``)."""
    table = table3({model: read_odds(f) for model, f in odds_files.items()}, threshold)
    table.write_csv(out)
    return table
