"""How far to trust the count: PAN share by depth per control, and the stability histogram.

The numbers come from :mod:`pan.trust.controls`; this module only draws them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import altair as alt
import polars as pl

from pan.core.labelling import RULES
from pan.figures.render import save_chart
from pan.trust.controls import CONDITIONS, depth_by_condition
from pan.trust.stability import frequency_counts

__all__ = [
    "CONDITION_COLOURS",
    "controls_depth_chart",
    "stability_chart",
    "write_controls_depth",
    "write_stability_histogram",
]

CONDITION_COLOURS = {"trained": "#d62728", "reflect": "#1f77b4", "random_init": "#7f7f7f"}


def controls_depth_chart(rows: pl.DataFrame, model: str) -> alt.FacetChart:
    """PAN share of each layer, in depth order, one bar per condition, one row of panels per rule
    (rows of :func:`pan.trust.controls.depth_by_condition`)."""
    conditions = [c for c in CONDITIONS if c in set(rows["condition"])]
    rules = [r for r in RULES if r in set(rows["rule"])]
    return (
        alt.Chart(rows)
        .mark_bar()
        .encode(
            x=alt.X("layer_index:O", title="layer (depth order)", axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset("condition:N", sort=conditions),
            y=alt.Y("share:Q", title="% of the layer's neurons that are PANs"),
            color=alt.Color(
                "condition:N",
                sort=conditions,
                scale=alt.Scale(domain=conditions, range=[CONDITION_COLOURS[c] for c in conditions]),
            ),
            tooltip=[
                "rule:N",
                "condition:N",
                "layer_index:O",
                "layer:N",
                "pans:Q",
                "neurons:Q",
                alt.Tooltip("share:Q", format=".2f", title="% PANs"),
            ],
        )
        .properties(width=max(360, 40 * rows["layer_index"].n_unique()), height=220)
        .facet(row=alt.Row("rule:N", sort=rules, title="PAN rule"))
        .properties(
            title=alt.Title(
                f"PAN share by depth under the controls · {model}",
                subtitle="trained: as configured; reflect: reflect padding in every analysed conv; "
                "random_init: same architecture, seeded default initialisation; "
                "paper: the paper's rule; share: a fixed share of the centre",
            ),
        )
    )


def stability_chart(table: pl.DataFrame, model: str, draws: int) -> alt.FacetChart:
    """How many neurons are PANs in 1, 2, ... of the draws (those PANs in none are left out), one
    panel per rule (a ``table`` without a ``rule`` column: the paper rule's)."""
    if "rule" not in table.columns:
        table = table.select(pl.lit("paper").alias("rule"), pl.all())
    rules = [r for r in RULES if r in set(table["rule"])]
    rows = frequency_counts(table).with_columns(
        draws_as_pan=(pl.col("pan_frequency") * draws).round().cast(pl.Int64),
        main=pl.when("pan_in_main_batch").then(pl.lit("yes")).otherwise(pl.lit("no")),
    )
    return (
        alt.Chart(rows)
        .mark_bar()
        .encode(
            x=alt.X(
                "draws_as_pan:O",
                title=f"draws (of {draws}) in which the neuron is a PAN",
                scale=alt.Scale(domain=list(range(1, draws + 1))),
                axis=alt.Axis(labelAngle=0),
            ),
            y=alt.Y("neurons:Q", title="neurons", stack=True),
            color=alt.Color(
                "main:N",
                title="PAN in the main batch",
                sort=["yes", "no"],
                scale=alt.Scale(range=["#d62728", "#bbbbbb"]),
            ),
            tooltip=["rule:N", "draws_as_pan:O", "pan_frequency:Q", "main:N", "neurons:Q"],
        )
        .properties(width=320, height=240)
        .facet(column=alt.Column("rule:N", sort=rules, title="PAN rule"))
        .properties(
            title=alt.Title(
                f"PAN frequency over image draws · {model}",
                subtitle="neurons that are PANs in at least one draw of the §3 batch",
            ),
        )
    )


def write_controls_depth(
    label_files: Mapping[str, str | Path], model: str, html: str | Path, png: str | Path
) -> None:
    """Render the PAN share by depth per condition and rule from each condition's labels
    (condition -> file)."""
    rows = depth_by_condition({c: pl.read_parquet(f) for c, f in label_files.items()})
    save_chart(controls_depth_chart(rows, model), html, png)


def write_stability_histogram(
    stability: str | Path, model: str, draws: int, html: str | Path, png: str | Path
) -> None:
    """Render the PAN-frequency histogram (per rule) of ``results/stability/{model}.parquet``."""
    save_chart(stability_chart(pl.read_parquet(stability), model, draws), html, png)
