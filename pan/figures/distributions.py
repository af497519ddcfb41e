"""Activation distributions of one neuron by region: the paper's Fig. 3 and Fig. 5.

Charts of a neuron's :class:`pan.beyond.neurons.RegionSamples` (borders, centre, truncated centres
and their statistics). Histograms are binned here in numpy on edges shared by all regions, so
charts carry a few hundred rows, never the raw activations.
"""

from __future__ import annotations

from collections.abc import Mapping

import altair as alt
import numpy as np
import polars as pl

from pan.beyond.neurons import BOTTOM_K, TOP_K, NeuronMaps, RegionSamples
from pan.core.borders import BORDER_NAMES, BORDERS
from pan.figures.render import BORDER_COLOURS

__all__ = [
    "BINS",
    "WIDTH",
    "activation_pdf_chart",
    "density_rows",
    "neuron_title",
    "region_histogram",
    "shared_edges",
    "truncated_centre_chart",
]

BINS = 60
WIDTH = 560


def shared_edges(*samples: RegionSamples, bins: int = BINS) -> np.ndarray:
    """Bin edges spanning every value of ``samples`` (one axis for charts to be compared)."""
    values = np.concatenate([s.all_values() for s in samples])
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-12:  # a constant neuron: give its single value some room
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, bins + 1)


def density_rows(series: Mapping[str, np.ndarray], edges: np.ndarray) -> pl.DataFrame:
    """Histogram densities (each series integrates to 1) at bin centres: ``series, value, density``."""
    centres = (edges[:-1] + edges[1:]) / 2
    frames = []
    for name, values in series.items():
        density, _ = np.histogram(values, bins=edges, density=True)
        frames.append(pl.DataFrame({"series": name, "value": centres, "density": density}))
    return pl.concat(frames)


def _pdf_lines(rows: pl.DataFrame, domain: list[str], colours: list[str], legend_title: str) -> alt.Chart:
    """Step lines of densities, one colour per series, in the legend order of ``domain``.

    The square-root axis keeps the tails and the border modes visible beside the centre's peak.
    """
    return (
        alt.Chart(rows)
        .mark_line(interpolate="step", strokeWidth=1.8)
        .encode(
            x=alt.X("value:Q", title="activation"),
            y=alt.Y("density:Q", title="density (square-root axis)", scale=alt.Scale(type="sqrt")),
            color=alt.Color(
                "series:N",
                title=legend_title,
                sort=domain,
                scale=alt.Scale(domain=domain, range=colours),
                legend=alt.Legend(orient="right"),
            ),
            tooltip=[
                "series:N",
                alt.Tooltip("value:Q", format=".3f"),
                alt.Tooltip("density:Q", format=".3g"),
            ],
        )
        .properties(width=WIDTH, height=260)
    )


def activation_pdf_chart(regions: RegionSamples, title: alt.Title) -> alt.Chart:
    """Fig. 3: PDFs of the four borders and the centre; the legend holds each border's KS."""
    labels = {b: f"{BORDER_NAMES[b]} · KS {regions.stats[b].ks:.2f}" for b in BORDERS}
    series = {labels[b]: regions.borders[b] for b in BORDERS} | {"centre": regions.centre}
    rows = density_rows(series, shared_edges(regions))
    colours = [BORDER_COLOURS[BORDER_NAMES[b]] for b in BORDERS] + [BORDER_COLOURS["centre"]]
    return _pdf_lines(rows, list(series), colours, "region · KS vs centre").properties(title=title)


def region_histogram(regions: RegionSamples, edges: np.ndarray, title: str | alt.Title) -> alt.Chart:
    """Borders, centre and truncated centres on one axis (top panel of the PAN cards)."""
    labels = {b: f"{BORDER_NAMES[b]} · {regions.stats[b].legend()}" for b in BORDERS}
    series = {labels[b]: regions.borders[b] for b in BORDERS} | {"centre": regions.centre}
    series |= regions.truncated("T")  # k of the top border; all borders share it on square maps
    colours = [BORDER_COLOURS[name] for name in (*BORDER_NAMES.values(), "centre", "centre+", "centre-")]
    rows = density_rows(series, edges)
    return _pdf_lines(rows, list(series), colours, "region · statistics vs centre").properties(title=title)


def truncated_centre_chart(regions: RegionSamples, title: alt.Title) -> alt.Chart:
    """Fig. 5: per border, the border against the full and the truncated centres, with KS, KS+, KS-."""
    edges = shared_edges(regions)
    frames, panels = [], []
    for b in BORDERS:
        series = {"border": regions.borders[b], "centre": regions.centre} | regions.truncated(b)
        panel = f"{BORDER_NAMES[b]}: {regions.stats[b].legend()}"
        panels.append(panel)
        frames.append(density_rows(series, edges).with_columns(panel=pl.lit(panel)))
    domain = ["border", "centre", TOP_K, BOTTOM_K]
    colours = ["#222222", BORDER_COLOURS["centre"], BORDER_COLOURS["centre+"], BORDER_COLOURS["centre-"]]
    return (
        _pdf_lines(pl.concat(frames), domain, colours, "region")
        .properties(width=330, height=180)
        .facet(facet=alt.Facet("panel:N", title=None, sort=panels), columns=2)
        .resolve_scale(y="independent")
        .properties(title=title)
    )


def neuron_title(found: NeuronMaps, model: str, what: str) -> alt.Title:
    """The title of a neuron's figure: which neuron, why it was drawn, on how many maps."""
    images, height, width = found.maps.shape
    layer, neuron = found.neuron.layer, found.neuron.neuron
    return alt.Title(
        f"{what} · {model} · {layer} (layer {found.layer_index}) · neuron {neuron}",
        subtitle=[found.neuron.description, f"{images} images of the §3 batch, {height}x{width} maps"],
    )
