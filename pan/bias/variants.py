"""The four models of the paper's §4: which channels pad with reflect in each.

- ``original``:     the model as trained (zero padding everywhere);
- ``reflect``:      every channel of every analysed conv pads with reflect;
- ``pan_reflect``:  only the PANs pad with reflect;
- ``rand_reflect``: the control set: in each layer, as many channels as it has PANs, drawn
  at random (seeded) among its non-PAN channels.

Channel sets come from a PAN label table (``results/pans/{model}.parquet``, see
:mod:`pan.core.labelling`); the variants themselves are built by
:func:`pan.bias.reflect.with_reflect_padding`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

if TYPE_CHECKING:  # torch loads lazily: the workflow imports VARIANTS while parsing
    from torch import nn

__all__ = [
    "ChannelSets",
    "VARIANTS",
    "build_variants",
    "pan_channels",
    "random_control_channels",
    "variant_channels",
]

VARIANTS: tuple[str, ...] = ("original", "reflect", "pan_reflect", "rand_reflect")
"""Variant names, as used in file names (``results/eval/{model}/{variant}.parquet``)."""

ChannelSets = dict[str, np.ndarray]
"""Layer name -> sorted output channel indices that pad with reflect."""


def pan_channels(labels: pl.DataFrame) -> ChannelSets:
    """The PAN channels of each layer (layers without PANs are left out)."""
    pans = labels.filter(pl.col("is_pan")).sort("layer_index", "neuron")
    return {
        layer: np.sort(group["neuron"].to_numpy())
        for (layer,), group in pans.group_by("layer", maintain_order=True)
    }


def random_control_channels(labels: pl.DataFrame, seed: int = 0, scale: float = 1.0) -> ChannelSets:
    """RAND-reflect's channels: per layer, as many non-PANs as the layer has PANs, drawn at random.

    Each layer draws from its own generator seeded by ``(seed, layer_index)``, so a layer's
    draw depends only on the seed and its own labels. A layer with more PANs than non-PANs
    (only in tiny models) gets all its non-PANs, and a warning says the control is smaller.
    ``scale`` draws ``round(scale x PANs)`` non-PANs per layer instead (the growing random sets of
    the §4 noise model, :mod:`pan.bias.noise_family`), from a generator seeded by
    ``(seed, layer_index, round(1000 x scale))``; ``scale=1`` is RAND-reflect itself.
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    channels = {}
    for (layer, layer_index), group in labels.sort("layer_index", "neuron").group_by(
        "layer", "layer_index", maintain_order=True
    ):
        is_pan = group["is_pan"].to_numpy()
        count = int(round(scale * int(is_pan.sum())))
        candidates = group["neuron"].to_numpy()[~is_pan]
        if count > candidates.size:
            log = logging.warning if scale == 1 else logging.info
            log(
                "layer %r needs %d random channels but has only %d other channels: its random set is smaller",
                layer,
                count,
                candidates.size,
            )
            count = candidates.size
        if count == 0:
            continue
        key = [seed, int(layer_index)] if scale == 1 else [seed, int(layer_index), round(1000 * scale)]
        rng = np.random.default_rng(key)
        channels[layer] = np.sort(rng.choice(candidates, size=count, replace=False))
    return channels


def variant_channels(labels: pl.DataFrame, seed: int = 0) -> dict[str, ChannelSets | None]:
    """Reflect channels of every variant: ``{}`` for ``original``, ``None`` (all) for ``reflect``."""
    return {
        "original": {},
        "reflect": None,
        "pan_reflect": pan_channels(labels),
        "rand_reflect": random_control_channels(labels, seed),
    }


def build_variants(model: nn.Module, labels: pl.DataFrame, seed: int = 0) -> dict[str, nn.Module]:
    """The four variants of ``model`` (sharing its weights), in :data:`VARIANTS` order.

    ``original`` is ``model`` itself; ``labels`` must be the PAN labels of this model
    (layer names not among its analysed layers raise ``KeyError``).
    """
    from pan.bias.reflect import with_reflect_padding

    return {
        name: model if name == "original" else with_reflect_padding(model, channels)
        for name, channels in variant_channels(labels, seed).items()
    }
