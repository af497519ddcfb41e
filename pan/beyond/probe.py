"""PAN border strength under interventions, with image-bootstrap intervals (origin and flip).

The origin 2x2 (:mod:`pan.beyond.origin`) and the flip control (:mod:`pan.beyond.flip`) rerun the §3 batch
under a few *conditions* (some padding switched to reflect, the images flipped) and keep only
the PANs' channels of each layer: no dump, a few MB. Per PAN, border and condition they
report the **border strength** ``min(KS, max(KS+, KS-))``, the margin of the PAN rule: a border
passes at theta exactly when its strength exceeds theta (:func:`pan.core.labelling.pan_strength`
is its per-neuron maximum).

Both PAN rules (:data:`pan.core.labelling.RULES`) are scored in the same passes: the PANs probed
are the union of both rules' PANs (:func:`pan_channels`), and every strength row carries its
``rule``: ``paper`` (KS+ and KS- against the top/bottom ``k`` centre values) or ``share`` (against
the top/bottom share ``q`` of the centre, the same at every map size). One KS scoring gives both
(:func:`pan.core.scoring.score_maps`), so the second rule costs no pass and no extra scoring.

Intervals come from an image bootstrap: the batch's images are resampled with replacement,
and the same draw serves every condition and every layer (a paired bootstrap), so the change
of strength between two conditions has an interval of its own. Percentile intervals at
:data:`CONFIDENCE`. A decision "strength > theta" is *confident* when the point estimate and
both interval ends fall on the same side of theta (:func:`plausible`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TextIO

import numpy as np
import polars as pl

from pan.core.bootstrap import bootstrap_strengths, resample_weights
from pan.core.borders import BORDERS
from pan.core.ks import DEFAULT_SHARE
from pan.core.labelling import RULES
from pan.core.scoring import score_maps

if TYPE_CHECKING:
    import torch

__all__ = [
    "CONFIDENCE",
    "DEFAULT_REPLICATES",
    "DEFAULT_SEED",
    "STRENGTH_COLUMNS",
    "STRENGTH_SCHEMA",
    "border_strengths",
    "capture_channels",
    "configured_strengths",
    "label_rules",
    "pan_channels",
    "per_rule",
    "plausible",
    "probe_strengths",
    "strength_table",
]

DEFAULT_REPLICATES = 100
"""Bootstrap replicates of the image batch (``origin.replicates``)."""
DEFAULT_SEED = 0
"""Seed of the bootstrap draws (``origin.seed``)."""
CONFIDENCE = 0.95
"""Coverage of the percentile intervals."""

STRENGTH_COLUMNS = (
    "rule",
    "layer",
    "layer_index",
    "neuron",
    "border",
    "condition",
    "strength",
    "lo",
    "hi",
    "change",
    "change_lo",
    "change_hi",
    "mirror_gap",
    "mirror_gap_lo",
    "mirror_gap_hi",
)
"""Columns of :func:`strength_table`: per rule, neuron, border and condition the strength with its
interval, its change from the reference condition, and its ``mirror_gap`` (strength on this
border minus strength on the mirrored one, T-B, L-R, in the same condition), each with its
paired interval."""
MIRRORED = [BORDERS.index(b) for b in ("B", "T", "R", "L")]
"""Column of each border's mirror in the T, B, L, R order."""
STRENGTH_SCHEMA = {
    "rule": pl.String,
    "layer": pl.String,
    "layer_index": pl.Int32,
    "neuron": pl.Int32,
    "border": pl.String,
    "condition": pl.String,
    **{c: pl.Float64 for c in STRENGTH_COLUMNS[6:]},
}
"""Polars schema of :func:`strength_table` (also of an empty one: a model without PANs)."""


def label_rules(labels: pl.DataFrame) -> tuple[str, ...]:
    """The rules a label table holds: both :data:`pan.core.labelling.RULES` when it carries the
    share rule's columns (``is_pan_share``), else ``paper`` only."""
    return RULES if "is_pan_share" in labels.columns else RULES[:1]


def pan_channels(labels: pl.DataFrame) -> dict[str, tuple[int, list[int]]]:
    """``layer -> (layer_index, neurons)`` of a label table (:func:`pan.core.labelling.label_pans`):
    the neurons that are PANs under some rule of :func:`label_rules`."""
    pan = pl.any_horizontal("is_pan", *(["is_pan_share"] if "is_pan_share" in labels.columns else []))
    pans = labels.filter(pan).group_by("layer", "layer_index").agg(pl.col("neuron").sort())
    return {
        r["layer"]: (r["layer_index"], list(r["neuron"]))
        for r in pans.sort("layer_index").iter_rows(named=True)
    }


def border_strengths(maps: np.ndarray, q: float = DEFAULT_SHARE) -> np.ndarray:
    """``(rules, neurons, 4)`` strengths ``min(KS, max(KS+, KS-))`` of ``maps`` ``(images, neurons,
    H, W)`` per rule of :data:`pan.core.labelling.RULES` (the share rule at share ``q``) and border
    T, B, L, R (NaN statistics, maps below 3x3, count as 0)."""
    table = score_maps(np.ascontiguousarray(maps), "", 0, q=q)
    ks = np.nan_to_num(table["ks"].to_numpy())
    strengths = []
    for plus, minus in (("ks_plus", "ks_minus"), ("ks_plus_q", "ks_minus_q")):
        truncated = np.maximum(*(np.nan_to_num(table[c].to_numpy()) for c in (plus, minus)))
        strengths.append(np.minimum(ks, truncated).reshape(maps.shape[1], len(BORDERS)))
    return np.stack(strengths)


def strength_table(
    layer: str,
    layer_index: int,
    neurons: Sequence[int],
    conditions: Mapping[str, np.ndarray],
    replicates: int,
    seed: int,
    reference: str,
    q: float = DEFAULT_SHARE,
) -> pl.DataFrame:
    """:data:`STRENGTH_COLUMNS` of one layer's ``neurons`` from their maps under each condition
    (``condition -> (images, len(neurons), H, W)``, the same images in the same order), rows of
    the ``paper`` rule first, then the ``share`` rule's (at share ``q``).

    Each of ``replicates`` draws resamples the images with replacement
    (:func:`pan.core.bootstrap.resample_weights`), the same draws for every condition and rule
    (and, with the same ``seed`` and image count, for every layer, and as the KS job's).
    """
    if reference not in conditions:
        raise ValueError(f"reference condition {reference!r} not among {list(conditions)}")
    if replicates < 1:
        raise ValueError(f"replicates must be at least 1, got {replicates}")
    images = {maps.shape[0] for maps in conditions.values()}
    if len(images) != 1:
        raise ValueError(f"conditions hold different numbers of images: {sorted(images)}")
    weights = resample_weights(images.pop(), replicates, seed)
    point = {c: border_strengths(m, q) for c, m in conditions.items()}
    boot = {c: _replicate_strengths(m, q, weights) for c, m in conditions.items()}
    frames = [
        _rule_frame(
            rule,
            layer,
            layer_index,
            neurons,
            {c: point[c][r] for c in point},
            {c: boot[c][r] for c in boot},
            reference,
        )
        for r, rule in enumerate(RULES)
    ]
    return pl.concat(frames).with_columns(pl.col("layer_index").cast(pl.Int32)).select(STRENGTH_COLUMNS)


def _replicate_strengths(maps: np.ndarray, q: float, weights: np.ndarray) -> np.ndarray:
    """``(rules, replicates, neurons, 4)``: :func:`border_strengths` of ``maps`` resampled by
    each row of image counts ``weights``, computed as the KS job's bootstrap does
    (:func:`pan.core.bootstrap.bootstrap_strengths`: each image's values weighted by its count,
    no resampled copy sorted again; equal to scoring the resampled maps, to float rounding)."""
    images, neurons, h, w = maps.shape
    if h < 3 or w < 3:  # no centre: every statistic NaN, counted as 0 (as border_strengths)
        return np.zeros((len(RULES), len(weights), neurons, len(BORDERS)))
    return bootstrap_strengths(np.ascontiguousarray(maps), q, weights).transpose(1, 0, 3, 2)


def _rule_frame(
    rule: str,
    layer: str,
    layer_index: int,
    neurons: Sequence[int],
    point: Mapping[str, np.ndarray],
    boot: Mapping[str, np.ndarray],
    reference: str,
) -> pl.DataFrame:
    """One rule's rows of :func:`strength_table` from its point strengths (condition ->
    ``(neurons, 4)``) and bootstrap strengths (condition -> ``(replicates, neurons, 4)``)."""
    tails = ((1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2)
    frames = []
    for condition in point:
        lo, hi = np.quantile(boot[condition], tails, axis=0)
        change = boot[condition] - boot[reference]
        change_lo, change_hi = np.quantile(change, tails, axis=0)
        gap_lo, gap_hi = np.quantile(boot[condition] - boot[condition][..., MIRRORED], tails, axis=0)
        columns = {
            "strength": point[condition],
            "lo": lo,
            "hi": hi,
            "change": point[condition] - point[reference],
            "change_lo": change_lo,
            "change_hi": change_hi,
            "mirror_gap": point[condition] - point[condition][:, MIRRORED],
            "mirror_gap_lo": gap_lo,
            "mirror_gap_hi": gap_hi,
        }
        frames.append(
            pl.DataFrame(
                {
                    "rule": rule,
                    "layer": layer,
                    "layer_index": layer_index,
                    "neuron": np.repeat(np.asarray(neurons, dtype=np.int32), len(BORDERS)),
                    "border": list(BORDERS) * len(neurons),
                    "condition": condition,
                    **{name: values.ravel() for name, values in columns.items()},
                }
            )
        )
    return pl.concat(frames)


def plausible(strength: float, lo: float, hi: float, theta: float) -> set[bool]:
    """The outcomes of "strength > theta" that the point estimate and its interval allow:
    ``{True}`` or ``{False}`` when all three agree (a confident decision), else both."""
    return {value > theta for value in (strength, lo, hi)}


def capture_channels(
    model: torch.nn.Module,
    channels: Mapping[str, Sequence[int]],
    batches: Iterator[torch.Tensor],
    device: torch.device,
    prepare: Callable[[torch.Tensor], torch.Tensor] = lambda batch: batch,
    on_batch: Callable[[int], None] = lambda n: None,
) -> dict[str, np.ndarray]:
    """``layer -> (images, len(channels[layer]), H, W)``: the given output channels of analysed
    layers of ``model`` over ``batches`` (each passed through ``prepare`` on ``device`` first).
    Hooks only: ``model`` is left as it was."""
    import torch

    from pan.capture.inference import full_float32

    kept: dict[str, list[np.ndarray]] = {name: [] for name in channels}
    handles = []
    try:
        for name, picked in channels.items():
            index = torch.as_tensor(list(picked), dtype=torch.long)

            def hook(module, inputs, output, name=name, index=index):
                kept[name].append(
                    output.detach().index_select(1, index.to(output.device)).float().cpu().numpy()
                )

            handles.append(model.get_submodule(name).register_forward_hook(hook))
        with torch.inference_mode(), full_float32():
            for batch in batches:
                model(prepare(batch.to(device)))
                on_batch(len(batch))
    finally:
        for handle in handles:
            handle.remove()
    return {name: np.concatenate(parts) for name, parts in kept.items()}


def probe_strengths(
    net: torch.nn.Module,
    records: Sequence,
    transform: Callable,
    labels: pl.DataFrame,
    micro_batch: int,
    passes: Callable[..., Mapping[str, Mapping[str, np.ndarray]]],
    what: tuple[int, str],
    device: str = "auto",
    replicates: int = DEFAULT_REPLICATES,
    seed: int = DEFAULT_SEED,
    q: float = DEFAULT_SHARE,
    progress: TextIO | None = None,
    threads: int = 1,
) -> pl.DataFrame:
    """:data:`STRENGTH_COLUMNS` of the PANs of ``labels`` (:func:`pan_channels`: both rules') under
    the conditions ``passes`` produces, over ``records`` preprocessed by ``transform``; the
    layers' strengths and intervals are computed on ``threads`` threads (the same table).

    ``passes(net, pans, batches, device, on_batch)`` runs the forward passes and returns
    ``condition -> layer -> (images, len(neurons), H, W)`` (``pans``: :func:`pan_channels`), the
    reference condition of ``change`` first; it leaves ``net`` (moved to the device, in eval
    mode) as it was. ``what``: the number of passes over the batch and the progress bar's name."""
    from pan.capture.inference import pick_device, preprocessed_batches
    from pan.logs import image_progress

    pans = pan_channels(labels)
    if not pans:
        return pl.DataFrame(schema=STRENGTH_SCHEMA)
    target = pick_device(device)
    net = net.to(target).eval()
    batches = list(preprocessed_batches(records, transform, micro_batch))
    count, name = what
    bar = image_progress(count * len(records), name, progress)
    maps = passes(net, pans, batches, target, bar.update)
    bar.close()
    reference = next(iter(maps))

    def layer_table(layer: str) -> pl.DataFrame:
        index, neurons = pans[layer]
        conditions = {c: m[layer] for c, m in maps.items()}
        return strength_table(layer, index, neurons, conditions, replicates, seed, reference, q)

    with ThreadPoolExecutor(max(1, threads), thread_name_prefix="probe") as pool:
        return pl.concat(list(pool.map(layer_table, pans)))


def configured_strengths(
    strengths: Callable[..., pl.DataFrame],
    model,
    images,
    labels: pl.DataFrame,
    micro_batch: int,
    device: str,
    replicates: int,
    seed: int,
    q: float,
    threads: int,
) -> pl.DataFrame:
    """``strengths`` (a probe: :func:`pan.beyond.origin.origin_strengths`,
    :func:`pan.beyond.flip.flip_strengths`) of the configured ``model`` (a ModelSpec) on the
    images of ``images`` (an ImageSpec)."""
    from pan.capture.images import image_records
    from pan.capture.models import load_model

    loaded = load_model(model)
    return strengths(
        loaded.model,
        image_records(images),
        loaded.transform,
        labels,
        micro_batch,
        device,
        replicates,
        seed,
        q=q,
        threads=threads,
    )


def per_rule(tables: Mapping[str, pl.DataFrame]) -> list[tuple[tuple[str, str], pl.DataFrame]]:
    """``((model, rule), rows)`` of each model's per-border table (a ``rule`` column) and each rule
    of :data:`pan.core.labelling.RULES`, in that order: a rule without rows has no PAN."""
    return [
        ((model, rule), table.filter(pl.col("rule") == rule))
        for model, table in tables.items()
        for rule in RULES
    ]
