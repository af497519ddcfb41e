"""Label stability across image draws: how much of a PAN set survives a new batch of images."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from pan.core.labelling import PAN_TYPES, RULES, rule_view

__all__ = [
    "CONFIDENCE",
    "DEFAULT_DRAWS",
    "NEURON",
    "frequency_counts",
    "jaccard",
    "stability",
    "stability_by_rule",
    "stability_summary",
    "t_interval",
    "write_stability",
    "write_stability_table",
]

DEFAULT_DRAWS = 5
"""Seeded draws of the §3 batch for the stability analysis."""


CONFIDENCE = 0.95
"""Coverage of the t-interval of the PAN share over draws."""


NEURON = ["layer_index", "layer", "neuron"]


def stability(draws: Sequence[pl.DataFrame], main: pl.DataFrame) -> pl.DataFrame:
    """One row per neuron: ``layer, layer_index, neuron, pan_frequency`` (fraction of the draws'
    labels in which it is a PAN), ``modal_type`` (its most frequent PAN type over the draws
    where it is one, ties in Table 2's order; ``""`` if never), ``pan_in_main_batch``."""
    stacked = pl.concat(
        [d.select(*NEURON, "is_pan", "pan_type").with_columns(draw=pl.lit(k)) for k, d in enumerate(draws)]
    )
    frequency = stacked.group_by(NEURON).agg(pan_frequency=pl.col("is_pan").sum().cast(pl.Int64) / len(draws))
    order = pl.DataFrame({"pan_type": list(PAN_TYPES), "type_rank": list(range(len(PAN_TYPES)))})
    modal = (
        stacked.filter("is_pan")
        .group_by(*NEURON, "pan_type")
        .agg(times=pl.len())
        .join(order, on="pan_type")
        .sort("times", "type_rank", descending=[True, False])
        .group_by(NEURON, maintain_order=True)
        .first()
        .select(*NEURON, modal_type="pan_type")
    )
    return (
        frequency.join(modal, on=NEURON, how="left")
        .join(main.select(*NEURON, pan_in_main_batch="is_pan"), on=NEURON, how="left")
        .with_columns(pl.col("modal_type").fill_null(""), pl.col("pan_in_main_batch").fill_null(False))
        .select("layer", "layer_index", "neuron", "pan_frequency", "modal_type", "pan_in_main_batch")
        .sort("layer_index", "neuron")
    )


def stability_by_rule(draws: Sequence[pl.DataFrame], main: pl.DataFrame) -> pl.DataFrame:
    """:func:`stability` under each rule (a ``rule`` column first, ``paper`` rows first): both
    rules of :data:`pan.core.labelling.RULES` when every table carries the share rule's
    columns, else ``paper`` only."""
    tables = [*draws, main]
    rules = RULES if all("is_pan_share" in t.columns for t in tables) else RULES[:1]
    return pl.concat(
        [
            stability([rule_view(d, rule) for d in draws], rule_view(main, rule)).select(
                pl.lit(rule).alias("rule"), pl.all()
            )
            for rule in rules
        ]
    )


def jaccard(a: set, b: set) -> float:
    """|a ∩ b| / |a ∪ b|; 1 for two empty sets (they agree)."""
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean and two-sided Student-t interval of the mean of ``values`` (at least two)."""
    from scipy.stats import t

    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t.ppf((1 + confidence) / 2, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def stability_summary(model: str, draws: Sequence[pl.DataFrame]) -> dict[str, Any]:
    """One row of ``results/tables/stability.csv``: ``model, draws``, the PAN share (%) over the
    draws as ``pan_pct_mean`` and its 95 % t-interval ``pan_pct_low``, ``pan_pct_high``,
    ``jaccard_mean`` (mean over pairs of draws of the Jaccard index of their PAN sets),
    ``pans_every_draw`` and ``pans_any_draw``."""
    shares = [100 * float(d["is_pan"].sum()) / d.height for d in draws]
    sets = [set(d.filter("is_pan").select("layer", "neuron").iter_rows()) for d in draws]
    mean, low, high = t_interval(shares)
    pairs = [jaccard(a, b) for a, b in itertools.combinations(sets, 2)]
    return {
        "model": model,
        "draws": len(draws),
        "pan_pct_mean": round(mean, 3),
        "pan_pct_low": round(low, 3),
        "pan_pct_high": round(high, 3),
        "jaccard_mean": round(sum(pairs) / len(pairs), 4),
        "pans_every_draw": len(set.intersection(*sets)),
        "pans_any_draw": len(set.union(*sets)),
    }


def frequency_counts(table: pl.DataFrame) -> pl.DataFrame:
    """Neurons that are PANs in at least one draw, counted per ``pan_frequency`` and by whether
    they are PANs in the main batch: ``pan_frequency, pan_in_main_batch, neurons``, per ``rule``
    first when ``table`` has one (:func:`stability_by_rule`)."""
    keys = ["rule"] if "rule" in table.columns else []
    keys += ["pan_frequency", "pan_in_main_batch"]
    return table.filter(pl.col("pan_frequency") > 0).group_by(keys).agg(neurons=pl.len()).sort(keys)


def write_stability(draw_files: Sequence[str | Path], main: str | Path, out: str | Path) -> pl.DataFrame:
    """Write ``results/stability/{model}.parquet`` (:func:`stability_by_rule`) from the draws'
    labels and the main labels."""
    table = stability_by_rule([pl.read_parquet(f) for f in draw_files], pl.read_parquet(main))
    table.write_parquet(out)
    return table


def write_stability_table(
    models: Sequence[str], draw_files: Sequence[str | Path], out: str | Path
) -> pl.DataFrame:
    """Write ``results/tables/stability.csv`` from the draws' labels, one row per model and rule:
    ``draw_files`` holds each model's draws in turn, the models in the order of ``models``."""
    per_model, rows = len(draw_files) // len(models), []
    for i, model in enumerate(models):
        draws = [pl.read_parquet(f) for f in draw_files[i * per_model : (i + 1) * per_model]]
        for rule in RULES if all("is_pan_share" in d.columns for d in draws) else RULES[:1]:
            rows.append({"rule": rule} | stability_summary(model, [rule_view(d, rule) for d in draws]))
    table = pl.DataFrame(rows).select("model", "rule", pl.exclude("model", "rule"))
    table.write_csv(out)
    return table
