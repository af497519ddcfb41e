"""Kolmogorov-Smirnov statistics of border against centre samples, for many neurons at once.

For one neuron and one border (paper §3.1-3.2), with ``k`` the number of border values:

- ``KS``  = ``ks_2samp(border, centre)``, two-sided;
- ``KS+`` = ``ks_2samp(border, top_k(centre), alternative="less")``;
- ``KS-`` = ``ks_2samp(border, bottom_k(centre), alternative="greater")``.

The statistics equal :func:`scipy.stats.ks_2samp` to the last bit (up to scipy's rounding
to a multiple of ``1/lcm(n1, n2)`` in its exact mode), but every neuron of a layer is scored
with a handful of array operations instead of a per-neuron loop:

1. Each neuron's values are sorted (one row-wise ``np.sort``) and become ``uint64`` keys whose
   high 32 bits are the neuron index and low 32 bits an order-preserving image of the value:
   one globally sorted array, so one ``np.searchsorted`` counts, for each border value of
   every neuron, the centre values of the same neuron below it.
2. The empirical CDF difference only needs to be evaluated at the border values (where it is
   largest) and just below them (where it is smallest); the counts are exact integers and the
   CDFs are formed as ``count / n`` exactly as scipy does.
3. Counts against the truncated centres follow from the full counts: the top ``k`` values hold
   ``max(count - (n_centre - k), 0)`` of the values below a point, the bottom ``k`` values
   ``min(count, k)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_SIGN = np.uint32(0x80000000)


class SortedSamples:
    """One sample per neuron, stored as sorted neuron-tagged keys (see module docstring)."""

    def __init__(self, values: np.ndarray, overwrite: bool = False):
        """``overwrite=True`` lets a float32 ``values`` array be sorted in place (no copy)."""
        values = np.asarray(values)
        if values.ndim != 2:
            raise ValueError(f"expected (neurons, values), got shape {values.shape}")
        self.neurons, self.size = values.shape
        # Sorting float32 rows is SIMD-fast; the keys of sorted rows come out globally sorted.
        ordered = _as_float32(values)
        if ordered is values and not overwrite:
            ordered = ordered.copy()
        ordered.sort(axis=1)
        if self.size and np.isnan(ordered[:, -1]).any():  # NaNs sort last
            raise ValueError("samples contain NaN; KS statistics are undefined")
        ordered += np.float32(0.0)  # -0.0 becomes +0.0: they tie, as in scipy
        keys = np.empty((self.neurons, self.size), dtype=np.uint64)
        halves = keys.view(np.uint32).reshape(self.neurons, self.size, 2)  # little-endian: low, high
        halves[..., 0] = _order_keys(ordered)
        halves[..., 1] = np.arange(self.neurons, dtype=np.uint32)[:, None]
        self.keys = keys.ravel()

    def runs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Runs of equal keys: their starts and ends, and the run of every key.

        Runs never cross neurons (keys are neuron-tagged).
        """
        starts_run = np.empty(len(self.keys), dtype=bool)
        starts_run[:1] = True
        np.not_equal(self.keys[1:], self.keys[:-1], out=starts_run[1:])
        run_starts = np.flatnonzero(starts_run)
        run_ends = np.append(run_starts[1:], len(self.keys))
        return run_starts, run_ends, np.cumsum(starts_run) - 1

    def counts_below(self, keys: np.ndarray, neuron: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per key of ``neuron``, how many of that neuron's values are ``<=`` and ``<`` it."""
        below = np.searchsorted(self.keys, keys, side="left")
        at_most = below.copy()
        if len(self.keys):  # a second search only for keys that this sample holds too (ties)
            tied = np.flatnonzero(self.keys[np.minimum(below, len(self.keys) - 1)] == keys)
            at_most[tied] = np.searchsorted(self.keys, keys[tied], side="right")
        offsets = neuron * self.size
        return at_most - offsets, below - offsets


def _as_float32(values: np.ndarray) -> np.ndarray:
    """Activations are float32; other dtypes are accepted when float32 holds them exactly."""
    single = values.astype(np.float32, copy=False)
    if values.dtype != np.float32 and not np.array_equal(single, values, equal_nan=True):
        raise TypeError(
            f"KS scoring works on float32 values; {values.dtype} values here are not exact in float32"
        )
    return single


def _order_keys(values: np.ndarray) -> np.ndarray:
    """``uint32`` keys that order like the float32 ``values`` (no -0.0), ties kept as ties.

    IEEE-754: flipping every bit of a negative and the sign bit of a positive orders as
    unsigned. Works in place: ``values`` is consumed.
    """
    bits = values.view(np.uint32)
    flip = bits >> np.uint32(31)  # 1 for negatives
    np.negative(flip, out=flip)  # 0xFFFFFFFF for negatives, 0 otherwise
    flip |= _SIGN
    bits ^= flip
    return bits


@dataclass(frozen=True)
class BorderKS:
    """KS, KS+ and KS- of one border against the centre, one value per neuron."""

    ks: np.ndarray
    ks_plus: np.ndarray
    ks_minus: np.ndarray
    n_border: int
    n_centre: int


def border_ks(border: np.ndarray | SortedSamples, centre: np.ndarray | SortedSamples) -> BorderKS:
    """KS, KS+ and KS- of ``border`` against ``centre``, both ``(neurons, values)``.

    Pass a :class:`SortedSamples` centre to reuse one sort for the four borders of a layer.
    With an empty centre (feature maps below 3x3) every statistic is NaN.
    """
    border = border if isinstance(border, SortedSamples) else SortedSamples(border)
    centre = centre if isinstance(centre, SortedSamples) else SortedSamples(centre)
    if border.neurons != centre.neurons:
        raise ValueError(f"{border.neurons} border neurons against {centre.neurons} centre ones")
    n1, n2, shape = border.size, centre.size, (border.neurons, border.size)
    if n2 == 0:
        nan = np.full(border.neurons, np.nan)
        return BorderKS(nan, nan.copy(), nan.copy(), n1, n2)

    neuron = np.repeat(np.arange(border.neurons, dtype=np.int64), n1)  # of each border key
    run_starts, run_ends, run = border.runs()  # tied border values are counted once
    offsets = neuron * n1
    border_le, border_lt = (
        (run_ends[run] - offsets).reshape(shape),
        (run_starts[run] - offsets).reshape(shape),
    )
    le, lt = centre.counts_below(border.keys[run_starts], neuron[run_starts])
    centre_le, centre_lt = le[run].reshape(shape), lt[run].reshape(shape)

    # Empirical CDFs formed exactly as scipy does (count / n), at and just below each border value.
    x_at, x_below = border_le / n1, border_lt / n1
    k = min(n1, n2)  # the truncated centre cannot be larger than the centre
    cut = n2 - k  # values of the centre below its top k
    ks = _statistic(x_at, x_below, centre_le / n2, centre_lt / n2, "two-sided")
    top_le, top_lt = np.maximum(centre_le - cut, 0), np.maximum(centre_lt - cut, 0)
    ks_plus = _statistic(x_at, x_below, top_le / k, top_lt / k, "less")
    ks_minus = _statistic(
        x_at, x_below, np.minimum(centre_le, k) / k, np.minimum(centre_lt, k) / k, "greater"
    )
    return BorderKS(ks, ks_plus, ks_minus, n1, n2)


def _statistic(x_at, x_below, y_at, y_below, alternative: str) -> np.ndarray:
    """scipy's ``ks_2samp`` statistic from both CDFs at and just below each border value.

    The CDF difference is largest at a border value and smallest either there or just below
    one, so these points hold both extremes of scipy's difference over the pooled sample.
    """
    at = x_at - y_at
    max_s = at.max(axis=1)
    if alternative == "greater":
        return max_s
    min_s = np.clip(-np.minimum(at.min(axis=1), (x_below - y_below).min(axis=1)), 0, 1)
    if alternative == "less":
        return min_s
    return np.maximum(min_s, max_s)
