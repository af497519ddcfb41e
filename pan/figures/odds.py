"""Class log-odds of the padding variants against the original model: the paper's Figs. 9 and 10.

Reads ``results/tables/odds_{model}.csv`` (:func:`pan.bias.odds.read_odds`): one row per class
with ``odds_<variant>`` and natural ``log_odds_<variant>`` for PAN-reflect, RAND-reflect and
reflect. A log-odds of ±0.05 is about a 5% change of the odds.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import numpy as np
import polars as pl

from pan.bias.odds import read_odds
from pan.figures.render import save_chart

__all__ = [
    "BINS",
    "FIVE_PERCENT",
    "VARIANT_COLOURS",
    "VARIANT_NAMES",
    "log_odds_histogram",
    "log_odds_histogram_chart",
    "long_log_odds",
    "ordered_log_odds_chart",
    "write_log_odds_histogram",
    "write_ordered_log_odds",
]

VARIANT_NAMES = {"pan_reflect": "PAN-reflect", "rand_reflect": "RAND-reflect", "reflect": "reflect"}
VARIANT_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c"]  # as the paper: PAN-reflect blue, RAND-reflect orange
FIVE_PERCENT = 0.05
BINS = 50


def long_log_odds(odds: pl.DataFrame) -> pl.DataFrame:
    """``class_index, class_name, variant, log_odds`` with each variant's classes ranked by log-odds."""
    frames = [
        odds.select("class_index", "class_name", pl.col(f"log_odds_{variant}").alias("log_odds"))
        .with_columns(variant=pl.lit(name))
        .sort("log_odds", descending=True)
        .with_columns(rank=pl.int_range(1, odds.height + 1))
        for variant, name in VARIANT_NAMES.items()
    ]
    return pl.concat(frames).filter(pl.col("log_odds").is_finite())


def _variant_colour(legend: bool = True) -> alt.Color:
    names = list(VARIANT_NAMES.values())
    return alt.Color(
        "variant:N",
        title=None,
        sort=names,
        scale=alt.Scale(domain=names, range=VARIANT_COLOURS),
        legend=alt.Legend(orient="top") if legend else None,
    )


def ordered_log_odds_chart(odds: pl.DataFrame, model: str) -> alt.LayerChart:
    """Fig. 9: every variant's classes sorted by log-odds, with the ±5% band marked."""
    rows = long_log_odds(odds)
    band = pl.DataFrame({"y": [-FIVE_PERCENT, FIVE_PERCENT]})
    lines = (
        alt.Chart(rows)
        .mark_line(strokeWidth=2)
        .encode(
            x=alt.X("rank:Q", title="classes, ordered by log-odds", scale=alt.Scale(domain=[1, odds.height])),
            y=alt.Y(
                "log_odds:Q",
                title="log-odds w.r.t. the original model",
                scale=alt.Scale(type="symlog", constant=FIVE_PERCENT),
            ),
            color=_variant_colour(),
            tooltip=["variant:N", "class_name:N", "class_index:Q", alt.Tooltip("log_odds:Q", format=".4f")],
        )
    )
    rules = alt.Chart(band).mark_rule(strokeDash=[4, 4], color="#777").encode(y="y:Q")
    return alt.layer(rules, lines).properties(
        width=620,
        height=320,
        title=alt.Title(
            f"Ordered change in class log-odds · {model}",
            subtitle=f"{odds.height} classes; dashed: ±0.05 log-odds (about 5% odds); symmetric-log axis",
        ),
    )


def log_odds_histogram(odds: pl.DataFrame) -> pl.DataFrame:
    """Class counts per variant, each on its own ``BINS`` linear bins: ``variant, start, end, classes``.

    Variants differ in spread by orders of magnitude (reflect moves every class, RAND-reflect
    almost none), so shared bins would flatten all but the widest; linear bins keep the shape
    honest (log-spaced bins would fake a second mode).
    """
    rows = long_log_odds(odds)
    frames = []
    for name in VARIANT_NAMES.values():
        values = rows.filter(pl.col("variant") == name)["log_odds"].to_numpy()
        low, high = float(values.min()), float(values.max())
        if high - low < 1e-12:
            low, high = low - FIVE_PERCENT, high + FIVE_PERCENT
        counts, edges = np.histogram(values, BINS, range=(low, high))
        frames.append(
            pl.DataFrame({"variant": name, "start": edges[:-1], "end": edges[1:], "classes": counts})
        )
    return pl.concat(frames)


def log_odds_histogram_chart(odds: pl.DataFrame, model: str) -> alt.VConcatChart:
    """Fig. 10: histograms of the class log-odds of each variant, ±0.05 dashed for scale."""
    rows = log_odds_histogram(odds)
    panels = []
    for name in VARIANT_NAMES.values():
        bars = (
            alt.Chart(rows.filter(pl.col("variant") == name))
            .mark_bar(binSpacing=0)
            .encode(
                x=alt.X("start:Q", bin="binned", title=f"log-odds of {name} w.r.t. the original model"),
                x2="end:Q",
                y=alt.Y("classes:Q", title="classes"),
                color=_variant_colour(legend=False),
                tooltip=[
                    "variant:N",
                    alt.Tooltip("start:Q", format=".4f"),
                    alt.Tooltip("end:Q", format=".4f"),
                    "classes:Q",
                ],
            )
        )
        rules = (
            alt.Chart(pl.DataFrame({"x": [-FIVE_PERCENT, FIVE_PERCENT]}))
            .mark_rule(strokeDash=[4, 4], color="#777")
            .encode(x="x:Q")
        )
        panels.append(alt.layer(bars, rules).properties(width=620, height=120, title=name))
    return alt.vconcat(
        *panels,
        title=alt.Title(
            f"Class histogram of log-odds · {model}",
            subtitle=f"{odds.height} classes, {BINS} bins per variant, each on its own axis; dashed: ±0.05",
        ),
    )


def write_ordered_log_odds(odds: str | Path, model: str, html: str | Path, png: str | Path) -> None:
    """Render Fig. 9 of one model from its odds table."""
    save_chart(_or_dense_note(ordered_log_odds_chart, read_odds(odds, allow_empty=True), model), html, png)


def write_log_odds_histogram(odds: str | Path, model: str, html: str | Path, png: str | Path) -> None:
    """Render Fig. 10 of one model from its odds table."""
    save_chart(_or_dense_note(log_odds_histogram_chart, read_odds(odds, allow_empty=True), model), html, png)


def _or_dense_note(chart, odds: pl.DataFrame, model: str) -> alt.TopLevelMixin:
    """``chart(odds, model)``, or a note for a model with a dense output (an empty odds table:
    no classes; :mod:`pan.bias.outputs` measures what changes)."""
    if odds.height:
        return chart(odds, model)
    note = pl.DataFrame({"text": [f"{model}: a dense output has no classes, so no odds (see output_change)"]})
    return alt.Chart(note).mark_text(size=14).encode(text="text:N").properties(width=420, height=60)
