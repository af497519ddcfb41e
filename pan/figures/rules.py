"""The two PAN rules side by side: the share of the centre each keeps, and the interior-line
null (:mod:`pan.core.interior`). The numbers come from the KS jobs' outputs; this module draws them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import altair as alt
import polars as pl

from pan.core.labelling import RULES
from pan.core.scoring import read_ks_tables
from pan.figures.render import save_chart

__all__ = ["RULE_COLOURS", "share_kept", "share_kept_chart", "interior_null_chart", "write_rule_figures"]

RULE_COLOURS = {"paper": "#d62728", "share": "#1f77b4"}


def share_kept(ks: Mapping[str, pl.DataFrame], interior: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Per model, layer and rule: the share (%) of the centre that KS+ and KS- compare a top
    border with (``n_border / n_centre`` for the paper rule, ``n_q / n_centre`` for the share
    rule), with the layer's map size from its interior rows."""
    frames = []
    for model, table in ks.items():
        sizes = interior[model].select("layer_index", "height", "width").unique()
        top = table.filter(pl.col("border") == "T").group_by("layer_index").first()
        rows = top.join(sizes, on="layer_index").select(
            "layer_index",
            "height",
            "width",
            paper=100 * pl.col("n_border") / pl.col("n_centre"),
            share=100 * pl.col("n_q") / pl.col("n_centre"),
        )
        frames.append(
            rows.unpivot(index=["layer_index", "height", "width"], on=list(RULES), variable_name="rule")
            .rename({"value": "kept_pct"})
            .with_columns(model=pl.lit(model))
        )
    return pl.concat(frames).sort("model", "layer_index", "rule")


def share_kept_chart(rows: pl.DataFrame) -> alt.Chart:
    """Share of the centre kept against map size, one line per rule and model."""
    return (
        alt.Chart(rows)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "height:Q", title="map height (pixels)", scale=alt.Scale(type="log", nice=False, padding=10)
            ),
            y=alt.Y("kept_pct:Q", title="% of the centre KS+/KS- compare with", scale=alt.Scale(type="log")),
            color=alt.Color(
                "rule:N", scale=alt.Scale(domain=list(RULES), range=[RULE_COLOURS[r] for r in RULES])
            ),
            detail="model:N",
            tooltip=["model:N", "rule:N", "height:Q", "width:Q", alt.Tooltip("kept_pct:Q", format=".2f")],
        )
        .properties(
            width=420,
            height=280,
            title=alt.Title(
                "Share of the centre the truncated tests keep",
                subtitle="paper: the border's size, so a larger share as maps shrink; share: q everywhere",
            ),
        )
    )


def interior_null_chart(table: pl.DataFrame) -> alt.Chart:
    """Interior-line false-positive rate (%, 95 % Wilson interval) per map size and rule,
    beside the share of neurons each rule calls PANs at the real borders, one panel per model."""
    rows = table.with_columns(size=pl.format("{}x{}", "height", "width"))
    order = rows.sort("height")["size"].unique(maintain_order=True).to_list()
    colour = alt.Color("rule:N", scale=alt.Scale(domain=list(RULES), range=[RULE_COLOURS[r] for r in RULES]))
    x = alt.X("size:N", sort=order, title="map size")
    base = alt.Chart(rows).encode(x=x, xOffset=alt.XOffset("rule:N", sort=list(RULES)), color=colour)
    null = base.mark_point(filled=True, size=60).encode(
        y=alt.Y("fp_pct:Q", title="% of the layers' neurons"),
        tooltip=["model:N", "rule:N", "size:N", "neurons:Q", "fp_neurons:Q", "fp_high_pct:Q"],
    )
    bars = base.mark_rule().encode(y="fp_low_pct:Q", y2="fp_high_pct:Q")
    border = base.mark_tick(thickness=2, size=14, opacity=0.5).encode(
        y="border_pan_pct:Q", tooltip=["model:N", "rule:N", "size:N", "border_pans:Q"]
    )
    return (
        alt.layer(bars, null, border)
        .properties(width=260, height=220)
        .facet(column=alt.Column("model:N", title=None))
        .resolve_scale(x="independent")
        .properties(
            title=alt.Title(
                "Interior-line null: neurons a rule calls PAN on lines far from every border",
                subtitle="dots: interior lines (95 % interval); ticks: real borders, same layers",
            )
        )
    )


def write_rule_figures(
    ks_dirs: Mapping[str, str | Path],
    interior_files: Mapping[str, str | Path],
    null_table: str | Path,
    outputs: Mapping[str, str | Path],
) -> None:
    """Render ``share_kept`` and ``interior_null`` (``outputs``: ``{name}_html``, ``{name}_png``)."""
    ks = {model: read_ks_tables(path) for model, path in ks_dirs.items()}
    interior = {model: pl.read_parquet(path) for model, path in interior_files.items()}
    save_chart(
        share_kept_chart(share_kept(ks, interior)), outputs["share_kept_html"], outputs["share_kept_png"]
    )
    save_chart(
        interior_null_chart(pl.read_csv(null_table)),
        outputs["interior_null_html"],
        outputs["interior_null_png"],
    )
