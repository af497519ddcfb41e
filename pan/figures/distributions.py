"""Activation distributions of one neuron by region: the paper's Fig. 3 and Fig. 5.

A neuron's maps over the §3 batch split into the four one-pixel borders and the centre
(:mod:`pan.borders`); the truncated centres ``centre+`` / ``centre-`` keep its ``k`` highest /
lowest values, ``k`` being the number of values of a border (§3.2). Histograms are binned
here in numpy on edges shared by all regions, so charts carry a few hundred rows, never the
raw activations, and the KS statistics come from :func:`pan.ks.border_ks`, the same code as
the pipeline's KS tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import altair as alt
import numpy as np
import polars as pl

from ..borders import BORDER_NAMES, BORDERS, border_samples, centre_samples
from ..dumps import read_feature_maps, read_manifest
from ..ks import border_ks
from .render import BORDER_COLOURS, save_chart
from .selection import SlotNeuron, slot_neuron

BINS = 60
WIDTH = 560
TOP_K, BOTTOM_K = "centre+ (top k)", "centre- (bottom k)"


@dataclass(frozen=True)
class BorderStats:
    """KS, KS+ and KS- of one border against the (full, top-k, bottom-k) centre."""

    ks: float
    ks_plus: float
    ks_minus: float

    def legend(self) -> str:
        return f"KS {self.ks:.2f} · KS+ {self.ks_plus:.2f} · KS- {self.ks_minus:.2f}"


@dataclass(frozen=True)
class RegionSamples:
    """One neuron's activations by region, with the statistics of each border."""

    borders: dict[str, np.ndarray]
    centre: np.ndarray
    stats: dict[str, BorderStats]
    shape: tuple[int, int, int]

    @classmethod
    def from_maps(cls, maps: np.ndarray) -> RegionSamples:
        """Regions of maps ``(images, height, width)``; maps below 3x3 have no centre."""
        if maps.ndim != 3 or min(maps.shape[1:]) < 3:
            raise ValueError(f"need maps (images, H, W) of at least 3x3, got shape {maps.shape}")
        stack = maps[:, None]  # one neuron
        borders = {b: values[0] for b, values in border_samples(stack).items()}
        centre = centre_samples(stack)[0]
        stats = {}
        for b, values in borders.items():
            result = border_ks(values[None], centre[None])
            stats[b] = BorderStats(*(float(x[0]) + 0.0 for x in (result.ks, result.ks_plus, result.ks_minus)))
        return cls(borders, centre, stats, tuple(maps.shape))

    def truncated(self, border: str) -> dict[str, np.ndarray]:
        """``centre+`` and ``centre-``: the ``k`` highest and lowest centre values, ``k`` = border size."""
        k = min(len(self.borders[border]), len(self.centre))
        ordered = np.sort(self.centre)
        return {TOP_K: ordered[-k:], BOTTOM_K: ordered[:k]}

    def all_values(self) -> np.ndarray:
        return np.concatenate([*self.borders.values(), self.centre])


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


@dataclass(frozen=True)
class NeuronMaps:
    """A neuron's maps over the §3 batch, and where they come from."""

    neuron: SlotNeuron
    layer_index: int
    maps: np.ndarray

    def title(self, model: str, what: str) -> alt.Title:
        images, height, width = self.maps.shape
        layer, neuron = self.neuron.layer, self.neuron.neuron
        return alt.Title(
            f"{what} · {model} · {layer} (layer {self.layer_index}) · neuron {neuron}",
            subtitle=[self.neuron.description, f"{images} images of the §3 batch, {height}x{width} maps"],
        )


def neuron_maps(dump_dir: str | Path, neuron: SlotNeuron) -> NeuronMaps:
    """The maps of ``neuron`` from an activation dump, or an error naming what exists."""
    manifest = read_manifest(dump_dir)
    layers = {entry["name"]: entry for entry in manifest["layers"]}
    if neuron.layer not in layers:
        raise ValueError(
            f"layer {neuron.layer!r} is not an analysed layer of model {manifest['model']!r}; "
            f"analysed layers: {list(layers)}"
        )
    entry = layers[neuron.layer]
    if not 0 <= neuron.neuron < entry["out_channels"]:
        raise ValueError(
            f"layer {neuron.layer!r} has neurons 0..{entry['out_channels'] - 1}, not {neuron.neuron}"
        )
    maps = read_feature_maps(Path(dump_dir) / entry["file"], neurons=[neuron.neuron])[:, 0]
    return NeuronMaps(neuron, entry["index"], maps)


def _write_neuron_chart(chart_of, title: str, dump_dir, model, slot, selection, html, png) -> None:
    """Render ``chart_of(samples, title)`` for the neuron of ``slot`` of ``model``."""
    found = neuron_maps(dump_dir, slot_neuron(slot, selection))
    save_chart(chart_of(RegionSamples.from_maps(found.maps), found.title(model, title)), html, png)


def write_activation_pdfs(
    dump_dir: str | Path,
    model: str,
    slot: str,
    selection: str | Path | None,
    html: str | Path,
    png: str | Path,
) -> None:
    """Render Fig. 3 for the neuron of ``slot`` of ``model``."""
    _write_neuron_chart(
        activation_pdf_chart, "Border and centre PDFs", dump_dir, model, slot, selection, html, png
    )


def write_truncated_centre(
    dump_dir: str | Path,
    model: str,
    slot: str,
    selection: str | Path | None,
    html: str | Path,
    png: str | Path,
) -> None:
    """Render Fig. 5 for the neuron of ``slot`` of ``model``."""
    _write_neuron_chart(
        truncated_centre_chart, "Truncated centres", dump_dir, model, slot, selection, html, png
    )
