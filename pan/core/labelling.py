"""PAN labelling (paper §3.2): thresholds on KS, KS+ and KS-, and the 15 PAN types.

For a border, a neuron is an *edge detector* when ``KS > theta``, and a *PAN* when also
``KS+ > theta or KS- > theta``. Its PAN type lists the borders it is a PAN for, in T, B, L,
R order: one of the 15 non-empty combinations, or ``""`` for a neuron that is no PAN.

``results/pans/{model}.parquet`` holds :func:`label_pans`'s table; :func:`read_labels` reads it.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

import polars as pl

from pan.core.borders import BORDERS
from pan.core.scoring import read_ks_tables

__all__ = [
    "DEFAULT_THETA",
    "PAN_TYPES",
    "SWEEP_THETAS",
    "check_theta",
    "edge_rule",
    "label_pan_files",
    "label_pans",
    "pan_rule",
    "pan_strength",
    "read_labels",
    "theta_sweep",
]

PAN_TYPES: tuple[str, ...] = tuple(
    "".join(combo) for size in range(1, len(BORDERS) + 1) for combo in combinations(BORDERS, size)
)
"""T, B, L, R, TB, TL, TR, BL, BR, LR, TBL, TBR, TLR, BLR, TBLR: the paper's Table 2 order."""

DEFAULT_THETA = 0.5
"""The paper's threshold."""
SWEEP_THETAS: tuple[float, ...] = tuple(round(0.1 + 0.05 * i, 2) for i in range(17))
"""The thetas of :func:`theta_sweep`: 0.1 to 0.9 in steps of 0.05."""


def check_theta(theta: float) -> float:
    """``theta`` must be a number strictly between 0 and 1 (KS statistics live in [0, 1])."""
    if isinstance(theta, bool) or not isinstance(theta, numbers.Real) or not 0 < theta < 1:
        raise ValueError(f"theta must be a number strictly between 0 and 1, got {theta!r}")
    return float(theta)


def edge_rule(theta: float) -> pl.Expr:
    """``KS > theta`` on columns ``ks`` (NaN never passes): an edge detector for that row's border."""
    return pl.col("ks").fill_nan(0.0) > theta


def pan_rule(theta: float) -> pl.Expr:
    """The PAN rule on columns ``ks, ks_plus, ks_minus``: ``KS > theta`` and (``KS+ > theta`` or
    ``KS- > theta``); NaN statistics never pass. Every PAN decision of pan goes through it."""
    truncated = (pl.col("ks_plus").fill_nan(0.0) > theta) | (pl.col("ks_minus").fill_nan(0.0) > theta)
    return edge_rule(theta) & truncated


def label_pans(ks: pl.DataFrame, theta: float = DEFAULT_THETA) -> pl.DataFrame:
    """One row per neuron from a KS table (one row per neuron x border, see :mod:`pan.core.scoring`).

    Columns: ``layer, layer_index, neuron``, per border ``b``: ``ks_b, edge_b, pan_b``, then
    ``is_edge_detector, is_pan, pan_type, theta, layer_padding`` (what the layer's conv pads
    with; a PAN in a layer that does not pad with zeros can only be downstream). NaN statistics
    (maps below 3x3) never pass.

    Example (neuron 1 goes silent on its left column; relabel a model's KS tables at another
    theta, no model rerun, with ``pl.read_parquet("results/ks/{model}/*.parquet")``)::

        >>> import numpy as np, polars as pl
        >>> from pan import label_pans
        >>> from pan.core.scoring import score_maps
        >>> maps = np.random.default_rng(0).normal(size=(8, 2, 12, 12)).astype(np.float32)
        >>> maps[:, 1, :, 0] -= 10
        >>> ks = pl.from_arrow(score_maps(maps, "conv", 0))
        >>> label_pans(ks, theta=0.5).select("neuron", "is_pan", "pan_type").rows()
        [(0, False, ''), (1, True, 'L')]
    """
    theta = check_theta(theta)
    _check_unique(ks)
    scored = ks.with_columns(edge=edge_rule(theta), pan=pan_rule(theta))
    if "layer_padding" not in scored.columns:  # KS tables scored without it: zero padding
        scored = scored.with_columns(layer_padding=pl.lit("zeros"))
    wide = scored.pivot(
        on="border",
        index=["layer", "layer_index", "neuron", "layer_padding"],
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
            "layer_padding",
        )
        .with_columns(
            is_edge_detector=pl.any_horizontal(*[f"edge_{b}" for b in BORDERS]),
            is_pan=pl.any_horizontal(*[f"pan_{b}" for b in BORDERS]),
            pan_type=pan_type,
            theta=pl.lit(theta),
        )
        .select(pl.exclude("layer_padding"), "layer_padding")
        .sort("layer_index", "neuron")
    )


def _check_unique(ks: pl.DataFrame) -> None:
    """Refuse a KS table with two rows for one neuron and border (the same KS files read twice,
    or two models' tables in one folder): which row counts would be arbitrary."""
    keys = ["layer", "neuron", "border"]
    repeated = ks.group_by(keys).len().filter(pl.col("len") > 1)
    if repeated.height:
        first = repeated.sort(keys).row(0, named=True)
        raise ValueError(
            f"the KS table has {repeated.height} (layer, neuron, border) keys on more than one row, "
            f"e.g. layer {first['layer']!r}, neuron {first['neuron']}, border {first['border']} "
            f"({first['len']} rows); read each layer's KS table once (one model's tables per folder)"
        )


def label_pan_files(
    ks_files: Sequence[str | Path], out: str | Path, theta: float = DEFAULT_THETA
) -> pl.DataFrame:
    """Label the neurons of one model from its per-layer KS files and write them to ``out``."""
    labels = label_pans(read_ks_tables(ks_files), theta)
    labels.write_parquet(out)
    return labels


def read_labels(path: str | Path) -> pl.DataFrame:
    """The PAN labels of one model, as written by :func:`label_pan_files`."""
    return pl.read_parquet(path)


def pan_strength(ks: pl.DataFrame) -> pl.DataFrame:
    """Per neuron: how far it clears both PAN tests on its best border, and its largest KS.

    ``strength = max_b min(KS_b, max(KS+_b, KS-_b))``: a neuron is a PAN at theta exactly when
    its strength exceeds theta. NaN statistics (maps below 3x3) count as 0.
    """
    ks = ks.with_columns(pl.col("ks", "ks_plus", "ks_minus").fill_nan(0.0))
    return ks.group_by("layer", "layer_index", "neuron").agg(
        strength=pl.min_horizontal("ks", pl.max_horizontal("ks_plus", "ks_minus")).max(),
        max_ks=pl.col("ks").max(),
    )


def theta_sweep(ks: pl.DataFrame, thetas: Sequence[float] = SWEEP_THETAS) -> pl.DataFrame:
    """PANs and edge detectors found at each theta: ``theta, kind, neurons, share`` (KS tables
    only: no model is rerun)."""
    rows = []
    for theta in thetas:
        labels = label_pans(ks, theta)
        for kind, column in (("PANs", "is_pan"), ("edge detectors", "is_edge_detector")):
            found = int(labels[column].sum())
            rows.append(
                {"theta": theta, "kind": kind, "neurons": found, "share": 100 * found / labels.height}
            )
    return pl.DataFrame(rows)
