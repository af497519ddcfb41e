"""The reflect-padded maps of every PAN card's neuron of a model, from one forward pass.

A PAN card (:func:`pan.beyond.neurons.neuron_card`) sets a neuron's maps beside its maps when
the model pads with reflect in every analysed conv. Rerunning the reflect model over the batch
once per card cost one pass per card; :func:`reflect_card_maps` records every card's neuron
in one pass (stopped once the deepest of their layers has run), keeping of each batch only
the cards' channels. The values are those of a pass per card: the same model, images and
micro-batches (``tests/test_run_ks.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

import numpy as np

if TYPE_CHECKING:
    from pan.beyond.selection import SlotNeuron
    from pan.capture.images import ImageRecord
    from pan.capture.models import LoadedModel

__all__ = ["reflect_card_maps"]


def reflect_card_maps(
    loaded: LoadedModel,
    records: Sequence[ImageRecord],
    neurons: Sequence[SlotNeuron],
    micro_batch: int,
    device: str = "auto",
    progress: TextIO | None = None,
) -> dict[str, np.ndarray]:
    """slot -> maps ``(images, H, W)`` of each neuron of ``neurons`` in the reflect-padded copy
    of the loaded model (left unchanged) over the images of ``records``."""
    import torch

    from pan.bias.reflect import with_reflect_padding
    from pan.capture.inference import LayerReached, full_float32, pick_device, preprocessed_batches, recording
    from pan.capture.layers import AnalysedLayer
    from pan.logs import image_progress

    target = pick_device(device)
    variant = with_reflect_padding(loaded.model).to(target).eval()
    channels: dict[str, list[int]] = {}
    for n in neurons:
        channels.setdefault(n.layer, [])
        if n.neuron not in channels[n.layer]:
            channels[n.layer].append(n.neuron)
    names = list(channels)
    layers = [AnalysedLayer(i, name, variant.get_submodule(name)) for i, name in enumerate(names)]
    captured: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    seen: set[str] = set()

    def keep(layer: AnalysedLayer, maps: torch.Tensor) -> None:
        if layer.name not in seen:
            seen.add(layer.name)
            captured[layer.name].append(maps[:, channels[layer.name]].float().cpu())
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
    picked = {n.slot: maps[n.layer][:, channels[n.layer].index(n.neuron)] for n in neurons}
    return {slot: np.ascontiguousarray(values.numpy()) for slot, values in picked.items()}
