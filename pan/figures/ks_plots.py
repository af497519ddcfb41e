"""Model-wide views of the KS statistics: Fig. 4, PAN counts against theta, PAN share by depth.

:func:`ks_distribution_chart` and :func:`theta_sweep_chart` read the KS tables only, so they
never change with theta; :func:`depth_chart` reads the PAN labels of the configured theta.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import altair as alt
import numpy as np
import polars as pl

from pan.core.borders import BORDER_NAMES, BORDERS
from pan.core.labelling import read_labels, theta_sweep
from pan.core.scoring import read_ks_tables
from pan.figures.render import BORDER_COLOURS, save_chart

__all__ = [
    "KS_BIN",
    "depth_chart",
    "depth_shares",
    "end_layers",
    "ks_distribution_chart",
    "ks_histogram",
    "theta_sweep_chart",
    "write_depth",
    "write_ks_distributions",
    "write_theta_sweep",
]

KS_BIN = 0.025


def end_layers(ks: pl.DataFrame, count: int = 4) -> list[int]:
    """Indices of the first and last ``count`` layers (every layer if there are few)."""
    indices = sorted(ks["layer_index"].unique().to_list())
    return indices if len(indices) <= 2 * count else indices[:count] + indices[-count:]


def ks_histogram(ks: pl.DataFrame, layers: Sequence[int]) -> pl.DataFrame:
    """Counts of KS values per layer, border and bin of width ``KS_BIN`` on [0, 1]."""
    edges = np.linspace(0, 1, round(1 / KS_BIN) + 1)
    frames = []
    for index in layers:
        rows = ks.filter(pl.col("layer_index") == index)
        values = rows["ks"].fill_nan(None).drop_nulls()
        mean = values.mean()
        panel = (
            f"layer {index}: {rows['layer'][0]} · mean KS {mean:.2f}"
            if mean is not None
            else f"layer {index}"
        )
        for border in BORDERS:
            counts, _ = np.histogram(
                rows.filter(pl.col("border") == border)["ks"].drop_nans().to_numpy(), edges
            )
            frames.append(
                pl.DataFrame(
                    {
                        "panel": panel,
                        "border": BORDER_NAMES[border],
                        "ks_start": edges[:-1],
                        "ks_end": edges[1:],
                        "count": counts,
                    }
                )
            )
    return pl.concat(frames)


def ks_distribution_chart(ks: pl.DataFrame, model: str) -> alt.FacetChart:
    """Fig. 4: stacked histograms of KS(border, centre) of the first and last four layers."""
    layers = end_layers(ks)
    rows = ks_histogram(ks, layers)
    names = list(BORDER_NAMES.values())
    return (
        alt.Chart(rows)
        .mark_bar(binSpacing=0)
        .encode(
            x=alt.X("ks_start:Q", bin="binned", title="KS(border, centre)", scale=alt.Scale(domain=[0, 1])),
            x2="ks_end:Q",
            y=alt.Y("count:Q", stack=True, title="values"),
            color=alt.Color(
                "border:N",
                sort=names,
                scale=alt.Scale(domain=names, range=[BORDER_COLOURS[n] for n in names]),
            ),
            order=alt.Order("border_order:Q"),
            tooltip=["panel:N", "border:N", "ks_start:Q", "ks_end:Q", "count:Q"],
        )
        .transform_calculate(border_order=f"indexof({names}, datum.border)")
        .properties(width=250, height=140)
        .facet(
            facet=alt.Facet("panel:N", title=None, sort=rows["panel"].unique(maintain_order=True).to_list()),
            columns=4,
        )
        .resolve_scale(y="independent")
        .properties(
            title=alt.Title(
                f"KS distributions of the first and last layers · {model}",
                subtitle="each neuron adds four values, one per border (top, bottom, left, right)",
            )
        )
    )


def theta_sweep_chart(ks: pl.DataFrame, model: str) -> alt.FacetChart:
    """How many PANs and edge detectors each theta finds (no model is rerun: KS tables only)."""
    rows = theta_sweep(ks)
    neurons = ks.select("layer_index", "neuron").unique().height
    return (
        alt.Chart(rows)
        .mark_line(point=True)
        .encode(
            x=alt.X("theta:Q", title="θ", scale=alt.Scale(domain=[0.1, 0.9])),
            y=alt.Y("neurons:Q", title="neurons found"),
            color=alt.Color("kind:N", legend=None, scale=alt.Scale(range=["#d62728", "#1f77b4"])),
            tooltip=[
                "kind:N",
                "theta:Q",
                "neurons:Q",
                alt.Tooltip("share:Q", format=".2f", title="% of neurons"),
            ],
        )
        .properties(width=300, height=220)
        .facet(column=alt.Column("kind:N", title=None, sort=["PANs", "edge detectors"]))
        .resolve_scale(y="independent")
        .properties(
            title=alt.Title(
                f"PANs and edge detectors against θ · {model}",
                subtitle=f"{neurons} analysed neurons; θ thresholds KS, and KS+ or KS- for PANs",
            )
        )
    )


def depth_shares(labels: pl.DataFrame) -> pl.DataFrame:
    """Per layer and kind (PANs, all edge detectors): count and share of the layer's neurons."""
    per_layer = labels.group_by("layer_index", "layer").agg(
        neurons=pl.len(),
        PANs=pl.col("is_pan").sum(),
        edge_detectors=pl.col("is_edge_detector").sum(),
    )
    return (
        per_layer.unpivot(
            index=["layer_index", "layer", "neurons"],
            on=["PANs", "edge_detectors"],
            variable_name="kind",
            value_name="count",
        )
        .with_columns(
            kind=pl.col("kind").str.replace("_", " "), share=100 * pl.col("count") / pl.col("neurons")
        )
        .sort("layer_index", "kind")
    )


def depth_chart(labels: pl.DataFrame, model: str) -> alt.Chart:
    """PAN and edge-detector share of each layer, in depth order (Table 1 as a picture)."""
    rows = depth_shares(labels)
    theta = labels["theta"][0]
    return (
        alt.Chart(rows)
        .mark_bar()
        .encode(
            x=alt.X("layer_index:O", title="layer (depth order)", axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset("kind:N", sort=["PANs", "edge detectors"]),
            y=alt.Y("share:Q", title="% of the layer's neurons"),
            color=alt.Color(
                "kind:N",
                title=None,
                sort=["PANs", "edge detectors"],
                scale=alt.Scale(range=["#d62728", "#1f77b4"]),
            ),
            tooltip=[
                "layer_index:O",
                "layer:N",
                "kind:N",
                "count:Q",
                "neurons:Q",
                alt.Tooltip("share:Q", format=".2f", title="% of neurons"),
            ],
        )
        .properties(
            width=max(360, 34 * rows["layer_index"].n_unique()),
            height=260,
            title=alt.Title(
                f"PAN share by depth · {model}",
                subtitle=f"θ = {theta:g}; edge detectors include the PANs (hover a bar for the layer)",
            ),
        )
    )


def write_ks_distributions(
    ks_files: Sequence[str | Path], model: str, html: str | Path, png: str | Path
) -> None:
    """Render Fig. 4 of one model from its KS tables."""
    save_chart(ks_distribution_chart(read_ks_tables(ks_files), model), html, png)


def write_theta_sweep(ks_files: Sequence[str | Path], model: str, html: str | Path, png: str | Path) -> None:
    """Render the theta sweep of one model from its KS tables."""
    save_chart(theta_sweep_chart(read_ks_tables(ks_files), model), html, png)


def write_depth(labels: str | Path, model: str, html: str | Path, png: str | Path) -> None:
    """Render the PAN share by depth of one model from its PAN labels."""
    save_chart(depth_chart(read_labels(labels), model), html, png)
