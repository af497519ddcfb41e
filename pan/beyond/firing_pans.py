"""Which PANs fire on a zero line at theta, and the figure's maps of the strongest one (reads the
theta-free firing table of :mod:`pan.beyond.firing`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from pan.beyond.attack import CLEAN, ORIENTATIONS, inject, plan_lines, prepared_run
from pan.core.labelling import DEFAULT_THETA, check_theta, pan_rule

__all__ = ["InjectedMaps", "injected_maps", "pan_firing", "strongest_firing_pan"]


def pan_firing(firing: pl.DataFrame, labels: pl.DataFrame, theta: float = DEFAULT_THETA) -> pl.DataFrame:
    """Per PAN and line whose orientation matches one of its borders: ``fires`` at theta (a
    counted row passes the PAN rule with the line and not on the clean images), and
    ``fires_clean`` (a counted row passes on the clean images already: near a border)."""
    theta = check_theta(theta)
    scored = firing.with_columns(passes=pan_rule(theta))
    keys = ["layer_index", "neuron", "orientation", "position", "map_line"]
    clean = scored.filter(pl.col("kind") == CLEAN).select(*keys, clean=pl.col("passes"))
    fires = (
        scored.filter(pl.col("kind") != CLEAN)
        .join(clean, on=keys, how="left")
        .group_by("layer", "layer_index", "neuron", "kind", "orientation", "position")
        .agg(
            fires=(pl.col("passes") & ~pl.col("clean").fill_null(False)).any(),
            fires_clean=pl.col("clean").fill_null(False).any(),
            best_ks=pl.col("ks").fill_nan(0.0).max(),
        )
    )
    frames = []
    for orientation, borders in ORIENTATIONS.items():
        pans = labels.filter(pl.any_horizontal(*[pl.col(f"pan_{b}") for b in borders])).select(
            "layer_index", "neuron", "pan_type"
        )
        frames.append(
            fires.filter(pl.col("orientation") == orientation).join(pans, on=["layer_index", "neuron"])
        )
    return pl.concat(frames).sort("layer_index", "neuron", "orientation", "position", "kind")


@dataclass(frozen=True)
class InjectedMaps:
    """One PAN's map on one image, clean and with each kind of line (the injection figure's data)."""

    layer: str
    neuron: int
    pan_type: str
    image_id: str
    orientation: str
    line: int
    map_line: int
    maps: dict[str, np.ndarray]
    """``clean`` and each kind -> ``(H, W)`` map."""


def strongest_firing_pan(firing: pl.DataFrame, labels: pl.DataFrame, theta: float) -> dict:
    """The PAN with the largest KS on a zero line (first kind if no zero), preferring columns."""
    fired = pan_firing(firing, labels, theta)
    if fired.is_empty():
        raise ValueError("no PAN with a border of a line's orientation: nothing to draw")
    kind = "zero" if "zero" in fired["kind"].to_list() else fired["kind"][0]
    best = fired.filter(pl.col("kind") == kind).sort(
        "fires", pl.col("orientation") == "columns", "best_ks", descending=True
    )
    return best.row(0, named=True)


def injected_maps(
    model,
    images,
    count: int | None,
    firing: str | Path,
    labels: str | Path,
    theta: float,
    kinds: Sequence[str],
    device: str = "auto",
) -> InjectedMaps:
    """The strongest firing PAN's map on the first evaluation image, clean and with each kind of
    line at the position where it fires most."""
    from pan.capture.inference import layer_outputs
    from pan.capture.layers import AnalysedLayer

    choice = strongest_firing_pan(pl.read_parquet(firing), pl.read_parquet(labels), theta)
    loaded, net, records, batches, black = prepared_run(model, images, 1, 1, device)
    height, width = batches[0].shape[-2:]
    watched = AnalysedLayer(choice["layer_index"], choice["layer"], net.get_submodule(choice["layer"]))
    maps = {"clean": layer_outputs(net, watched, iter(batches[:1]), batches[0].device)[0, choice["neuron"]]}
    index = -1
    for line in plan_lines([choice["position"]], kinds, height, width):
        if line.orientation != choice["orientation"]:
            continue
        index = line.index
        injected = inject(batches[0], line, black)
        maps[line.kind] = layer_outputs(net, watched, iter([injected]), injected.device)[0, choice["neuron"]]
    size = height if choice["orientation"] == "rows" else width
    map_size = maps["clean"].shape[0 if choice["orientation"] == "rows" else 1]
    return InjectedMaps(
        choice["layer"],
        choice["neuron"],
        choice["pan_type"],
        records[0].id,
        choice["orientation"],
        index,
        index * map_size // size,
        {name: m.numpy() for name, m in maps.items()},
    )
