"""PAN cards (paper Figs. 6-8, with the kernel of Fig. 1): one neuron under zero and reflect padding.

A card stacks three rows:

1. the neuron's border, centre and truncated-centre histograms on the §3 batch as trained
   (zero padding), the legend giving KS, KS+ and KS- of each border;
2. the same under the paper's *reflect* model, where every analysed convolution pads with
   reflect (:func:`pan.padding.with_reflect_padding` with no channel selection). §3.3
   replaces the padding *policy* of the model, and Fig. 8's downstream PAN only "turns off"
   when the padding of the layers before it changes too, so the neuron's own padding alone
   would not do;
3. two input crops with the neuron's zero-padding activation heatmaps, and its kernel.

The only torch module of :mod:`pan.figures`: it loads the model and runs the reflect variant.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path

import altair as alt
import numpy as np
import polars as pl
import torch
from PIL import Image

from ..activations import pick_device, preprocessed_batches, recording
from ..dumps import read_manifest
from ..images import ImageRecord, ImageSpec, image_records
from ..layers import AnalysedLayer
from ..logs import image_progress
from ..models import LoadedModel, ModelSpec, load_model
from ..padding import with_reflect_padding
from .distributions import RegionSamples, neuron_maps, region_histogram, shared_edges
from .render import save_chart
from .selection import slot_neuron

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


class _LayerReached(Exception):
    """Raised by the hook once the layer has run: the rest of the forward pass is not needed."""


def reflect_maps(
    loaded: LoadedModel,
    records: Sequence[ImageRecord],
    layer: str,
    neuron: int,
    micro_batch: int = 16,
    device: str = "auto",
    progress=None,
) -> np.ndarray:
    """Maps ``(images, H, W)`` of ``neuron`` in the model where every analysed conv pads with reflect.

    Progress goes to ``progress``, by default the ``sys.stderr`` of the moment (a job's log).
    """
    target = pick_device(device)
    variant = with_reflect_padding(loaded.model).to(target).eval()
    captured: list[np.ndarray] = []

    def keep_and_stop(_: AnalysedLayer, maps: torch.Tensor) -> None:
        captured.append(maps[:, neuron].float().cpu().numpy())
        raise _LayerReached

    bar = image_progress(len(records), f"reflect {layer}", progress)
    watched = AnalysedLayer(0, layer, variant.get_submodule(layer))
    with torch.inference_mode(), recording([watched], keep_and_stop):
        for batch in preprocessed_batches(records, loaded, micro_batch):
            try:
                variant(batch.to(target))
            except _LayerReached:
                pass
            bar.update(len(batch))
    bar.close()
    return np.concatenate(captured)


def kernel_weights(model: torch.nn.Module, layer: str, neuron: int) -> np.ndarray:
    """The kernel of output channel ``neuron`` of conv ``layer``: ``(input channels, kh, kw)``."""
    return model.get_submodule(layer).weight[neuron].detach().float().cpu().numpy()


def input_crop(loaded: LoadedModel, record: ImageRecord) -> np.ndarray:
    """The model's input for ``record`` as ``uint8`` RGB ``(H, W, 3)``, each channel stretched to 0-255."""
    tensor = loaded.transform(record.load()).float()
    low = tensor.amin(dim=(1, 2), keepdim=True)
    high = tensor.amax(dim=(1, 2), keepdim=True)
    scaled = (tensor - low) / (high - low).clamp_min(1e-12)
    return (scaled.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


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


def write_card(
    model: ModelSpec,
    images: ImageSpec,
    dump_dir: str | Path,
    slot: str,
    selection: str | Path | None,
    heatmap_images: Sequence[int],
    html: str | Path,
    png: str | Path,
    micro_batch: int = 16,
    device: str = "auto",
) -> None:
    """Render the PAN card of the neuron of ``slot`` of ``model`` (reruns the model with reflect padding)."""
    found = neuron_maps(dump_dir, slot_neuron(slot, selection))
    records = image_records(images)
    dumped = [entry["id"] for entry in read_manifest(dump_dir)["images"]]
    if dumped != [r.id for r in records]:
        raise ValueError(
            f"the images of {dump_dir} are not those of the images: config; rerun its activations"
        )
    wrong = [i for i in heatmap_images if not 0 <= i < len(records)]
    if wrong:
        raise ValueError(f"figures.heatmap_images {wrong} are outside the batch of {len(records)} images")
    loaded = load_model(model)
    layer, neuron = found.neuron.layer, found.neuron.neuron
    reflected = reflect_maps(loaded, records, layer, neuron, micro_batch, device)
    heatmaps = [(records[i].id, input_crop(loaded, records[i]), found.maps[i]) for i in heatmap_images]
    chart = card_chart(
        RegionSamples.from_maps(found.maps),
        RegionSamples.from_maps(reflected),
        heatmaps,
        kernel_weights(loaded.model, layer, neuron),
        found.title(model.name, "PAN card"),
    )
    save_chart(chart, html, png)
