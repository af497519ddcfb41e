"""The paper's tables: Table 1 (PANs per layer) and Table 2 (PAN types per model) from PAN
labels (:mod:`pan.core.labelling`), Table 3 (classes whose odds move) from odds (:mod:`pan.bias.odds`).

Models are named by the mappings the tables are given (model -> file), never by file names."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from pan.core.labelling import PAN_TYPES, read_labels

__all__ = ["table1", "table2", "write_table1", "write_table2"]


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
