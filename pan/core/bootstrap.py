"""Image-bootstrap intervals of each neuron's border strength, and the interior-line null, in
one pass over a layer's maps (the KS job's second pass; no torch).

A rule's *strength* of a neuron on a border is ``min(KS, max(KS+, KS-))``: the neuron is a PAN
there at theta exactly when the strength exceeds theta (:func:`pan.core.labelling.strength_expr`).
Its sampling uncertainty comes from the images: replicate ``r`` draws the batch's images with
replacement (:func:`resample_weights`, seeded), every statistic is recomputed on the resampled
maps, and the interval is the ``level`` percentile interval over the replicates, per neuron
and border and per neuron (the largest strength over its borders, replicate by replicate).

Nothing is resampled physically. Every image holds the same number of border and centre values,
so a replicate is the original values weighted by how often their image was drawn, and the
resampled samples keep their sizes (``k`` and the share's ``m`` do not change). The centre is
sorted once with the image of each value (an ``int64`` key: the value's order key, then its
image); a replicate's centre counts below each border value are the cumulative weights of the
sorted centre at the positions that :func:`pan.core.ks._counts` found, and the border's CDF the
cumulative weights of the sorted border: one gather and one cumulative sum per value and
replicate, no sort and no search.
"""

from __future__ import annotations

import numpy as np

from pan.core.borders import BORDERS, border_samples, centre_samples
from pan.core.chunks import CHUNK_VALUES, over_chunks
from pan.core.interior import INTERIOR_SCHEMA, interior_ks, interior_table
from pan.core.ks import _MAGNITUDE, SortedSamples, _as_float32, _counts, share_size
from pan.core.scoring import INTERVAL_COLUMNS

__all__ = [
    "DEFAULT_REPLICATES",
    "DEFAULT_BOOTSTRAP_SEED",
    "LEVEL",
    "resample_weights",
    "sorted_with_images",
    "replicate_strengths",
    "bootstrap_strengths",
    "uncertainty_pass",
]

DEFAULT_REPLICATES = 40
"""Bootstrap replicates per KS job (0: no intervals)."""
DEFAULT_BOOTSTRAP_SEED = 0
"""Seed of the replicates' image draws."""
LEVEL = 0.95
"""Coverage of the percentile intervals."""


def resample_weights(images: int, replicates: int, seed: int) -> np.ndarray:
    """``(replicates, images)`` counts: how often each image is drawn in each replicate (each
    row sums to ``images``). The same seed gives the same draws in every layer and job."""
    if replicates < 0:
        raise ValueError(f"replicates must be at least 0, got {replicates}")
    draws = np.random.default_rng(seed).integers(0, images, size=(replicates, images))
    counts = np.zeros((replicates, images), dtype=np.int32)
    for row, drawn in zip(counts, draws, strict=True):
        np.add.at(row, drawn, 1)
    return counts


def sorted_with_images(values: np.ndarray, images: int) -> tuple[SortedSamples, np.ndarray]:
    """The :class:`pan.core.ks.SortedSamples` of ``(neurons, values)`` laid out image by image
    (``images`` equal blocks), and the image of every sorted value (``intp``, same shape)."""
    values = _as_float32(np.asarray(values))
    if np.isnan(values).any():
        raise ValueError("samples contain NaN; KS statistics are undefined")
    keys = (values + np.float32(0.0)).view(np.int32)  # -0.0 + 0.0 is 0.0; a fresh array
    keys ^= (keys >> 31) & _MAGNITUDE  # negatives in order (see pan.core.ks._order_keys)
    neurons, size = keys.shape
    # One int64 per value, its key in the high half and its image in the low half: one sort
    # orders both, and each half is read back through a view, in place (no shifted or masked
    # copies: origin's and flip's whole layers stay smaller).
    combined = keys.astype(np.int64)
    del keys
    combined <<= 32
    combined |= np.repeat(np.arange(images, dtype=np.int64), size // images if images else 0)
    combined.sort(axis=1)
    halves = combined.view(np.int32).reshape(neurons, size, 2)
    low, high = (0, 1) if np.little_endian else (1, 0)
    samples = SortedSamples.__new__(SortedSamples)
    samples.neurons, samples.size = neurons, size
    samples.keys = halves[..., high].copy()
    return samples, halves[..., low].astype(np.intp)


def _truncated(at, below, le_n1, lt_n1, n1: int, n2: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """KS+ and KS- against the top and bottom ``m`` of a weighted centre, from the weighted
    counts (integers: the border's ``at``/``below`` out of ``n1``, the centre's ``le``/``lt``
    out of ``n2``, given times ``n1``). The top ``m`` hold ``max(lt - (n2 - m), 0)`` of the
    centre values below a point, the bottom ``m`` hold ``min(le, m)`` (:mod:`pan.core.ks`,
    step 3); both clippings are left out: where one acts, the difference it would give is at
    most 0, and both statistics are taken at least 0. The same integers, fewer passes."""
    plus = np.subtract(lt_n1, below * m).max(axis=1) - (n2 - m) * n1
    minus = np.subtract(at * m, le_n1).max(axis=1)
    return np.maximum(plus, 0) / (m * n1), np.maximum(minus, 0) / (m * n1)


def replicate_strengths(
    centre_images: np.ndarray,
    borders: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    weights: np.ndarray,
    q: float,
) -> np.ndarray:
    """``(replicates, 2, borders, neurons)`` strengths, paper rule then share rule.

    ``centre_images``: the image of each sorted centre value; ``borders``: per border the image
    of each sorted border value and the centre counts ``<=`` and ``<`` each (positions in the
    sorted centre); ``weights``: :func:`resample_weights`. Counts stay integers (products in int64) and
    each statistic is one division, so no rounding enters before it.
    """
    neurons, n2 = centre_images.shape
    # Neurons in groups of the KS chunks' size, so that each replicate's sums stay in the cache
    # (callers that pass a whole layer, as the origin and flip probes, gain 1.1-2.6x).
    group = max(1, CHUNK_VALUES // (n2 + 1))
    if neurons > group:
        parts = [
            replicate_strengths(
                centre_images[start : start + group], _rows(borders, start, group), weights, q
            )
            for start in range(0, neurons, group)
        ]
        return np.concatenate(parts, axis=3)
    out = np.empty((len(weights), 2, len(borders), neurons))
    # The weighted centre counts are at most n2 times the largest weight: int32, where that fits,
    # halves the traffic of the per-replicate sums; products with them are taken in int64.
    count = np.int32 if n2 * int(weights.max(initial=0)) < _INT32_MAX else np.int64
    cumulative = np.zeros((neurons, n2 + 1), dtype=count)  # column 0: nothing below position 0
    # Positions in the flattened ``cumulative``, found once: one plain ``take`` per replicate.
    rows = (np.arange(neurons, dtype=np.intp) * (n2 + 1))[:, None]
    flat = [(lt + rows, None if np.array_equal(le, lt) else le + rows) for _, le, lt in borders]
    for r, weight in enumerate(weights):
        np.cumsum(weight.astype(count)[centre_images], axis=1, dtype=count, out=cumulative[:, 1:])
        weight = weight.astype(np.int64)
        for b, (border_images, _, _) in enumerate(borders):
            n1 = border_images.shape[1]
            own = weight[border_images]
            at = np.cumsum(own, axis=1)  # border values <= each sorted value (up to ties, see pan.core.ks)
            below = at - own
            lt_flat, le_flat = flat[b]
            lt_w = cumulative.take(lt_flat)
            le_w = cumulative.take(le_flat) if le_flat is not None else lt_w
            lt_n1 = np.multiply(lt_w, n1, dtype=np.int64)
            le_n1 = np.multiply(le_w, n1, dtype=np.int64) if le_flat is not None else lt_n1
            largest = np.subtract(at * n2, le_n1).max(axis=1)
            smallest = np.subtract(lt_n1, below * n2).max(axis=1)
            ks = np.maximum(np.maximum(largest, smallest), 0) / (n1 * n2)
            for i, m in enumerate((min(n1, n2), share_size(n2, q))):
                plus, minus = _truncated(at, below, le_n1, lt_n1, n1, n2, m)
                out[r, i, b] = np.minimum(ks, np.maximum(plus, minus))
    return out


_INT32_MAX = int(np.iinfo(np.int32).max)


def _rows(borders: list[tuple[np.ndarray, ...]], start: int, size: int) -> list[tuple[np.ndarray, ...]]:
    """The ``borders`` of :func:`replicate_strengths` for neurons ``start .. start + size``."""
    return [tuple(array[start : start + size] for array in border) for border in borders]


def bootstrap_strengths(
    maps: np.ndarray,
    q: float,
    weights: np.ndarray,
    centre: tuple[SortedSamples, np.ndarray] | None = None,
) -> np.ndarray:
    """``(replicates, 2, 4, neurons)`` strengths of maps ``(images, neurons, H, W)`` (paper
    rule then share rule; borders T B L R) under the image draws ``weights``; ``centre``: the
    maps' :func:`sorted_with_images` centre, when the caller has it."""
    images = maps.shape[0]
    centre, centre_images = centre or sorted_with_images(centre_samples(maps), images)
    borders = []
    for values in border_samples(maps).values():
        border, border_images = sorted_with_images(values, images)
        le, lt = _counts(centre.keys, border.keys)
        borders.append((border_images, le, lt))
    return replicate_strengths(centre_images, borders, weights, q)


def _percentiles(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    tail = (1 - LEVEL) / 2
    return np.quantile(values, tail, axis=axis), np.quantile(values, 1 - tail, axis=axis)


def _chunk_pass(chunk: np.ndarray, q: float, weights: np.ndarray) -> tuple[dict[str, np.ndarray], list]:
    """Intervals ``{column: (borders, neurons)}`` and the interior lines' statistics of a chunk."""
    n, c, h, w = chunk.shape
    centre, centre_images = sorted_with_images(centre_samples(chunk), n)
    interior = interior_ks(chunk, centre, q) if centre.size else []
    intervals: dict[str, np.ndarray] = {}
    if len(weights) and centre.size:
        strengths = bootstrap_strengths(chunk, q, weights, (centre, centre_images))
        for i, x in enumerate(("", "_q")):
            lo, hi = _percentiles(strengths[:, i])
            intervals[f"strength{x}_lo"], intervals[f"strength{x}_hi"] = lo, hi
            lo, hi = _percentiles(strengths[:, i].max(axis=1))
            intervals[f"neuron_strength{x}_lo"] = np.broadcast_to(lo, (len(BORDERS), c))
            intervals[f"neuron_strength{x}_hi"] = np.broadcast_to(hi, (len(BORDERS), c))
    else:
        intervals = {name: np.full((len(BORDERS), c), np.nan) for name in INTERVAL_COLUMNS}
    return intervals, interior


def uncertainty_pass(
    maps: np.ndarray,
    layer: str,
    layer_index: int,
    q: float,
    weights: np.ndarray,
    threads: int = 1,
    chunk_values: int | None = None,
):
    """The bootstrap intervals of every neuron and border of ``maps`` ``(images, neurons, H,
    W)`` (``{column: (neurons * 4,)}`` in the KS table's row order: neuron, then T B L R) and
    the layer's interior-line rows (:data:`pan.core.interior.INTERIOR_SCHEMA`)."""
    n, c, h, w = maps.shape

    def run(start: int, stop: int):
        return start, *_chunk_pass(maps[:, start:stop], q, weights)

    done = over_chunks(run, c, n * max(h - 2, 0) * max(w - 2, 0), threads, chunk_values)
    # (borders, neurons) per chunk -> neuron-major rows, T B L R within a neuron
    intervals = {
        name: np.concatenate([parts[name].T for _, parts, _ in done]).reshape(-1) for name in INTERVAL_COLUMNS
    }
    lines = [(start, found) for start, _, found in done if found]
    interior = interior_table(lines, layer, layer_index, h, w) if lines else INTERIOR_SCHEMA.empty_table()
    return intervals, interior
