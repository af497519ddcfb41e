"""The paper's tables: Table 1 (PANs per layer) and Table 2 (PAN types per model) from PAN
labels (:mod:`pan.core.labelling`), Table 3 (classes whose odds move) from odds (:mod:`pan.bias.odds`).

Tables 1 and 2 have a ``rule`` column: one row per model (and layer) for each PAN rule the
labels hold (:data:`pan.core.labelling.RULES`: ``paper``, the reproduction, then ``share``).

Models are named by the mappings the tables are given (model -> file), never by file names."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from pan.core.borders import BORDERS
from pan.core.labelling import PAN_TYPES, RULES, read_labels, rule_view

__all__ = ["table1", "table2", "write_table1", "write_table2"]


def _scoreable() -> pl.Expr:
    """A neuron whose KS statistics are defined on every border: its maps are at least 3x3, so
    they have a centre to compare borders with (smaller maps get NaN and can be no PANs)."""
    return pl.all_horizontal(pl.col(f"ks_{b}").is_not_nan().fill_null(False) for b in BORDERS)


def _rules(frame: pl.DataFrame) -> list[str]:
    """The rules whose columns ``frame`` (PAN labels) holds, in :data:`RULES` order."""
    return [rule for rule in RULES if rule == "paper" or "is_pan_share" in frame.columns]


def table1(labels: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Per model, rule and layer: neurons, PANs, PAN percentage (rounded down) and edge
    detectors, then ``scoreable_neurons`` (maps of at least 3x3) and ``pan_pct_scoreable``
    (PANs per scoreable neuron, rounded down; null for a layer with none)."""
    per_model = [
        rule_view(frame, rule)
        .group_by("layer_index", "layer", maintain_order=True)
        .agg(
            neurons=pl.len(),
            pans=pl.col("is_pan").sum(),
            edge_detectors=pl.col("is_edge_detector").sum(),
            scoreable_neurons=_scoreable().sum(),
        )
        .sort("layer_index")
        .select(pl.lit(model).alias("model"), pl.lit(rule).alias("rule"), pl.all())
        for model, frame in labels.items()
        for rule in _rules(frame)
    ]
    return (
        pl.concat(per_model)
        .with_columns(
            pan_pct=(pl.col("pans") * 100 // pl.col("neurons")).cast(pl.Int64),
            pan_pct_scoreable=pl.when(pl.col("scoreable_neurons") > 0)
            .then(pl.col("pans") * 100 // pl.col("scoreable_neurons"))
            .cast(pl.Int64),
        )
        .select(
            "model",
            "rule",
            "layer_index",
            "layer",
            "neurons",
            "pans",
            "pan_pct",
            "edge_detectors",
            pl.col("scoreable_neurons").cast(pl.Int64),
            "pan_pct_scoreable",
        )
    )


def table2(labels: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Per model and rule: count of each PAN type in the paper's order, then totals and PAN
    share of all analysed neurons, then ``scoreable_neurons`` (maps of at least 3x3) and
    ``pan_pct_scoreable``, the PAN share of those (2 decimals; null when none is scoreable),
    and ``borderline``: neurons whose strength interval holds theta (PANs or not; null where
    the labels have no intervals)."""
    rows = []
    for model, frame in labels.items():
        scoreable = int(frame.select(_scoreable().sum()).item())
        for rule in _rules(frame):
            view = rule_view(frame, rule)
            counts = dict(view.filter(pl.col("is_pan"))["pan_type"].value_counts().iter_rows())
            neurons, pans = view.height, int(view["is_pan"].sum())
            known = "confidence" in view.columns and view["confidence"].null_count() < view.height
            rows.append(
                {
                    "model": model,
                    "rule": rule,
                    **{t: int(counts.get(t, 0)) for t in PAN_TYPES},
                    "pans": pans,
                    "edge_detectors": int(view["is_edge_detector"].sum()),
                    "neurons": neurons,
                    "pan_pct": round(100 * pans / neurons, 2) if neurons else 0.0,
                    "scoreable_neurons": scoreable,
                    "pan_pct_scoreable": round(100 * pans / scoreable, 2) if scoreable else None,
                    "borderline": int((view["confidence"] == "borderline").sum()) if known else None,
                }
            )
    return pl.DataFrame(rows, schema_overrides={"pan_pct_scoreable": pl.Float64, "borderline": pl.Int64})


def _log_unscoreable(labels: Mapping[str, pl.DataFrame]) -> None:
    """Name, in the log, each layer whose neurons are left out of the scoreable counts."""
    for model, frame in labels.items():
        left_out = (
            frame.group_by("layer_index", "layer")
            .agg(neurons=pl.len(), scoreable=_scoreable().sum())
            .filter(pl.col("scoreable") < pl.col("neurons"))
            .sort("layer_index")
        )
        for layer, neurons, scoreable in left_out.select("layer", "neurons", "scoreable").iter_rows():
            logging.warning(
                "model %s, layer %s: %d of %d neurons not scoreable (maps below 3x3, NaN statistics): "
                "counted in neurons, not in scoreable_neurons",
                model,
                layer,
                neurons - scoreable,
                neurons,
            )


def write_table1(pan_files: Mapping[str, str | Path], out: str | Path) -> pl.DataFrame:
    """Write Table 1 as CSV from each model's PAN labels (model -> ``results/pans/{model}.parquet``)."""
    labels = {model: read_labels(f) for model, f in pan_files.items()}
    _log_unscoreable(labels)
    table = table1(labels)
    table.write_csv(out)
    return table


def write_table2(pan_files: Mapping[str, str | Path], out: str | Path) -> pl.DataFrame:
    """Write Table 2 as CSV from each model's PAN labels (model -> ``results/pans/{model}.parquet``)."""
    labels = {model: read_labels(f) for model, f in pan_files.items()}
    _log_unscoreable(labels)
    table = table2(labels)
    table.write_csv(out)
    return table
