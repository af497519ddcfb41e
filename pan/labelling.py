"""PAN labelling (paper §3.2): thresholds on KS, KS+ and KS-, and the 15 PAN types.

For a border, a neuron is an *edge detector* when ``KS > theta``, and a *PAN* when also
``KS+ > theta or KS- > theta``. Its PAN type lists the borders it is a PAN for, in T, B, L,
R order: one of the 15 non-empty combinations, or ``""`` for a neuron that is no PAN.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

import polars as pl

from .borders import BORDERS

PAN_TYPES: tuple[str, ...] = tuple(
    "".join(combo) for size in range(1, len(BORDERS) + 1) for combo in combinations(BORDERS, size)
)
"""T, B, L, R, TB, TL, TR, BL, BR, LR, TBL, TBR, TLR, BLR, TBLR: the paper's Table 2 order."""

DEFAULT_THETA = 0.5


def check_theta(theta: float) -> float:
    """``theta`` must lie strictly between 0 and 1 (KS statistics live in [0, 1])."""
    if not 0 < theta < 1:
        raise ValueError(f"theta must be strictly between 0 and 1, got {theta}")
    return float(theta)


def label_pans(ks: pl.DataFrame, theta: float = DEFAULT_THETA) -> pl.DataFrame:
    """One row per neuron from a KS table (one row per neuron x border, see :mod:`pan.scoring`).

    Columns: ``layer, layer_index, neuron``, per border ``b``: ``ks_b, edge_b, pan_b``, then
    ``is_edge_detector, is_pan, pan_type, theta``. NaN statistics (maps below 3x3) never pass.
    """
    theta = check_theta(theta)
    scored = ks.with_columns(
        edge=pl.col("ks").fill_nan(0.0) > theta,
        truncated=(pl.col("ks_plus").fill_nan(0.0) > theta) | (pl.col("ks_minus").fill_nan(0.0) > theta),
    ).with_columns(pan=pl.col("edge") & pl.col("truncated"))
    wide = scored.pivot(
        on="border",
        index=["layer", "layer_index", "neuron"],
        values=["ks", "edge", "pan"],
        separator="_",
    )
    missing = [b for b in BORDERS if f"pan_{b}" not in wide.columns]
    if missing:
        raise ValueError(f"KS table lacks borders {missing}")
    pan_type = pl.concat_str(
        [pl.when(pl.col(f"pan_{b}")).then(pl.lit(b)).otherwise(pl.lit("")) for b in BORDERS]
    )
    return (
        wide.select(
            "layer",
            "layer_index",
            "neuron",
            *[pl.col(f"ks_{b}") for b in BORDERS],
            *[pl.col(f"edge_{b}") for b in BORDERS],
            *[pl.col(f"pan_{b}") for b in BORDERS],
        )
        .with_columns(
            is_edge_detector=pl.any_horizontal(*[f"edge_{b}" for b in BORDERS]),
            is_pan=pl.any_horizontal(*[f"pan_{b}" for b in BORDERS]),
            pan_type=pan_type,
            theta=pl.lit(theta),
        )
        .sort("layer_index", "neuron")
    )


def label_pan_files(
    ks_files: Sequence[str | Path], out: str | Path, theta: float = DEFAULT_THETA
) -> pl.DataFrame:
    """Label the neurons of one model from its per-layer KS files and write them to ``out``."""
    labels = label_pans(pl.concat([pl.read_parquet(f) for f in ks_files]), theta)
    labels.write_parquet(out)
    return labels
