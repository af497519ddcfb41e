"""PAN cards (paper Figs. 6-8, with the kernel of Fig. 1): one neuron under zero and reflect padding.

A card stacks three rows, from a :class:`pan.beyond.neurons.NeuronCard`:

1. the neuron's border, centre and truncated-centre histograms on the §3 batch as trained
   (zero padding), the legend giving KS, KS+ and KS- of each border;
2. the same when every analysed convolution pads with reflect;
3. two input crops with the neuron's zero-padding activation heatmaps, and its kernel.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path

import altair as alt
import numpy as np
import polars as pl
from PIL import Image

from pan.beyond.neurons import NeuronCard, RegionSamples
from pan.figures.distributions import neuron_title, region_histogram, shared_edges
from pan.figures.render import save_chart

__all__ = [
    "KERNEL_CHANNELS",
    "PANEL",
    "VIRIDIS",
    "card_chart",
    "heatmap_panel",
    "image_panel",
    "kernel_panel",
    "viridis",
    "write_card",
]

PANEL = 190
"""Side (chart units) of the image, heatmap and kernel panels."""

KERNEL_CHANNELS = 4
"""Input channels of the kernel shown: those with the largest weights (all of them if fewer)."""

VIRIDIS = (
    "#440154",
    "#482878",
    "#3e4989",
    "#31688e",
    "#26828e",
    "#1f9e89",
    "#35b779",
    "#6ece58",
    "#b5de2b",
    "#fde725",
)
"""Ten evenly spaced colours of viridis, to colour feature maps as Vega colours their legend."""


def image_panel(pixels: np.ndarray, title: str, smooth: bool = True) -> alt.Chart:
    """An RGB image embedded as a PNG data URL; ``smooth=False`` keeps map pixels crisp."""
    resample = Image.Resampling.BILINEAR if smooth else Image.Resampling.NEAREST
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((2 * PANEL, 2 * PANEL), resample).save(buffer, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    return (
        alt.Chart(pl.DataFrame({"url": [url]}))
        .mark_image(width=PANEL, height=PANEL)
        .encode(url="url:N", x=alt.value(PANEL / 2), y=alt.value(PANEL / 2))
        .properties(width=PANEL, height=PANEL, title=title)
    )


def viridis(values: np.ndarray, domain: tuple[float, float]) -> np.ndarray:
    """``uint8`` RGB of ``values`` on the viridis scale over ``domain`` (the scheme of the legend)."""
    low, high = domain
    position = np.clip((values - low) / max(high - low, 1e-12), 0, 1)
    stops = np.array([[int(h[i : i + 2], 16) for i in (1, 3, 5)] for h in VIRIDIS], dtype=float)
    anchors = np.linspace(0, 1, len(VIRIDIS))
    rgb = [np.interp(position, anchors, stops[:, channel]) for channel in range(3)]
    return np.stack(rgb, axis=-1).round().astype(np.uint8)


def heatmap_panel(values: np.ndarray, title: str, domain: tuple[float, float]) -> alt.LayerChart:
    """A feature map as a crisp image (maps reach 130x130: too many cells for rect marks), with a legend."""
    legend = (
        alt.Chart(pl.DataFrame({"value": list(domain)}))
        .mark_point(opacity=0)
        .encode(
            color=alt.Color(
                "value:Q", title="activation", scale=alt.Scale(scheme="viridis", domain=list(domain))
            )
        )
    )
    return alt.layer(image_panel(viridis(values, domain), title, smooth=False), legend)


def _grid_rows(values: np.ndarray, **columns) -> pl.DataFrame:
    """``row, col, value`` rows of a 2-D array, with constant ``columns`` added."""
    rows, cols = np.indices(values.shape)
    frame = pl.DataFrame({"row": rows.ravel(), "col": cols.ravel(), "value": values.ravel().astype(float)})
    return frame.with_columns(**{name: pl.lit(value) for name, value in columns.items()})


def kernel_panel(weights: np.ndarray) -> alt.FacetChart:
    """The kernel as heatmaps, one per input channel (the strongest ``KERNEL_CHANNELS`` of them)."""
    norms = np.sqrt((weights**2).sum(axis=(1, 2)))
    channels = sorted(np.argsort(-norms, kind="stable")[:KERNEL_CHANNELS].tolist())
    kind = "depthwise" if weights.shape[0] == 1 else f"{weights.shape[0]} input channels"
    rows = pl.concat([_grid_rows(weights[c], channel=f"input channel {c}") for c in channels])
    limit = float(np.abs(weights).max()) or 1.0
    size = PANEL if len(channels) == 1 else PANEL // 2
    base = alt.Chart(rows).encode(x=alt.X("col:O", axis=None), y=alt.Y("row:O", axis=None))
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color(
            "value:Q", title="weight", scale=alt.Scale(scheme="purpleorange", domain=[-limit, limit])
        ),
        tooltip=["row:O", "col:O", alt.Tooltip("value:Q", format=".4f")],
    )
    layers = [cells]
    if weights.shape[1] * weights.shape[2] <= 25:  # numbers stay legible up to 5x5
        layers.append(base.mark_text(fontSize=9).encode(text=alt.Text("value:Q", format=".2f")))
    return (
        alt.layer(*layers)
        .properties(width=size, height=size)
        .facet(facet=alt.Facet("channel:N", title=None, sort=None), columns=2)
        .properties(title=f"kernel ({kind}, {weights.shape[1]}x{weights.shape[2]})")
    )


def card_chart(
    zero: RegionSamples,
    reflect: RegionSamples,
    heatmaps: Sequence[tuple[str, np.ndarray, np.ndarray]],
    kernel: np.ndarray,
    title: alt.Title,
) -> alt.VConcatChart:
    """The three rows of a PAN card; ``heatmaps`` holds ``(image id, RGB crop, map)`` per image."""
    edges = shared_edges(zero, reflect)  # one activation axis, so both rows compare directly
    shown = np.stack([m for _, _, m in heatmaps])
    domain = (float(shown.min()), float(shown.max()))
    pictures = []
    for image_id, crop, maps in heatmaps:
        pictures += [
            image_panel(crop, f"input {image_id}"),
            heatmap_panel(maps, "activation, zero padding", domain),
        ]
    return alt.vconcat(
        region_histogram(zero, edges, "zero padding (as trained)"),
        region_histogram(reflect, edges, "reflect padding in every analysed convolution"),
        alt.hconcat(alt.hconcat(*pictures).resolve_scale(color="shared"), kernel_panel(kernel)).resolve_scale(
            color="independent"
        ),
        title=title,
    ).resolve_scale(color="independent")


def write_card(card: NeuronCard, model: str, html: str | Path, png: str | Path) -> None:
    """Render the PAN card of a neuron (data from :func:`pan.beyond.neurons.neuron_card`)."""
    heatmaps = [(h.image_id, h.crop, h.maps) for h in card.heatmaps]
    title = neuron_title(card.found, model, "PAN card")
    save_chart(card_chart(card.zero, card.reflect, heatmaps, card.kernel, title), html, png)
