"""Figures beyond the paper: padding reach by depth, one PAN under the zero-line attack, the
origin 2x2 and the flip control.

Charts only: the numbers come from :mod:`pan.beyond.reach`, :mod:`pan.beyond.attack`,
:mod:`pan.beyond.origin` and :mod:`pan.beyond.flip`.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import numpy as np
import polars as pl

from pan.beyond.firing_pans import InjectedMaps
from pan.beyond.reach import reach_by_depth
from pan.figures.cards import heatmap_panel
from pan.figures.render import save_chart

__all__ = [
    "flip_chart",
    "origin_chart",
    "write_flip_figure",
    "write_origin_figure",
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
    """Render the injection figure (data from :func:`pan.beyond.firing_pans.injected_maps`)."""
    save_chart(injection_chart(maps, model), html, png)


def _interval_scatter(
    rows: pl.DataFrame,
    x: tuple[str, str],
    y: tuple[str, str],
    colour: str,
    domain: list[str],
    at: float,
    span: tuple[float, float] = (0.0, 1.0),
) -> alt.LayerChart:
    """Points at ``(x, y)`` with their intervals (columns ``{x}_lo``...) as error bars, coloured by
    ``colour``, and dashed lines at ``at`` on both axes (which run over ``span``)."""
    (xc, xtitle), (yc, ytitle) = x, y
    scale = alt.Scale(domain=list(span))
    palette = alt.Scale(domain=domain, range=list(DISTANCE_COLOURS[: len(domain)]))
    base = alt.Chart(rows)
    tooltip = ["layer:N", "neuron:Q", "pan_type:N", "border:N", f"{colour}:N", f"{xc}:Q", f"{yc}:Q"]
    points = base.mark_point(filled=True, size=40, opacity=0.8).encode(
        x=alt.X(f"{xc}:Q", title=xtitle, scale=scale),
        y=alt.Y(f"{yc}:Q", title=ytitle, scale=scale),
        color=alt.Color(f"{colour}:N", title=colour.replace("_", " "), scale=palette),
        tooltip=tooltip,
    )
    xbars = base.mark_rule(opacity=0.35).encode(
        x=f"{xc}_lo:Q", x2=f"{xc}_hi:Q", y=f"{yc}:Q", color=alt.Color(f"{colour}:N", scale=palette)
    )
    ybars = base.mark_rule(opacity=0.35).encode(
        y=f"{yc}_lo:Q", y2=f"{yc}_hi:Q", x=f"{xc}:Q", color=alt.Color(f"{colour}:N", scale=palette)
    )
    rule = pl.DataFrame({"theta": [at]})
    vertical = alt.Chart(rule).mark_rule(strokeDash=[4, 4], color="grey").encode(x="theta:Q")
    horizontal = alt.Chart(rule).mark_rule(strokeDash=[4, 4], color="grey").encode(y="theta:Q")
    return alt.layer(xbars, ybars, points, vertical, horizontal).properties(width=340, height=340)


def origin_chart(origin: pl.DataFrame, model: str, theta: float) -> alt.HConcatChart:
    """Each PAN border of :func:`pan.beyond.origin.label_origin`, one panel per rule: its strength
    with upstream padding only (x) against its own padding only (y), 95 % intervals; the
    quadrants cut by theta are the 2x2's categories."""
    from pan.beyond.origin import ORIGINS

    rows = origin.rename(
        {
            "strength_own_reflect": "upstream_only",
            "own_reflect_lo": "upstream_only_lo",
            "own_reflect_hi": "upstream_only_hi",
            "strength_up_reflect": "own_only",
            "up_reflect_lo": "own_only_lo",
            "up_reflect_hi": "own_only_hi",
        }
    )

    def panel(part: pl.DataFrame) -> alt.LayerChart:
        return _interval_scatter(
            part,
            ("upstream_only", "strength, upstream padding only (own conv reflects)"),
            ("own_only", "strength, own padding only (upstream convs reflect)"),
            "border_origin",
            list(ORIGINS),
            theta,
        )

    return _per_rule_panels(rows, panel, theta).properties(
        title=alt.Title(
            f"{model}: where each PAN border's padding comes from",
            subtitle=f"θ = {theta}; top left nascent, bottom right downstream, top right either, "
            "bottom left needs both; no_padding: passes with reflect everywhere",
        )
    )


def write_origin_figure(
    origin_file: str | Path, model: str, theta: float, html: str | Path, png: str | Path
) -> None:
    """Render the origin 2x2 figure of one model from its origin file."""
    save_chart(_or_note(origin_chart, pl.read_parquet(origin_file), model, theta), html, png)


def flip_chart(verdicts: pl.DataFrame, model: str, theta: float) -> alt.HConcatChart:
    """Each PAN border of :func:`pan.beyond.flip.flip_verdicts`, one panel per rule: its gap to
    the mirrored border on the batch (x) against the same gap with the images flipped along its
    axis (y), 95 % intervals. Padding keeps the sign (bottom left, top right), content reverses it."""
    from pan.beyond.flip import VERDICTS

    def panel(part: pl.DataFrame) -> alt.LayerChart:
        return _interval_scatter(
            part,
            ("gap", "strength minus the mirrored border's, on the batch"),
            ("flipped_gap", "the same, images flipped"),
            "border_verdict",
            list(VERDICTS),
            0.0,
            (-1.0, 1.0),
        )

    return _per_rule_panels(verdicts, panel, theta).properties(
        title=alt.Title(
            f"{model}: flip control",
            subtitle=f"PANs at θ = {theta}; same sign after the flip: the response stays at its "
            "border (padding); opposite sign: it moves with the content",
        )
    )


def _per_rule_panels(rows: pl.DataFrame, panel, theta: float) -> alt.HConcatChart:
    """``panel(rows of one rule)`` side by side, one per rule of :data:`pan.core.labelling.RULES`
    (titled with its PAN count; a note where the rule has no PAN), colours shared."""
    from pan.core.labelling import RULES

    panels = []
    for rule in RULES:
        part = rows.filter(pl.col("rule") == rule)
        pans = part.select("layer_index", "neuron").n_unique()
        title = f"{rule} rule: {pans} PANs, {part.height} PAN borders"
        if part.is_empty():
            note = pl.DataFrame({"text": [f"no PAN under the {rule} rule at θ = {theta}"]})
            chart = alt.Chart(note).mark_text(size=14).encode(text="text:N").properties(width=340, height=340)
        else:
            chart = panel(part)
        panels.append(chart.properties(title=title))
    return alt.hconcat(*panels).resolve_scale(color="shared")


def write_flip_figure(
    flip_file: str | Path, model: str, theta: float, html: str | Path, png: str | Path
) -> None:
    """Render the flip control figure of one model from its flip file."""
    save_chart(_or_note(flip_chart, pl.read_parquet(flip_file), model, theta), html, png)


def _or_note(chart, rows: pl.DataFrame, model: str, theta: float) -> alt.TopLevelMixin:
    """``chart(rows, ...)``, or a note saying the model has no PAN at theta."""
    if rows.height:
        return chart(rows, model, theta)
    note = pl.DataFrame({"text": [f"{model}: no PAN at θ = {theta}"]})
    return alt.Chart(note).mark_text(size=14).encode(text="text:N").properties(width=340, height=60)
