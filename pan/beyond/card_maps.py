"""The reflect-padded maps of every PAN card's neuron of a model, from one forward pass.

A PAN card (:func:`pan.beyond.neurons.neuron_card`) sets a neuron's maps beside its maps when
the model pads with reflect in every analysed conv. Rerunning the reflect model over the batch
once per card cost one pass per card; :func:`reflect_card_maps` records every card's neuron
in one pass (stopped once the deepest of their layers has run) and saves them for the cards.
The values are those of a pass per card: the same model, images and micro-batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

if TYPE_CHECKING:
    from pan.beyond.selection import SlotNeuron
    from pan.capture.images import ImageSpec
    from pan.capture.models import ModelSpec

__all__ = ["read_card_maps", "reflect_card_maps"]


def reflect_card_maps(
    spec: ModelSpec,
    images: ImageSpec,
    neurons: Sequence[SlotNeuron],
    out: str | Path,
    micro_batch: int,
    device: str = "auto",
    progress: TextIO | None = None,
) -> dict[str, np.ndarray]:
    """slot -> maps ``(images, H, W)`` of each neuron of ``neurons`` in the reflect-padded model
    of ``spec`` over ``images``, saved to ``out`` (``.npz``, read by :func:`read_card_maps`)."""
    import torch

    from pan.bias.reflect import with_reflect_padding
    from pan.capture.images import image_records
    from pan.capture.inference import (
        LayerReached,
        full_float32,
        pick_device,
        preprocessed_batches,
        recording,
    )
    from pan.capture.layers import AnalysedLayer
    from pan.capture.models import load_model
    from pan.logs import image_progress

    records = image_records(images)
    loaded = load_model(spec)
    target = pick_device(device)
    variant = with_reflect_padding(loaded.model).to(target).eval()
    names = list(dict.fromkeys(n.layer for n in neurons))
    layers = [AnalysedLayer(i, name, variant.get_submodule(name)) for i, name in enumerate(names)]
    captured: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    seen: set[str] = set()

    def keep(layer: AnalysedLayer, maps: torch.Tensor) -> None:
        if layer.name not in seen:
            seen.add(layer.name)
            captured[layer.name].append(maps.float().cpu())
        if len(seen) == len(names):  # the deepest card layer has run: stop this pass
            raise LayerReached

    bar = image_progress(len(records), f"reflect {len(neurons)} card neurons", progress)
    with torch.inference_mode(), full_float32(), recording(layers, keep):
        for batch in preprocessed_batches(records, loaded.transform, micro_batch):
            seen.clear()
            try:
                variant(batch.to(target))
            except LayerReached:
                pass
            bar.update(len(batch))
    bar.close()
    maps = {name: torch.cat(parts) for name, parts in captured.items() if parts}
    result = {n.slot: maps[n.layer][:, n.neuron].numpy() for n in neurons}
    np.savez(out, **result)
    return result


def read_card_maps(path: str | Path, slot: str) -> np.ndarray:
    """The reflect maps of ``slot`` saved by :func:`reflect_card_maps`."""
    with np.load(path) as saved:
        if slot not in saved:
            raise KeyError(f"{path} holds no reflect maps of slot {slot!r}; rerun its card_reflect_maps job")
        return saved[slot]
