"""Nascent vs downstream PANs as a 2x2 intervention design (beyond §3).

§3 names two kinds of PAN: *nascent* PANs read the padding of their own conv, *downstream*
PANs get the border from earlier layers (Fig. 8). Here both paddings are switched
independently: a layer's **own** padding (its conv) and its **upstream** padding (every
analysed conv before it) are each zero or reflect, four conditions
(:data:`CONDITIONS`):

================  ===========  ================
condition         own padding  upstream padding
================  ===========  ================
``original``      zero         zero
``own_reflect``   reflect      zero
``up_reflect``    zero         reflect
``all_reflect``   reflect      reflect
================  ===========  ================

Two forward passes of the §3 batch give all four (:func:`origin_strengths`): one where every
analysed conv passes its zero-padded output on, one where every conv passes its reflect-padded
output on; at each layer holding PANs both versions of the PANs' channels are kept. The
strength ``min(KS, max(KS+, KS-))`` of each PAN border under each condition, and its change
from ``original``, get paired image-bootstrap intervals (:mod:`pan.beyond.probe`).

:func:`label_origin` then reads, per PAN border, which zero padding *suffices* for the border
to pass the PAN rule at theta:

- ``nascent``: its own padding suffices (``up_reflect`` passes), upstream padding alone does
  not (``own_reflect`` fails);
- ``downstream``: upstream padding suffices, its own alone does not;
- ``either``: each alone suffices;
- ``needs_both``: neither alone suffices, only both together;
- ``no_padding``: it passes with no zero padding at all (``all_reflect``): no padding
  response (the flip control, :mod:`pan.beyond.flip`, tells whether it follows the content).

A border's category is *confident* when every decision it rests on is (the point estimate
and its interval on the same side of theta). A PAN takes the category its PAN borders share;
it is ``mixed`` only when no category is plausible for all of them, i.e. when its borders
disagree beyond their intervals. A PAN's origin is confident when its intervals allow no
other: every border's category is confident, or the borders disagree whatever they allow.

Both PAN rules (:data:`pan.core.labelling.RULES`) are read from the same two passes: the union
of their PANs is probed, and each rule labels its own PANs (its PAN type, its strength) at
theta; every row carries its ``rule``, ``paper`` first.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import product
from pathlib import Path
from typing import TextIO

import polars as pl

from pan.core.ks import DEFAULT_SHARE
from pan.core.labelling import DEFAULT_THETA, PAN_TYPES, check_theta, rule_view

from .probe import (
    DEFAULT_REPLICATES,
    DEFAULT_SEED,
    configured_strengths,
    label_rules,
    per_rule,
    plausible,
    probe_strengths,
)

__all__ = [
    "CONDITIONS",
    "ORIGINS",
    "ORIGIN_COLUMNS",
    "border_origin",
    "label_origin",
    "origin_counts",
    "origin_strengths",
    "write_origin",
    "write_origin_table",
]

CONDITIONS: tuple[str, ...] = ("original", "own_reflect", "up_reflect", "all_reflect")
"""The 2x2 design: own padding x upstream padding, each zero or reflect (see the module)."""
ORIGINS: tuple[str, ...] = ("nascent", "downstream", "either", "needs_both", "no_padding")
"""Border categories, in the order a PAN's plausible categories are tried."""


def border_origin(own_suffices: bool, upstream_suffices: bool, no_padding: bool) -> str:
    """The category of a PAN border from which zero padding suffices for it to pass."""
    if no_padding:
        return "no_padding"
    if own_suffices and upstream_suffices:
        return "either"
    if own_suffices:
        return "nascent"
    return "downstream" if upstream_suffices else "needs_both"


def origin_strengths(
    net,
    records,
    transform,
    labels: pl.DataFrame,
    micro_batch: int,
    device: str = "auto",
    replicates: int = DEFAULT_REPLICATES,
    seed: int = DEFAULT_SEED,
    progress: TextIO | None = None,
    q: float = DEFAULT_SHARE,
    threads: int = 1,
) -> pl.DataFrame:
    """Strengths (:data:`pan.beyond.probe.STRENGTH_COLUMNS`, both rules, the share rule at ``q``) of
    the PANs of ``labels`` under the four :data:`CONDITIONS`, over ``records`` preprocessed by
    ``transform`` (two forward passes)."""
    what = (2, "origin passes (zero, reflect)")
    return probe_strengths(
        net,
        records,
        transform,
        labels,
        micro_batch,
        _origin_passes,
        what,
        device,
        replicates,
        seed,
        q,
        progress,
        threads,
    )


def _origin_passes(net, pans, batches, device, on_batch) -> dict[str, dict]:
    """The four :data:`CONDITIONS`' maps of the PANs' channels from two passes (:func:`_probe_pass`)."""
    import numpy as np

    kept: dict[tuple[str, str, str], list] = {}
    for flow in ("zero", "reflect"):
        _probe_pass(net, pans, flow, batches, device, kept, on_batch)
    names = {"original": ("zero", "zero"), "own_reflect": ("zero", "reflect")}
    names |= {"up_reflect": ("reflect", "zero"), "all_reflect": ("reflect", "reflect")}
    return {c: {layer: np.concatenate(kept[(layer, *names[c])]) for layer in pans} for c in CONDITIONS}


def _probe_pass(net, pans, flow, batches, device, kept, on_batch) -> None:
    """One forward pass where every analysed conv passes its ``flow``-padded output on; at PAN
    layers the PANs' channels of both the zero- and the reflect-padded output are kept in
    ``kept[(layer, flow, own)]``. ``net`` is not changed (a variant sharing its weights runs)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from pan.bias.reflect import ChannelPaddedConv2d, with_reflect_padding
    from pan.capture.inference import full_float32
    from pan.capture.layers import analysed_layers

    class Probe(nn.Module):
        def __init__(self, name: str, inner: nn.Module):
            super().__init__()
            self.name, self.inner = name, inner
            picked = pans.get(name, (0, None))[1]
            self.picked = None if picked is None else torch.as_tensor(picked, device=device)

        def forward(self, x):
            inner = self.inner
            if isinstance(inner, ChannelPaddedConv2d):
                padded = F.pad(x, inner.input_padding) if any(inner.input_padding) else x
                zero = inner.conv(padded) if flow == "zero" or self.picked is not None else None
                reflect = inner(x) if flow == "reflect" or self.picked is not None else None
            else:  # no zero padding to switch (another padding_mode, or a wrapper pan leaves alone)
                zero = reflect = inner(x)
            if self.picked is not None:
                for own, maps in (("zero", zero), ("reflect", reflect)):
                    part = maps.index_select(1, self.picked).float().cpu().numpy()
                    kept.setdefault((self.name, flow, own), []).append(part)
            return zero if flow == "zero" else reflect

    variant = with_reflect_padding(net)
    for layer in analysed_layers(net):
        variant.set_submodule(layer.name, Probe(layer.name, variant.get_submodule(layer.name)))
    with torch.inference_mode(), full_float32():
        for batch in batches:
            variant(batch.to(device))
            on_batch(len(batch))


def label_origin(strengths: pl.DataFrame, labels: pl.DataFrame, theta: float = DEFAULT_THETA) -> pl.DataFrame:
    """One row per rule (:func:`pan.beyond.probe.label_rules`, ``paper`` first) and PAN border of
    ``labels`` under that rule: the ``rule``, the border's strength under each condition by that
    rule (interval: ``_lo``, ``_hi``), its change from ``original`` (``change_{condition}``,
    ``_lo``, ``_hi``), ``border_origin`` and ``border_confident``, then the PAN's ``origin`` and
    ``confident`` (see the module), and ``theta``."""
    theta = check_theta(theta)
    frames = [
        _label_rule(
            strengths.filter(pl.col("rule") == rule),
            rule_view(labels, rule).filter("is_pan").select("layer_index", "neuron", "pan_type"),
            theta,
        ).select(pl.lit(rule).alias("rule"), pl.all())
        for rule in label_rules(labels)
    ]
    return pl.concat(frames)


def _label_rule(strengths: pl.DataFrame, pans: pl.DataFrame, theta: float) -> pl.DataFrame:
    """:func:`label_origin`'s rows, less ``rule``, for one rule's strengths and PANs."""
    rows = []
    for (index, neuron), group in strengths.sort("layer_index", "neuron").group_by(
        "layer_index", "neuron", maintain_order=True
    ):
        pan_type = pans.filter((pl.col("layer_index") == index) & (pl.col("neuron") == neuron))["pan_type"]
        if pan_type.is_empty():
            continue
        by = {(r["border"], r["condition"]): r for r in group.iter_rows(named=True)}
        borders = []
        for border in pan_type[0]:
            cell = {c: by[(border, c)] for c in CONDITIONS}
            decide = {
                c: plausible(cell[c]["strength"], cell[c]["lo"], cell[c]["hi"], theta) for c in CONDITIONS
            }
            options = {
                border_origin(own, up, free)
                for own, up, free in product(
                    decide["up_reflect"], decide["own_reflect"], decide["all_reflect"]
                )
            }
            point = border_origin(
                *(cell[c]["strength"] > theta for c in ("up_reflect", "own_reflect", "all_reflect"))
            )
            row = {"layer": cell["original"]["layer"], "layer_index": index, "neuron": neuron}
            row |= {"pan_type": pan_type[0], "border": border}
            for c in CONDITIONS:
                row |= {
                    f"strength_{c}": cell[c]["strength"],
                    f"{c}_lo": cell[c]["lo"],
                    f"{c}_hi": cell[c]["hi"],
                }
            for c in CONDITIONS[1:]:
                row |= {f"change_{c}": cell[c]["change"]}
                row |= {f"change_{c}_lo": cell[c]["change_lo"], f"change_{c}_hi": cell[c]["change_hi"]}
            borders.append((row | {"border_origin": point, "border_confident": len(options) == 1}, options))
        shared = set.intersection(*(options for _, options in borders))
        points = [row["border_origin"] for row, _ in borders]
        if not shared:
            origin = "mixed"
        else:  # the most frequent point category the borders share, else the first shared one
            agreed = [p for p in points if p in shared]
            origin = max(agreed, key=points.count) if agreed else next(o for o in ORIGINS if o in shared)
        # one outcome only: the borders disagree whatever their intervals allow, or all are pinned
        confident = not shared or all(len(options) == 1 for _, options in borders)
        for row, _ in borders:
            rows.append(row | {"origin": origin, "confident": confident, "theta": theta})
    return (
        pl.DataFrame(rows, schema=_origin_schema(), orient="row")
        if rows
        else pl.DataFrame(schema=_origin_schema())
    )


def _origin_schema() -> dict:
    schema = {"layer": pl.String, "layer_index": pl.Int32, "neuron": pl.Int32, "pan_type": pl.String}
    schema["border"] = pl.String
    for c in CONDITIONS:
        schema |= {f"strength_{c}": pl.Float64, f"{c}_lo": pl.Float64, f"{c}_hi": pl.Float64}
    for c in CONDITIONS[1:]:
        schema |= {f"change_{c}": pl.Float64, f"change_{c}_lo": pl.Float64, f"change_{c}_hi": pl.Float64}
    return schema | {
        "border_origin": pl.String,
        "border_confident": pl.Boolean,
        "origin": pl.String,
        "confident": pl.Boolean,
        "theta": pl.Float64,
    }


def write_origin(
    model,
    images,
    labels: str | Path,
    out: str | Path,
    theta: float,
    micro_batch: int,
    device: str = "auto",
    replicates: int = DEFAULT_REPLICATES,
    seed: int = DEFAULT_SEED,
    strengths_out: str | Path | None = None,
    q: float = DEFAULT_SHARE,
    threads: int = 1,
) -> pl.DataFrame:
    """:func:`label_origin` of the configured ``model`` (a ModelSpec) on the §3 batch ``images``
    (an ImageSpec) for the PANs of the label file ``labels`` under both rules (the share rule at
    ``q``), written to ``out`` (the strengths too, to ``strengths_out``); layers' intervals on
    ``threads`` threads."""
    table = pl.read_parquet(labels)
    strengths = configured_strengths(
        origin_strengths, model, images, table, micro_batch, device, replicates, seed, q, threads
    )
    if strengths_out is not None:
        strengths.write_parquet(strengths_out)
    origin = label_origin(strengths, table, theta)
    origin.write_parquet(out)
    return origin


ORIGIN_COLUMNS = ("model", "rule", "pan_type", "pans", *ORIGINS, "mixed", "confident")
"""Columns of ``results/tables/pan_origin.csv``: PANs per origin, and how many are confident."""


def origin_counts(origins: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Per model, rule (:func:`pan.beyond.probe.per_rule`) and PAN type (``all`` types first):
    PANs, how many of each origin (``mixed`` too), and how many PANs' origin is confident."""
    frames = []
    for (model, rule), table in per_rule(origins):
        per_pan = table.unique(["layer_index", "neuron"], maintain_order=True)
        for pan_type, rows in [
            ("all", per_pan),
            *((t, per_pan.filter(pl.col("pan_type") == t)) for t in PAN_TYPES),
        ]:
            if pan_type != "all" and rows.is_empty():
                continue
            counts = {kind: int((rows["origin"] == kind).sum()) for kind in (*ORIGINS, "mixed")}
            counts["confident"] = int(rows["confident"].sum())
            frames.append({"model": model, "rule": rule, "pan_type": pan_type, "pans": rows.height, **counts})
    schema = {c: pl.String for c in ORIGIN_COLUMNS[:3]} | {c: pl.Int64 for c in ORIGIN_COLUMNS[3:]}
    return pl.DataFrame(frames, schema=schema)


def write_origin_table(origin_files: Mapping[str, str | Path], out: str | Path) -> pl.DataFrame:
    """``pan_origin.csv`` from the models' origin files."""
    table = origin_counts({model: pl.read_parquet(path) for model, path in origin_files.items()})
    table.write_csv(out)
    return table
