"""PAN labelling (paper §3.2): thresholds on KS, KS+ and KS-, and the 15 PAN types.

For a border, a neuron is an *edge detector* when ``KS > theta``, and a *PAN* when also
``KS+ > theta or KS- > theta``. Its PAN type lists the borders it is a PAN for, in T, B, L,
R order: one of the 15 non-empty combinations, or ``""`` for a neuron that is no PAN.

Two rules (:data:`RULES`) differ only in the truncated centre of KS+ and KS-: ``paper`` (the
reproduction: the top/bottom ``k`` centre values, ``k`` = border size, a share of the centre
that grows as maps shrink) and ``share`` (the top/bottom share ``q`` of the centre at every map
size: columns ``ks_plus_q, ks_minus_q``, see :mod:`pan.core.ks`). Labels hold the paper rule's
columns under their plain names and the share rule's with a ``_share`` suffix;
:func:`rule_view` gives either under the plain names.

Each rule's *strength* of a neuron on a border is ``min(KS, max(KS+, KS-))``: the neuron is a
PAN there at theta exactly when it exceeds theta. Where the KS tables carry image-bootstrap
intervals of it (:mod:`pan.core.bootstrap`), each label is ``confident`` (the interval lies on the
label's side of theta) or ``borderline`` (it does not).

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


RULES: tuple[str, ...] = ("paper", "share")
"""The PAN rules: ``paper`` (the reproduction) and ``share`` (a fixed share ``q`` of the centre)."""

_SUFFIX = {"paper": "", "share": "_share"}
_RULE_COLUMNS = ("pan_T", "pan_B", "pan_L", "pan_R", "is_pan", "pan_type", "strength")
_RULE_COLUMNS += ("strength_lo", "strength_hi", "confidence")


def check_rule(rule: str) -> str:
    """``rule`` must be one of :data:`RULES`."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; use one of {list(RULES)}")
    return rule


def strength_expr(rule: str = "paper") -> pl.Expr:
    """A rule's strength ``min(KS, max(KS+, KS-))`` per row of a KS table (NaN counts as 0)."""
    plus, minus = ("ks_plus", "ks_minus") if check_rule(rule) == "paper" else ("ks_plus_q", "ks_minus_q")
    ks = [pl.col(c).fill_nan(0.0) for c in ("ks", plus, minus)]
    return pl.min_horizontal(ks[0], pl.max_horizontal(ks[1], ks[2]))


def rule_expr(rule: str, theta: float) -> pl.Expr:
    """The PAN rule ``rule`` at ``theta`` on a KS table's columns (see :func:`pan_rule`)."""
    if check_rule(rule) == "paper":
        return pan_rule(theta)
    truncated = (pl.col("ks_plus_q").fill_nan(0.0) > theta) | (pl.col("ks_minus_q").fill_nan(0.0) > theta)
    return edge_rule(theta) & truncated


def rule_view(labels: pl.DataFrame, rule: str) -> pl.DataFrame:
    """``labels`` with ``rule``'s columns under the plain names (``is_pan``, ``pan_type``, ...),
    the other rule's columns dropped: what every table reads for one rule."""
    own = _SUFFIX[check_rule(rule)]
    others = {f"{c}{s}" for r, s in _SUFFIX.items() if r != rule for c in _RULE_COLUMNS}
    view = labels.drop([c for c in labels.columns if c in others])
    if not own:
        return view
    return view.rename({f"{c}{own}": c for c in _RULE_COLUMNS if f"{c}{own}" in view.columns})


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
    ``is_edge_detector, is_pan, pan_type, theta``, the paper rule's ``strength`` (the largest
    over the borders), ``strength_lo, strength_hi`` (its bootstrap interval) and ``confidence``
    (``confident``/``borderline``; null without intervals), the same for the share rule with a
    ``_share`` suffix (when the table has its statistics; :func:`rule_view`), and
    ``layer_padding`` (what the layer's conv pads with; a PAN in a layer that does not pad with
    zeros can only be downstream). NaN statistics (maps below 3x3) never pass.

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
    rules = [r for r in RULES if r == "paper" or "ks_plus_q" in ks.columns]
    scored = ks.with_columns(edge=edge_rule(theta), pan=pan_rule(theta))
    if "share" in rules:
        scored = scored.with_columns(pan_share=rule_expr("share", theta))
    for rule in rules:
        scored = scored.with_columns(strength_expr(rule).alias(f"strength{_SUFFIX[rule]}"))
    if "layer_padding" not in scored.columns:  # KS tables scored without it: zero padding
        scored = scored.with_columns(layer_padding=pl.lit("zeros"))
    index = ["layer", "layer_index", "neuron", "layer_padding"]
    wide = scored.pivot(
        on="border", index=index, values=["ks", "edge", *[f"pan{_SUFFIX[r]}" for r in rules]], separator="_"
    )
    missing = [b for b in BORDERS if f"pan_{b}" not in wide.columns]
    if missing:
        raise ValueError(f"KS table lacks borders {missing}")
    wide = wide.join(_neuron_strengths(scored, rules), on=["layer_index", "neuron"], how="left")
    for rule in rules:  # pivot names the share rule's columns pan_share_T: make them pan_T_share
        if _SUFFIX[rule]:
            wide = wide.rename({f"pan{_SUFFIX[rule]}_{b}": f"pan_{b}{_SUFFIX[rule]}" for b in BORDERS})
    rule_columns = []
    for rule in rules:
        x = _SUFFIX[rule]
        pan_type = pl.concat_str(
            [pl.when(pl.col(f"pan_{b}{x}")).then(pl.lit(b)).otherwise(pl.lit("")) for b in BORDERS]
        )
        is_pan = pl.any_horizontal(*[f"pan_{b}{x}" for b in BORDERS])
        lo, hi = pl.col(f"strength_lo{x}"), pl.col(f"strength_hi{x}")
        sure = pl.when(is_pan).then(lo > theta).otherwise(hi <= theta)
        confidence = (
            pl.when(lo.is_nan() | lo.is_null())
            .then(pl.lit(None, pl.String))
            .when(sure)
            .then(pl.lit("confident"))
        )
        rule_columns += [
            *[pl.col(f"pan_{b}{x}") for b in BORDERS],
            is_pan.alias(f"is_pan{x}"),
            pan_type.alias(f"pan_type{x}"),
            pl.col(f"strength{x}"),
            lo,
            hi,
            confidence.otherwise(pl.lit("borderline")).alias(f"confidence{x}"),
        ]
    paper, share = rule_columns[:10], rule_columns[10:]
    return wide.select(
        "layer",
        "layer_index",
        "neuron",
        *[pl.col(f"ks_{b}") for b in BORDERS],
        *[pl.col(f"edge_{b}") for b in BORDERS],
        *paper[:4],
        pl.any_horizontal(*[f"edge_{b}" for b in BORDERS]).alias("is_edge_detector"),
        *paper[4:6],
        pl.lit(theta).alias("theta"),
        *paper[6:],
        *share,
        "layer_padding",
    ).sort("layer_index", "neuron")


def _neuron_strengths(scored: pl.DataFrame, rules: Sequence[str]) -> pl.DataFrame:
    """Per neuron and rule: the largest strength over the borders and its interval (the KS
    table's ``neuron_strength_lo/hi`` columns; NaN without them)."""
    columns = []
    for rule in rules:
        x, q = _SUFFIX[rule], "" if rule == "paper" else "_q"
        columns.append(pl.col(f"strength{x}").max())
        for end in ("lo", "hi"):
            source = f"neuron_strength{q}_{end}"
            value = pl.col(source).first() if source in scored.columns else pl.lit(float("nan"))
            columns.append(value.cast(pl.Float64).alias(f"strength_{end}{x}"))
    return scored.group_by("layer_index", "neuron").agg(columns)


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
