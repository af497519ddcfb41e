"""Flip control: does a PAN answer the padding, or something at a fixed place in the images?

The §3 batch is a set of photos, and photos are not symmetric: skies sit at the top, ground at
the bottom. A neuron that answers such content where it usually is passes the PAN rule at
that border as a PAN would. Flipping the batch tells them apart: the padding stays where it
was, the content moves to the opposite border. The batch is rerun flipped left-right
(``flip_lr``, for L and R borders) and top-bottom (``flip_tb``, for T and B), and every PAN
border is scored again on its own border and on the mirrored one (:func:`flip_strengths`,
strengths and paired image-bootstrap intervals as in :mod:`pan.beyond.probe`).

Per PAN border the verdict compares the border with its mirror (:func:`border_verdict`), on
the batch and flipped: the *gap* ``strength(border) - strength(mirror)`` (T-B, L-R), with paired
image-bootstrap intervals. Padding keeps the gap's sign under the flip, content reverses it:

- ``padding``: the gap and the flipped gap both exclude 0, with the same sign;
- ``content``: both exclude 0, with opposite signs (the response moved with the images);
- ``unclear``: the flipped gap's interval holds 0 (part of the response moved), or the gap's
  interval does (the border and its mirror answer alike).

A border whose mirror is a PAN border too (T and B of a TB PAN, L and R of an LR PAN) is not
*informative*: the PAN answers on both sides whatever the flip, and the flip can only swap the
small difference between them, which says nothing about the response itself. Neither is a
border whose gap's interval holds 0.

No theta enters the verdict, so a PAN just above theta is judged as surely as a strong one;
theta only decides which neurons are PANs. A PAN is ``padding`` (or ``content``) when every
informative PAN border says so, else ``unclear`` (also when none is informative).

Both PAN rules (:data:`pan.core.labelling.RULES`) are judged from the same three passes: the
union of their PANs is probed, and each rule judges its own PANs with its own strengths (its
PAN type decides which borders are judged and which are symmetric); every row carries its
``rule``, ``paper`` first.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

import polars as pl

from pan.core.ks import DEFAULT_SHARE
from pan.core.labelling import DEFAULT_THETA, PAN_TYPES, check_theta, rule_view

from .probe import (
    DEFAULT_REPLICATES,
    DEFAULT_SEED,
    capture_channels,
    configured_strengths,
    label_rules,
    per_rule,
    probe_strengths,
)

__all__ = [
    "FLIPS",
    "FLIP_COLUMNS",
    "MIRROR",
    "VERDICTS",
    "border_verdict",
    "flip_counts",
    "flip_strengths",
    "flip_verdicts",
    "write_flip",
    "write_flip_table",
]

FLIPS: dict[str, int] = {"flip_lr": -1, "flip_tb": -2}
"""Conditions besides ``original``, and the image axis each flips."""
MIRROR = {"T": "B", "B": "T", "L": "R", "R": "L"}
AXIS = {"T": "flip_tb", "B": "flip_tb", "L": "flip_lr", "R": "flip_lr"}
"""The flip that moves content from a border to its mirror."""
VERDICTS: tuple[str, ...] = ("padding", "content", "unclear")


def border_verdict(gap: tuple[float, float], flipped_gap: tuple[float, float]) -> str:
    """``padding``, ``content`` or ``unclear`` from the intervals ``(lo, hi)`` of a border's gap
    to its mirror on the batch and on the flipped batch (see the module)."""
    sign, flipped_sign = (_sign(lo, hi) for lo, hi in (gap, flipped_gap))
    if sign == 0 or flipped_sign == 0:
        return "unclear"
    return "padding" if sign == flipped_sign else "content"


def _sign(lo: float, hi: float) -> int:
    """+1 or -1 when the interval excludes 0 on that side, else 0."""
    return 1 if lo > 0 else -1 if hi < 0 else 0


def flip_strengths(
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
    the PANs of ``labels`` on the batch as it is (``original``) and flipped (:data:`FLIPS`):
    three forward passes, ``net`` unchanged."""
    what = (3, "flip passes (none, LR, TB)")
    return probe_strengths(
        net,
        records,
        transform,
        labels,
        micro_batch,
        _flip_passes,
        what,
        device,
        replicates,
        seed,
        q,
        progress,
        threads,
    )


def _flip_passes(net, pans, batches, device, on_batch) -> dict[str, dict]:
    """The PANs' channels on the batch and on the batch flipped along each axis of :data:`FLIPS`."""
    import torch

    channels = {layer: neurons for layer, (_, neurons) in pans.items()}
    maps = {}
    for condition, axis in {"original": None, **FLIPS}.items():
        prepare = (lambda b: b) if axis is None else (lambda b, axis=axis: torch.flip(b, dims=[axis]))
        maps[condition] = capture_channels(net, channels, iter(batches), device, prepare, on_batch)
    return maps


def flip_verdicts(
    strengths: pl.DataFrame, labels: pl.DataFrame, theta: float = DEFAULT_THETA
) -> pl.DataFrame:
    """One row per rule (:func:`pan.beyond.probe.label_rules`, ``paper`` first) and PAN border of
    ``labels`` under that rule: the ``rule``, the border's strength by that rule on the batch
    (``strength``, ``lo``, ``hi``), after the flip on its own border (``stay``...) and on the
    mirrored one (``moved``...), its gap to the mirror on the batch (``gap``...) and flipped
    (``flipped_gap``...), ``informative``, ``border_verdict``, the PAN's ``verdict`` and ``theta``
    (which only chose the PANs)."""
    theta = check_theta(theta)
    frames = [
        _judge_rule(strengths.filter(pl.col("rule") == rule), rule_view(labels, rule), theta).select(
            pl.lit(rule).alias("rule"), pl.all()
        )
        for rule in label_rules(labels)
    ]
    return pl.concat(frames)


def _judge_rule(strengths: pl.DataFrame, labels: pl.DataFrame, theta: float) -> pl.DataFrame:
    """:func:`flip_verdicts`'s rows, less ``rule``, for one rule's strengths and label view."""
    pan_types = {
        (r["layer_index"], r["neuron"]): r["pan_type"] for r in labels.filter("is_pan").iter_rows(named=True)
    }
    by = {
        (r["layer_index"], r["neuron"], r["border"], r["condition"]): r
        for r in strengths.iter_rows(named=True)
    }
    rows = []
    for (index, neuron), pan_type in sorted(pan_types.items()):
        if (index, neuron, pan_type[0], "original") not in by:
            continue
        borders = []
        for border in pan_type:
            base = by[(index, neuron, border, "original")]
            stay = by[(index, neuron, border, AXIS[border])]
            moved = by[(index, neuron, MIRROR[border], AXIS[border])]
            gap = (base["mirror_gap_lo"], base["mirror_gap_hi"])
            verdict = border_verdict(gap, (stay["mirror_gap_lo"], stay["mirror_gap_hi"]))
            row = {"layer": base["layer"], "layer_index": index, "neuron": neuron, "pan_type": pan_type}
            symmetric = MIRROR[border] in pan_type
            row |= {"border": border, "flip": AXIS[border], "symmetric": symmetric}
            row |= {"informative": not symmetric and _sign(*gap) != 0}
            row |= {"strength": base["strength"], "lo": base["lo"], "hi": base["hi"]}
            row |= {"stay": stay["strength"], "stay_lo": stay["lo"], "stay_hi": stay["hi"]}
            row |= {"moved": moved["strength"], "moved_lo": moved["lo"], "moved_hi": moved["hi"]}
            row |= {"gap": base["mirror_gap"], "gap_lo": gap[0], "gap_hi": gap[1]}
            row |= {"flipped_gap": stay["mirror_gap"], "flipped_gap_lo": stay["mirror_gap_lo"]}
            row |= {"flipped_gap_hi": stay["mirror_gap_hi"], "border_verdict": verdict}
            borders.append(row)
        judged = {row["border_verdict"] for row in borders if row["informative"]}
        verdict = judged.pop() if len(judged) == 1 and "unclear" not in judged else "unclear"
        rows.extend(row | {"verdict": verdict, "theta": theta} for row in borders)
    return (
        pl.DataFrame(rows, schema=_flip_schema(), orient="row")
        if rows
        else pl.DataFrame(schema=_flip_schema())
    )


def _flip_schema() -> dict:
    schema = {"layer": pl.String, "layer_index": pl.Int32, "neuron": pl.Int32, "pan_type": pl.String}
    schema |= {"border": pl.String, "flip": pl.String, "symmetric": pl.Boolean, "informative": pl.Boolean}
    for name in ("", "stay", "moved", "gap", "flipped_gap"):
        stem = name or "strength"
        prefix = f"{name}_" if name else ""
        schema |= {stem: pl.Float64, f"{prefix}lo": pl.Float64, f"{prefix}hi": pl.Float64}
    return schema | {"border_verdict": pl.String, "verdict": pl.String, "theta": pl.Float64}


def write_flip(
    model,
    images,
    labels: str | Path,
    out: str | Path,
    theta: float,
    micro_batch: int,
    device: str = "auto",
    replicates: int = DEFAULT_REPLICATES,
    seed: int = DEFAULT_SEED,
    q: float = DEFAULT_SHARE,
    threads: int = 1,
) -> pl.DataFrame:
    """:func:`flip_verdicts` of the configured ``model`` (a ModelSpec) on the §3 batch
    ``images`` (an ImageSpec) for the PANs of the label file ``labels`` under both rules (the
    share rule at ``q``), written to ``out``; layers' intervals on ``threads`` threads."""
    table = pl.read_parquet(labels)
    strengths = configured_strengths(
        flip_strengths, model, images, table, micro_batch, device, replicates, seed, q, threads
    )
    verdicts = flip_verdicts(strengths, table, theta)
    verdicts.write_parquet(out)
    return verdicts


FLIP_COLUMNS = ("model", "rule", "pan_type", "pans", *VERDICTS, "uninformative")
"""Columns of ``results/tables/flip_control.csv``; ``uninformative``: the unclear PANs none of
whose PAN borders differs from its mirror beyond the interval (the flip cannot judge them)."""


def flip_counts(verdicts: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Per model, rule (:func:`pan.beyond.probe.per_rule`) and PAN type (``all`` types first):
    PANs, and how many get each verdict."""
    frames = []
    for (model, rule), table in per_rule(verdicts):
        per_pan = table.group_by("layer_index", "neuron", maintain_order=True).agg(
            pl.col("pan_type", "verdict").first(), pl.col("informative").any()
        )
        for pan_type, rows in [
            ("all", per_pan),
            *((t, per_pan.filter(pl.col("pan_type") == t)) for t in PAN_TYPES),
        ]:
            if pan_type != "all" and rows.is_empty():
                continue
            counts = {kind: int((rows["verdict"] == kind).sum()) for kind in VERDICTS}
            counts["uninformative"] = int((~rows["informative"]).sum())
            frames.append({"model": model, "rule": rule, "pan_type": pan_type, "pans": rows.height, **counts})
    schema = {c: pl.String for c in FLIP_COLUMNS[:3]} | {c: pl.Int64 for c in FLIP_COLUMNS[3:]}
    return pl.DataFrame(frames, schema=schema)


def write_flip_table(flip_files: Mapping[str, str | Path], out: str | Path) -> pl.DataFrame:
    """``flip_control.csv`` from the models' flip files."""
    table = flip_counts({model: pl.read_parquet(path) for model, path in flip_files.items()})
    table.write_csv(out)
    return table
