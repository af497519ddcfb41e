"""Figures beyond the paper: padding reach by depth, and one PAN under the zero-line attack.

Charts only: the numbers come from :mod:`pan.beyond.reach` and :mod:`pan.beyond.attack`.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import numpy as np
import polars as pl

from pan.beyond.firing import InjectedMaps
from pan.beyond.reach import reach_by_depth
from pan.figures.cards import heatmap_panel
from pan.figures.render import save_chart

__all__ = [
    "DISTANCE_COLOURS",
    "injection_chart",
    "reach_depth_chart",
    "write_injection_maps",
    "write_reach_depth",
]

DISTANCE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def reach_depth_chart(by_depth: pl.DataFrame, model: str, theta: float) -> alt.Chart:
    """Neurons padding-aware at each distance from the border, per layer in depth order
    (``by_depth``: :func:`pan.beyond.reach.reach_by_depth`); hatched: not aware at distance 0."""
    rows = (
        by_depth.drop("neurons")
        .with_columns(distance=pl.format("d = {}", "distance"), old=pl.col("aware") - pl.col("new"))
        .unpivot(
            index=["layer", "layer_index", "distance"],
            on=["old", "new"],
            variable_name="at_0",
            value_name="neurons",
        )
    )
    rows = rows.with_columns(
        at_0=pl.col("at_0").replace_strict({"old": "also at d = 0", "new": "not at d = 0"})
    )
    distances = sorted(rows["distance"].unique().to_list())
    return (
        alt.Chart(rows)
        .mark_bar()
        .encode(
            x=alt.X("layer_index:O", title="layer (depth order)"),
            xOffset=alt.XOffset("distance:N", sort=distances),
            y=alt.Y("neurons:Q", title="padding-aware neurons", stack=True),
            color=alt.Color(
                "distance:N",
                title="distance from the border",
                sort=distances,
                scale=alt.Scale(domain=distances, range=list(DISTANCE_COLOURS[: len(distances)])),
            ),
            opacity=alt.Opacity(
                "at_0:N",
                title=None,
                scale=alt.Scale(domain=["also at d = 0", "not at d = 0"], range=[1.0, 0.45]),
            ),
            tooltip=["layer:N", "layer_index:O", "distance:N", "at_0:N", "neurons:Q"],
        )
        .properties(
            width=max(300, 36 * by_depth["layer_index"].n_unique()),
            height=260,
            title=alt.Title(
                f"{model}: padding reach by depth",
                subtitle=f"neurons passing the PAN rule (θ = {theta}) on row/column d of some border "
                "against the inner centre; pale: not at d = 0",
            ),
        )
    )


def write_reach_depth(
    reach_file: str | Path, model: str, theta: float, html: str | Path, png: str | Path
) -> None:
    """Render the reach figure of one model from its reach statistics at ``theta``."""
    by_depth = reach_by_depth(pl.read_parquet(reach_file), theta)
    save_chart(reach_depth_chart(by_depth, model, theta), html, png)


def injection_chart(maps: InjectedMaps, model: str) -> alt.HConcatChart:
    """One PAN's map on one image: clean, then with each kind of line (shared colour scale)."""
    values = np.stack(list(maps.maps.values()))
    domain = (float(values.min()), float(values.max()))
    what = "row" if maps.orientation == "rows" else "column"
    panels = [
        heatmap_panel(m, "clean" if name == "clean" else f"{name} line", domain)
        for name, m in maps.maps.items()
    ]
    return (
        alt.hconcat(*panels)
        .resolve_scale(color="shared")
        .properties(
            title=alt.Title(
                f"{model}, {maps.layer}, neuron {maps.neuron} ({maps.pan_type} PAN) on {maps.image_id}",
                subtitle=f"line at input {what} {maps.line}, map {what} {maps.map_line}",
            )
        )
    )


def write_injection_maps(maps: InjectedMaps, model: str, html: str | Path, png: str | Path) -> None:
    """Render the injection figure (data from :func:`pan.beyond.firing.injected_maps`)."""
    save_chart(injection_chart(maps, model), html, png)
