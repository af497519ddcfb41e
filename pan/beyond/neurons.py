"""One neuron up close: its maps, its activations by region with their statistics, and its
maps when the model pads with reflect (the data behind the paper's Figs. 3 and 5-8).

A neuron's maps over the §3 batch split into the four one-pixel borders and the centre
(:mod:`pan.core.borders`); the truncated centres ``centre+`` / ``centre-`` keep its ``k`` highest /
lowest values, ``k`` being the number of values of a border (§3.2). The statistics come from
:func:`pan.core.ks.border_ks`, the same code as the pipeline's KS tables. Torch is imported only by
the functions that run a model (:func:`neuron_card`, :func:`neuron_cards`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pan.core.borders import border_samples, centre_samples
from pan.core.dumps import read_feature_maps, read_manifest
from pan.core.ks import border_ks

if TYPE_CHECKING:
    from pan.beyond.selection import SlotNeuron
    from pan.capture.images import ImageSpec
    from pan.capture.models import ModelSpec

__all__ = [
    "BorderStats",
    "Heatmap",
    "NeuronCard",
    "NeuronMaps",
    "RegionSamples",
    "input_crop",
    "neuron_card",
    "neuron_cards",
    "neuron_maps",
]

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


@dataclass(frozen=True)
class NeuronMaps:
    """A neuron's maps over the §3 batch ``(images, H, W)``, and which neuron it is."""

    neuron: SlotNeuron
    layer_index: int
    maps: np.ndarray


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


@dataclass(frozen=True)
class Heatmap:
    """One input image as the model sees it (``uint8`` RGB) and the neuron's map on it."""

    image_id: str
    crop: np.ndarray
    maps: np.ndarray


@dataclass(frozen=True)
class NeuronCard:
    """Everything a PAN card shows (paper Figs. 6-8, with the kernel of Fig. 1)."""

    found: NeuronMaps
    zero: RegionSamples
    """Regions as trained, with zero padding."""
    reflect: RegionSamples
    """Regions when every analysed convolution pads with reflect."""
    heatmaps: tuple[Heatmap, ...]
    kernel: np.ndarray
    """``(input channels, kh, kw)`` weights of the neuron."""


def neuron_card(
    model: ModelSpec,
    images: ImageSpec,
    dump_dir: str | Path,
    neuron: SlotNeuron,
    heatmap_images: Sequence[int],
    micro_batch: int,
    device: str = "auto",
    progress=None,
) -> NeuronCard:
    """The data of ``neuron``'s PAN card: its maps from the dump, and the model rerun with
    reflect padding in every analysed conv.

    §3.3 replaces the padding *policy* of the model, and Fig. 8's downstream PAN only "turns
    off" when the padding of the layers before it changes too, so the neuron's own padding
    alone would not do. Progress goes to ``progress``, by default the ``sys.stderr`` of the
    moment (a job's log). Several cards of a model: :func:`neuron_cards` (one pass for all).
    """
    from pan.bias.reflect import with_reflect_padding
    from pan.capture.inference import layer_outputs, pick_device, preprocessed_batches
    from pan.capture.layers import AnalysedLayer
    from pan.capture.models import load_model
    from pan.logs import image_progress

    found = neuron_maps(dump_dir, neuron)
    records = _card_records(images, dump_dir, heatmap_images)
    loaded = load_model(model)
    target = pick_device(device)
    variant = with_reflect_padding(loaded.model).to(target).eval()
    watched = AnalysedLayer(0, neuron.layer, variant.get_submodule(neuron.layer))
    bar = image_progress(len(records), f"reflect {neuron.layer}", progress)
    batches = preprocessed_batches(records, loaded.transform, micro_batch)
    reflected = layer_outputs(variant, watched, batches, target, bar.update)[:, neuron.neuron].numpy()
    bar.close()
    return _card(loaded, records, found, reflected, heatmap_images)


def neuron_cards(
    model: ModelSpec,
    images: ImageSpec,
    dump_dir: str | Path,
    neurons: Sequence[SlotNeuron],
    heatmap_images: Sequence[int],
    micro_batch: int,
    device: str = "auto",
    progress=None,
) -> dict[str, NeuronCard]:
    """slot -> the PAN card of each of ``neurons`` (as :func:`neuron_card`), with the model
    loaded once and one reflect pass for them all (:func:`pan.beyond.card_maps.reflect_card_maps`)."""
    from pan.beyond.card_maps import reflect_card_maps
    from pan.capture.models import load_model

    found = {n.slot: neuron_maps(dump_dir, n) for n in neurons}  # every neuron checked before the pass
    records = _card_records(images, dump_dir, heatmap_images)
    loaded = load_model(model)
    reflected = reflect_card_maps(loaded, records, neurons, micro_batch, device, progress)
    return {n.slot: _card(loaded, records, found[n.slot], reflected[n.slot], heatmap_images) for n in neurons}


def _card_records(images: ImageSpec, dump_dir: str | Path, heatmap_images: Sequence[int]) -> list:
    """The images of ``images``, once checked to be those of the dump and to hold ``heatmap_images``."""
    from pan.capture.images import image_records

    records = image_records(images)
    dumped = [entry["id"] for entry in read_manifest(dump_dir)["images"]]
    if dumped != [r.id for r in records]:
        raise ValueError(
            f"the images of {dump_dir} are not those of the images: config; rerun its activations"
        )
    wrong = [i for i in heatmap_images if not 0 <= i < len(records)]
    if wrong:
        raise ValueError(f"figures.heatmap_images {wrong} are outside the batch of {len(records)} images")
    return records


def _card(
    loaded, records, found: NeuronMaps, reflected: np.ndarray, heatmap_images: Sequence[int]
) -> NeuronCard:
    """A card from a neuron's dumped and reflect maps, its kernel and the crops of ``heatmap_images``."""
    neuron = found.neuron
    weights = loaded.model.get_submodule(neuron.layer).weight[neuron.neuron]
    return NeuronCard(
        found,
        RegionSamples.from_maps(found.maps),
        RegionSamples.from_maps(reflected),
        tuple(
            Heatmap(records[i].id, input_crop(loaded.transform(records[i].load())), found.maps[i])
            for i in heatmap_images
        ),
        weights.detach().float().cpu().numpy(),
    )


def input_crop(tensor) -> np.ndarray:
    """A preprocessed input ``(3, H, W)`` as ``uint8`` RGB ``(H, W, 3)``, each channel stretched to 0-255."""
    tensor = tensor.float()
    low = tensor.amin(dim=(1, 2), keepdim=True)
    high = tensor.amax(dim=(1, 2), keepdim=True)
    scaled = (tensor - low) / (high - low).clamp_min(1e-12)
    return (scaled.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
