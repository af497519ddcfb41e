"""Per-class odds of a padding variant against the original model (paper §4, Eq. 1).

The odds of a class ``c`` under a variant ``v`` are
``sum_i softmax(v(i))[c] / sum_i softmax(original(i))[c]`` over the same evaluation images
(softmax in float64), for the variants of :data:`ODDS_VARIANTS` (see :mod:`pan.bias.variants`).
On disk, ``results/tables/odds_{model}.csv`` has the columns of :data:`ODDS_SCHEMA`
(log-odds are natural logarithms); :func:`read_odds` reads it back, checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from pan.bias.logits import Logits, read_logits

__all__ = [
    "DEFAULT_ODDS_THRESHOLD",
    "ODDS_SCHEMA",
    "ODDS_VARIANTS",
    "check_same_images",
    "class_odds",
    "odds_table",
    "read_odds",
    "read_runs",
    "softmax",
    "write_odds",
]

ODDS_VARIANTS: tuple[str, ...] = ("pan_reflect", "rand_reflect", "reflect")
"""Variants whose odds are taken against ``original``, in the column order of the odds table."""
DEFAULT_ODDS_THRESHOLD = 0.07
"""Table 3 lists the classes whose odds move by more than this (7 %, as the paper)."""

ODDS_SCHEMA = {
    "class_index": pl.Int64,
    "class_name": pl.String,
    **{f"{kind}_{v}": pl.Float64 for v in ODDS_VARIANTS for kind in ("odds", "log_odds")},
}
"""Columns of ``odds_{model}.csv``."""


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable: the row maximum is subtracted first)."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def class_odds(original: np.ndarray, variant: np.ndarray) -> np.ndarray:
    """Eq. 1: per class, the summed softmax of ``variant`` over that of ``original`` (same images)."""
    if original.shape != variant.shape:
        raise ValueError(f"logits differ in shape: original {original.shape}, variant {variant.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return softmax(variant).sum(axis=0) / softmax(original).sum(axis=0)


def check_same_images(runs: Mapping[str, Logits]) -> None:
    """Every variant must have seen the same images in the same order."""
    reference = runs["original"]
    for name, run in runs.items():
        if run.ids != reference.ids or run.num_classes != reference.num_classes:
            raise ValueError(f"variant {name!r} was evaluated on other images or classes than 'original'")


def read_runs(eval_files: Sequence[str | Path]) -> dict[str, Logits]:
    """The logits of one model's variants, keyed by variant name (from the files' metadata)."""
    runs = [read_logits(f) for f in eval_files]
    return {run.variant: run for run in runs}


def odds_table(runs: Mapping[str, Logits]) -> pl.DataFrame:
    """Per class: odds and natural log-odds of each of :data:`ODDS_VARIANTS` against ``original``."""
    missing = [v for v in ("original", *ODDS_VARIANTS) if v not in runs]
    if missing:
        raise ValueError(f"odds need the logits of {missing}")
    check_same_images(runs)
    original = runs["original"]
    if original.num_classes < 2:
        raise ValueError(
            f"model {original.model!r} has {original.num_classes} output class: its softmax is 1 for "
            "every image, so every odds value would be 1 by construction; section 4 needs a classifier"
        )
    columns: dict[str, object] = {
        "class_index": np.arange(original.num_classes),
        "class_name": pl.Series(
            [original.class_name(c) for c in range(original.num_classes)], dtype=pl.String
        ),
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        for variant in ODDS_VARIANTS:
            odds = class_odds(original.logits, runs[variant].logits)
            columns[f"odds_{variant}"] = odds
            columns[f"log_odds_{variant}"] = np.log(odds)
    return pl.DataFrame(columns, schema=ODDS_SCHEMA)


def write_odds(eval_files: Sequence[str | Path], out: str | Path) -> pl.DataFrame:
    """Write the odds table of one model from its variants' logit files; a model whose output
    is a dense map, not class scores, has no classes: its table is empty (see
    :mod:`pan.bias.outputs` for what any output gets)."""
    runs = read_runs(eval_files)
    dense = not runs["original"].is_classifier
    table = pl.DataFrame(schema=ODDS_SCHEMA) if dense else odds_table(runs)
    table.write_csv(out)
    return table


def read_odds(path: str | Path, allow_empty: bool = False) -> pl.DataFrame:
    """An odds table written by :func:`write_odds`, checked for its columns and classes (an
    empty table, a dense-output model's, only with ``allow_empty``)."""
    odds = pl.read_csv(path, schema_overrides=ODDS_SCHEMA)
    missing = [c for c in ODDS_SCHEMA if c not in odds.columns]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}; expected {list(ODDS_SCHEMA)}")
    if odds.height == 0 and not allow_empty:
        raise ValueError(f"{path} has no classes")
    return odds.select(list(ODDS_SCHEMA))
