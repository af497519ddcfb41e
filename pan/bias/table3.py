"""Table 3 of the paper (§4): classes whose odds a padding variant moves beyond a threshold."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from pan.bias.odds import DEFAULT_ODDS_THRESHOLD, ODDS_VARIANTS, read_odds

__all__ = ["TABLE3_SCHEMA", "table3", "write_table3"]

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
    """Write Table 3 from each model's odds table (model -> ``odds_{model}.csv``); a model with a
    dense output has an empty odds table and so no rows (:mod:`pan.bias.outputs` measures it)."""
    table = table3({model: read_odds(f, allow_empty=True) for model, f in odds_files.items()}, threshold)
    table.write_csv(out)
    return table
