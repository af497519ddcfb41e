"""Which neurons get per-neuron figures: those named in the config, and the strongest of each model.

A neuron figure is addressed by a *slot*, a file-name-safe string:

- ``pan1``, ``pan2``, ...: the strongest PANs of a model. Strength is how far a neuron clears
  both PAN tests on its best border, ``max_b min(KS_b, max(KS+_b, KS-_b))``; a neuron is a PAN
  exactly when its strength exceeds theta, so PANs rank first. Should a model have fewer
  PANs than slots, the next slots hold the neurons closest to being one (flagged as such).
- ``edge1``, ``edge2``, ...: the strongest non-PAN edge detectors, by their largest KS, among
  neurons not already in a ``pan`` slot (again flagged when they are no edge detector).
- ``{layer}_n{neuron}``: a neuron named in the config (``figures: neurons:``). Its figures
  depend on the activations only, never on theta.

Ranked slots depend on the PAN labels (``results/pans/{model}.parquet``); the selection of a
model is written to ``results/figures/{model}/neurons.csv`` (:func:`write_selection`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pan.core.labelling import pan_strength, read_labels
from pan.core.scoring import read_ks_tables

__all__ = [
    "CONFIGURED_SLOT",
    "RANKED_SLOT",
    "ROLES",
    "SlotNeuron",
    "is_ranked_slot",
    "select_neurons",
    "slot_neuron",
    "write_selection",
]

RANKED_SLOT = re.compile(r"(pan|edge)([1-9][0-9]*)")
CONFIGURED_SLOT = re.compile(r"(.+)_n([0-9]+)")
ROLES = {"pan": "PAN", "edge": "edge detector"}


def is_ranked_slot(slot: str) -> bool:
    """Whether ``slot`` is filled from the PAN labels (and so depends on theta)."""
    return RANKED_SLOT.fullmatch(slot) is not None


@dataclass(frozen=True)
class SlotNeuron:
    """The neuron behind a slot, and a one-line description of why it was picked."""

    slot: str
    layer: str
    neuron: int
    description: str


def select_neurons(
    labels: pl.DataFrame, ks: pl.DataFrame, top_pans: int, top_edge_detectors: int
) -> pl.DataFrame:
    """The ranked slots of one model, from its PAN labels and KS tables.

    Columns: ``slot, role, rank, layer, layer_index, neuron, strength, max_ks, is_pan,
    is_edge_detector, pan_type, theta``. Ties break by depth, then neuron index.
    """
    needed = top_pans + top_edge_detectors
    if labels.height < needed:
        raise ValueError(f"{needed} neuron slots requested but the model has {labels.height} neurons")
    keys = ["layer", "layer_index", "neuron"]
    scored = labels.join(pan_strength(ks), on=keys, how="left", validate="1:1")
    pans = scored.sort(
        ["strength", "max_ks", "layer_index", "neuron"], descending=[True, True, False, False]
    ).head(top_pans)
    edges = (  # non-PANs first; PANs only fill slots that no non-PAN is left for
        scored.join(pans.select(keys), on=keys, how="anti")
        .sort(["is_pan", "max_ks", "layer_index", "neuron"], descending=[False, True, False, False])
        .head(top_edge_detectors)
    )
    frames = [
        frame.with_columns(role=pl.lit(ROLES[kind]), rank=pl.int_range(1, frame.height + 1)).with_columns(
            slot=pl.lit(kind) + pl.col("rank").cast(pl.String)
        )
        for kind, frame in (("pan", pans), ("edge", edges))
    ]
    return pl.concat(frames).select(
        "slot", "role", "rank", *keys, "strength", "max_ks", "is_pan", "is_edge_detector", "pan_type", "theta"
    )


def write_selection(
    labels: str | Path,
    ks_files: Sequence[str | Path],
    out: str | Path,
    top_pans: int,
    top_edge_detectors: int,
) -> pl.DataFrame:
    """Select the ranked slots of one model and write them as CSV to ``out``."""
    selection = select_neurons(read_labels(labels), read_ks_tables(ks_files), top_pans, top_edge_detectors)
    selection.write_csv(out)
    return selection


def slot_neuron(slot: str, selection: str | Path | None = None) -> SlotNeuron:
    """The neuron of ``slot``: parsed from a configured slot, looked up in ``selection`` for ranked ones."""
    ranked = RANKED_SLOT.fullmatch(slot)
    if ranked is None:
        configured = CONFIGURED_SLOT.fullmatch(slot)
        if configured is None:
            raise ValueError(f"neuron slot {slot!r} is neither pan<k>, edge<k> nor <layer>_n<neuron>")
        return SlotNeuron(slot, configured[1], int(configured[2]), "chosen in the config")
    if selection is None:
        raise ValueError(f"slot {slot!r} is ranked from PAN labels: pass the selection file")
    rows = pl.read_csv(selection).filter(pl.col("slot") == slot)
    if rows.height != 1:
        raise ValueError(f"slot {slot!r} is not in {selection}; is figures.top_pans large enough?")
    row = rows.row(0, named=True)
    return SlotNeuron(slot, row["layer"], int(row["neuron"]), _ranked_description(row))


def _ranked_description(row: Mapping[str, Any]) -> str:
    """E.g. ``strongest PAN #1 (type TBLR, θ = 0.5)``; says so when the neuron fell short."""
    theta = f"θ = {row['theta']:g}"
    if row["role"] == ROLES["pan"]:
        if row["is_pan"]:
            return f"strongest PAN #{row['rank']} (type {row['pan_type']}, {theta})"
        return f"PAN slot #{row['rank']}: closest to a PAN, but none at {theta}"
    if row["is_edge_detector"] and not row["is_pan"]:
        return f"strongest non-PAN edge detector #{row['rank']} ({theta})"
    return f"edge detector slot #{row['rank']}: no non-PAN edge detector left at {theta}"
