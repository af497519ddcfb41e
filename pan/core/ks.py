"""Kolmogorov-Smirnov statistics of border against centre samples, for many neurons at once.

For one neuron and one border (paper §3.1-3.2), with ``k`` the number of border values:

- ``KS``  = ``ks_2samp(border, centre)``, two-sided;
- ``KS+`` = ``ks_2samp(border, top_k(centre), alternative="less")``;
- ``KS-`` = ``ks_2samp(border, bottom_k(centre), alternative="greater")``.

The statistics equal :func:`scipy.stats.ks_2samp` to the last bit (up to scipy's rounding
to a multiple of ``1/lcm(n1, n2)`` in its exact mode), but no neuron is scored by a call to
scipy:

1. Each neuron's values are sorted (one row-wise ``np.sort`` of float32) and become ``int32``
   keys that order like the values, with -0.0 and 0.0 one key (they tie, as in scipy). For
   each border value, one ``np.searchsorted`` in its neuron's sorted centre keys counts the
   centre values ``<`` it; only where the centre holds the value itself (a tie) does a second
   search count those ``<=`` it. A neuron's many zero border values (dead units) are
   searched once.
2. scipy takes the largest and the smallest difference of the two empirical CDFs over the
   pooled sample. The largest is reached at a border value, the smallest just below one (or
   is 0), so both are found from the border values alone. With the border sorted, the
   ``i``-th value (0-based) has at most ``i + 1`` border values ``<=`` it and at least ``i``
   ``<`` it, with equality at the last and the first of a run of ties: exactly where each
   extreme of the run lies. Counts are exact integers and CDFs are ``count / n`` in float64,
   as in scipy.
3. Counts against the truncated centres follow from the full counts: the top ``k`` values hold
   ``max(count - (n_centre - k), 0)`` of the values below a point, the bottom ``k`` values
   ``min(count, k)``.

The *share rule* (:func:`share_size`) truncates the centre to a fixed share ``q`` of it instead
of to ``k`` values, so that it keeps the same share at every map size (the paper's ``k`` keeps
about ``1/(H-2)`` of an ``H x W`` map's centre: 0.9 % at 112x112, 28 % at 7x7). With ``q``
given, :func:`border_ks` also returns ``KS+_q = ks_2samp(border, top_m(centre), "less")`` and
``KS-_q = ks_2samp(border, bottom_m(centre), "greater")``, ``m = share_size(n_centre, q)``,
from the same counts (step 3 with ``m`` for ``k``).

Counts are integers whatever the search method, so any backend that sorts and counts the
same way and does the float64 arithmetic of step 2-3 gives the same statistics bit for bit
(:mod:`pan.ks_torch` does it with torch, on a GPU).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from pan.core.chunks import over_chunks

__all__ = ["BorderKS", "SortedSamples", "border_ks", "borders_ks", "cdf_statistics"]

_MAGNITUDE = np.int32(0x7FFFFFFF)
_ROW_LOOP = 4096  # rows at least this long get their keys row by row
_ZERO_KEY = np.int32(0)
_MANY_ZEROS = 8  # a neuron with more than 1/8 zero needles has them counted once


class SortedSamples:
    """One sample per neuron, stored as row-wise sorted ``int32`` keys (see module docstring)."""

    def __init__(self, values: np.ndarray, overwrite: bool = False):
        """``overwrite=True`` lets a float32 ``values`` array be sorted in place (no copy)."""
        values = np.asarray(values)
        if values.ndim != 2:
            raise ValueError(f"expected (neurons, values), got shape {values.shape}")
        self.neurons, self.size = values.shape
        ordered = _as_float32(values)
        if ordered is values and not (overwrite and values.flags.c_contiguous):
            ordered = ordered.copy()
        ordered = np.ascontiguousarray(ordered)
        ordered.sort(axis=1)  # SIMD-fast on float32 rows
        if self.size and np.isnan(ordered[:, -1]).any():  # NaNs sort last
            raise ValueError("samples contain NaN; KS statistics are undefined")
        self.keys = _order_keys(ordered)

    @classmethod
    def from_sorted(cls, ordered: np.ndarray) -> SortedSamples:
        """Samples from float32 rows that are already sorted (e.g. kept by a caller that scores
        many borders against one centre); ``ordered`` is unchanged."""
        samples = cls.__new__(cls)
        samples.neurons, samples.size = ordered.shape
        samples.keys = _order_keys(np.array(ordered, dtype=np.float32))
        return samples

    def neuron_range(self, start: int, stop: int) -> SortedSamples:
        """The samples of neurons ``start .. stop`` (a view: no copy, no new sort)."""
        part = SortedSamples.__new__(SortedSamples)
        part.keys = self.keys[start:stop]
        part.neurons, part.size = part.keys.shape
        return part

    def counts_below(self, other: SortedSamples) -> tuple[np.ndarray, np.ndarray]:
        """For every value of ``other`` (same neurons), how many values of its neuron here are
        ``<=`` and ``<`` it: two ``(neurons, other.size)`` arrays in ``other``'s order."""
        if self.size == 0:
            empty = np.zeros((other.neurons, other.size), dtype=np.int64)
            return empty, empty.copy()
        return _counts(self.keys, other.keys)


def _as_float32(values: np.ndarray) -> np.ndarray:
    """Activations are float32; other dtypes are accepted when float32 holds them exactly."""
    single = values.astype(np.float32, copy=False)
    if values.dtype != np.float32 and not np.array_equal(single, values, equal_nan=True):
        raise TypeError(
            f"KS scoring works on float32 values; {values.dtype} values here are not exact in float32"
        )
    return single


def _order_keys(ordered: np.ndarray) -> np.ndarray:
    """``int32`` keys that order like the row-wise sorted float32 ``ordered``, ties kept as
    ties. Works in place: ``ordered`` is consumed.

    IEEE-754: the bits of a float read as a signed integer order the positives right and the
    negatives backwards; flipping the magnitude bits of the negatives turns them round. -0.0
    becomes 0.0 first (they tie, as in scipy).
    """
    bits = ordered.view(np.int32)
    if ordered.shape[1] < _ROW_LOOP:  # short rows (borders): a few whole-array passes
        ordered += np.float32(0.0)  # -0.0 + 0.0 is 0.0
        flip = bits >> 31  # -1 for negatives, 0 otherwise
        flip &= _MAGNITUDE
        bits ^= flip
        return bits
    # Long rows (centres): the negatives are a prefix of a sorted row and the zeros follow
    # them, so only those are touched; the zeros' keys all become 0.
    zero = np.float32(0.0)
    for row, keys in zip(ordered, bits, strict=True):
        # Both searches first: flipping the negatives' bits unsorts them as floats.
        negatives, zeros_end = row.searchsorted(zero, side="left"), row.searchsorted(zero, side="right")
        if negatives:
            keys[:negatives] ^= _MAGNITUDE
        if zeros_end > negatives:
            keys[negatives:zeros_end] = 0
    return bits


def _counts(centre: np.ndarray, needles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre values ``<=`` and ``<`` each needle, neuron by neuron.

    ``centre`` holds sorted ``int32`` keys ``(neurons, n2 > 0)``, ``needles`` any ``int32``
    keys ``(neurons, m)``. A neuron with many zero needles (dead units) has the zeros counted
    once. The second search (``<=``) is made only for the needles that the centre holds too,
    and once when they are all one value.
    """
    neurons, m = needles.shape
    count = np.int32 if centre.shape[1] < np.iinfo(np.int32).max else np.int64  # half the traffic
    at_most = np.empty((neurons, m), dtype=count)
    below = np.empty((neurons, m), dtype=count)
    zero = needles == 0  # the key of 0.0 and -0.0
    many_zeros = np.count_nonzero(zero, axis=1) * _MANY_ZEROS > m
    for row in range(neurons):
        keys, values, le, lt = centre[row], needles[row], at_most[row], below[row]
        where = None
        if many_zeros[row]:
            lt.fill(keys.searchsorted(_ZERO_KEY, side="left"))
            le.fill(keys.searchsorted(_ZERO_KEY, side="right"))
            where = np.flatnonzero(~zero[row])
            values = values[where]
        counts = keys.searchsorted(values, side="left")
        if where is None:
            lt[:] = counts
            le[:] = counts
        else:
            lt[where] = counts
            le[where] = counts
        tied = np.flatnonzero(keys.take(counts, mode="clip") == values)
        if len(tied):
            tied_values = values[tied]
            if tied_values.min() == tied_values.max():
                tied_values = tied_values[0]
            le[tied if where is None else where[tied]] = keys.searchsorted(tied_values, side="right")
    return at_most, below


DEFAULT_SHARE = 0.01
"""The share rule's ``q``: the share of the centre its KS+ and KS- compare a border with."""


def share_size(n_centre: int, q: float) -> int:
    """Values of a centre of ``n_centre`` kept by the share rule: ``round(q * n_centre)``, at
    least 1 (0 for an empty centre)."""
    if not 0 < q <= 1:
        raise ValueError(f"the share q must lie in (0, 1], got {q}")
    return max(1, round(q * n_centre)) if n_centre else 0


@dataclass(frozen=True)
class BorderKS:
    """KS, KS+ and KS- of one border against the centre, one value per neuron; with a share
    ``q`` also KS+ and KS- against the top and bottom ``n_q`` centre values (else ``None``)."""

    ks: np.ndarray
    ks_plus: np.ndarray
    ks_minus: np.ndarray
    n_border: int
    n_centre: int
    ks_plus_q: np.ndarray | None = None
    ks_minus_q: np.ndarray | None = None
    n_q: int = 0


def border_ks(
    border: np.ndarray | SortedSamples, centre: np.ndarray | SortedSamples, q: float | None = None
) -> BorderKS:
    """KS, KS+ and KS- of ``border`` against ``centre``, both ``(neurons, values)``; with a
    share ``q`` also the share rule's KS+ and KS- (module docstring).

    Pass a :class:`SortedSamples` centre to reuse one sort for the four borders of a layer.
    With an empty centre (feature maps below 3x3) every statistic is NaN; an empty border (no
    map has one) is refused: it means the samples were given along the wrong axis.

    Example::

        >>> import numpy as np
        >>> from pan import border_ks
        >>> from pan.core.borders import border_samples, centre_samples
        >>> maps = np.random.default_rng(0).normal(size=(8, 4, 12, 12)).astype(np.float32)
        >>> maps[:, 0, 0, :] += 10  # neuron 0 fires on its top row: a T PAN
        >>> stats = border_ks(border_samples(maps)["T"], centre_samples(maps))
        >>> float(stats.ks[0]), float(stats.ks_plus[0])
        (1.0, 1.0)
    """
    border = border if isinstance(border, SortedSamples) else SortedSamples(border)
    centre = centre if isinstance(centre, SortedSamples) else SortedSamples(centre)
    if border.size == 0:
        raise ValueError(
            f"the border sample is empty (shape ({border.neurons}, 0)); give each neuron's border "
            "values along axis 1, (neurons, values), e.g. pan.borders.border_samples(maps)['T']"
        )
    return borders_ks([border], centre, q)[0]


def borders_ks(
    borders: Sequence[SortedSamples], centre: SortedSamples, q: float | None = None, threads: int = 1
) -> list[BorderKS]:
    """:func:`border_ks` of several borders against one centre, with one search per neuron, in
    cache-sized groups of neurons on ``threads`` threads (:func:`pan.core.chunks.over_chunks`;
    each neuron's statistics do not depend on its group, so the result is the same)."""
    for border in borders:
        if border.neurons != centre.neurons:
            raise ValueError(f"{border.neurons} border neurons against {centre.neurons} centre ones")
    if not centre.size or not centre.neurons:
        return _borders_ks(borders, centre, q)

    def score(start: int, stop: int) -> list[BorderKS]:
        part = [border.neuron_range(start, stop) for border in borders]
        return _borders_ks(part, centre.neuron_range(start, stop), q)

    groups = over_chunks(score, centre.neurons, centre.size, threads)
    if len(groups) == 1:
        return groups[0]
    return [_joined([group[i] for group in groups]) for i in range(len(borders))]


def _joined(parts: Sequence[BorderKS]) -> BorderKS:
    """One :class:`BorderKS` from those of consecutive groups of neurons."""
    first = parts[0]
    return BorderKS(
        **{
            f.name: np.concatenate([getattr(p, f.name) for p in parts])
            if isinstance(getattr(first, f.name), np.ndarray)
            else getattr(first, f.name)
            for f in fields(BorderKS)
        }
    )


def _borders_ks(borders: Sequence[SortedSamples], centre: SortedSamples, q: float | None) -> list[BorderKS]:
    """:func:`borders_ks` of one group of neurons, on the calling thread."""
    n2 = centre.size
    sizes = [border.size for border in borders]
    if n2 == 0:
        return [nan_result(centre.neurons, n1, n2, q) for n1 in sizes]
    needles = borders[0].keys if len(borders) == 1 else np.concatenate([b.keys for b in borders], axis=1)
    centre_le, centre_lt = _counts(centre.keys, needles)
    results, start = [], 0
    for n1 in sizes:
        part = slice(start, start + n1)
        results.append(cdf_statistics(centre_le[:, part], centre_lt[:, part], n1, n2, q))
        start += n1
    return results


def nan_result(neurons: int, n1: int, n2: int, q: float | None = None) -> BorderKS:
    """The statistics against an empty centre: all NaN."""
    nan = np.full(neurons, np.nan)
    if q is None:
        return BorderKS(nan, nan.copy(), nan.copy(), n1, n2)
    return BorderKS(nan, nan.copy(), nan.copy(), n1, n2, nan.copy(), nan.copy(), 0)


def cdf_statistics(
    centre_le: np.ndarray, centre_lt: np.ndarray, n1: int, n2: int, q: float | None = None
) -> BorderKS:
    """Steps 2-3 of the module docstring: the statistics from the centre counts ``<=`` and ``<``
    each sorted border value ``(neurons, n1)``; with a share ``q`` also the share rule's.

    KS+ and KS- differ from the border's own CDF only on a suffix (values above the centre's
    bottom ``n2 - k``) and a prefix (values below its ``k``-th) of the sorted border, found
    for all neurons at once from the column-wise extremes of the (row-wise sorted) counts. The
    rest contributes exactly ``+0.0`` (at the first and at the last border value), so it is
    left out of the arithmetic, not out of the result.
    """
    # Border CDF at (up to ties, see step 2) and just below each sorted border value.
    x_at, x_below = np.arange(1, n1 + 1) / n1, np.arange(n1) / n1
    largest = _largest(x_at, centre_le / n2)
    smallest = _smallest(x_below, centre_lt / n2)
    ks = np.maximum(largest, smallest)  # two-sided
    k = min(n1, n2)  # the truncated centre cannot be larger than the centre
    extremes = centre_lt.max(axis=0), centre_le.min(axis=0)  # the same for every truncation
    ks_plus, ks_minus = _truncated(centre_le, centre_lt, x_at, x_below, n2, k, extremes)
    if q is None:
        return BorderKS(ks, ks_plus, ks_minus, n1, n2)
    m = share_size(n2, q)
    plus_q, minus_q = _truncated(centre_le, centre_lt, x_at, x_below, n2, m, extremes)
    return BorderKS(ks, ks_plus, ks_minus, n1, n2, plus_q, minus_q, m)


def _truncated(
    centre_le: np.ndarray,
    centre_lt: np.ndarray,
    x_at: np.ndarray,
    x_below: np.ndarray,
    n2: int,
    k: int,
    extremes: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """KS+ and KS- against the top and bottom ``k`` of the centre (step 3); ``extremes``: the
    column-wise maximum of ``centre_lt`` and minimum of ``centre_le``."""
    n1 = len(x_at)
    lt_max, le_min = extremes
    cut = n2 - k  # values of the centre below its top k
    # "less": the top k hold max(count - cut, 0) values below a point, none up to column start.
    start = int(np.searchsorted(lt_max, cut, side="right")) if cut else 0
    truncated = np.maximum(centre_lt[:, start:] - cut, 0) / k
    lowest = np.subtract(x_below[start:], truncated, out=truncated).min(axis=1, initial=np.inf)
    if start:  # x_below[0] - 0 / k
        np.minimum(lowest, 0.0, out=lowest)
    ks_plus = np.clip(-lowest, 0, 1)

    # "greater": the bottom k hold min(count, k) values, all k of them from column stop on.
    stop = int(np.searchsorted(le_min, k, side="left"))
    truncated = np.minimum(centre_le[:, :stop], k) / k
    highest = np.subtract(x_at[:stop], truncated, out=truncated).max(axis=1, initial=-np.inf)
    if stop < n1:  # x_at[-1] - k / k
        np.maximum(highest, 0.0, out=highest)
    return ks_plus, highest


def _largest(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """scipy's ``max(cdf1 - cdf2)`` per row, from both CDFs at the border values."""
    return np.subtract(x, y, out=y).max(axis=1)


def _smallest(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """scipy's ``clip(-min(cdf1 - cdf2), 0, 1)`` per row, from both CDFs just below the border
    values (the difference at the top of the pooled sample is 0)."""
    return np.clip(-np.subtract(x, y, out=y).min(axis=1), 0, 1)
