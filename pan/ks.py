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
2. scipy takes the largest and the smallest difference of the two empirical CDFs over the
   pooled sample. The largest is reached at a border value, the smallest just below one (or
   is 0), so both are found from the border values alone. With the border sorted, the
   ``i``-th value (0-based) has at most ``i + 1`` border values ``<=`` it and at least ``i``
   ``<`` it, with equality at the last and the first of a run of ties: exactly where each
   extreme of the run lies. Counts are exact integers and CDFs are ``count / n``, as in scipy.
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
        self.keys = _tagged_keys(ordered)

    @classmethod
    def from_sorted(cls, ordered: np.ndarray) -> SortedSamples:
        """Samples from float32 rows that are already sorted (e.g. kept by a caller that scores
        many borders against one centre: half the memory of the keys); ``ordered`` is unchanged."""
        samples = cls.__new__(cls)
        samples.neurons, samples.size = ordered.shape
        samples.keys = _tagged_keys(np.array(ordered, dtype=np.float32))
        return samples

    def counts_below(self, other: SortedSamples) -> tuple[np.ndarray, np.ndarray]:
        """For every value of ``other`` (same neurons), how many values of its neuron here are
        ``<=`` and ``<`` it: two ``(neurons, other.size)`` arrays in ``other``'s order."""
        keys = other.keys
        below = np.searchsorted(self.keys, keys, side="left")
        at_most = below.copy()
        if len(self.keys):  # a second search only for keys that this sample holds too (ties)
            tied = np.flatnonzero(self.keys[np.minimum(below, len(self.keys) - 1)] == keys)
            at_most[tied] = np.searchsorted(self.keys, keys[tied], side="right")
        offsets = np.arange(self.neurons, dtype=np.int64)[:, None] * self.size
        shape = (self.neurons, -1)
        return at_most.reshape(shape) - offsets, below.reshape(shape) - offsets


def _tagged_keys(ordered: np.ndarray) -> np.ndarray:
    """Neuron-tagged ``uint64`` keys of row-sorted float32 ``ordered`` (consumed), flattened."""
    keys = _order_keys(ordered).astype(np.uint64)
    keys |= np.arange(ordered.shape[0], dtype=np.uint64)[:, None] << np.uint64(32)
    return keys.ravel()


def _as_float32(values: np.ndarray) -> np.ndarray:
    """Activations are float32; other dtypes are accepted when float32 holds them exactly."""
    single = values.astype(np.float32, copy=False)
    if values.dtype != np.float32 and not np.array_equal(single, values, equal_nan=True):
        raise TypeError(
            f"KS scoring works on float32 values; {values.dtype} values here are not exact in float32"
        )
    return single


def _order_keys(values: np.ndarray) -> np.ndarray:
    """``uint32`` keys that order like the float32 ``values``, ties kept as ties.

    -0.0 becomes +0.0 first (they tie, as in scipy). IEEE-754: flipping every bit of a
    negative and the sign bit of a positive orders as unsigned. Works in place: ``values``
    is consumed.
    """
    values += np.float32(0.0)
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

    Example::

        >>> import numpy as np
        >>> from pan import border_ks
        >>> from pan.borders import border_samples, centre_samples
        >>> maps = np.random.default_rng(0).normal(size=(8, 4, 12, 12)).astype(np.float32)
        >>> maps[:, 0, 0, :] += 10  # neuron 0 fires on its top row: a T PAN
        >>> stats = border_ks(border_samples(maps)["T"], centre_samples(maps))
        >>> float(stats.ks[0]), float(stats.ks_plus[0])
        (1.0, 1.0)
    """
    border = border if isinstance(border, SortedSamples) else SortedSamples(border)
    centre = centre if isinstance(centre, SortedSamples) else SortedSamples(centre)
    if border.neurons != centre.neurons:
        raise ValueError(f"{border.neurons} border neurons against {centre.neurons} centre ones")
    n1, n2 = border.size, centre.size
    if n2 == 0:
        nan = np.full(border.neurons, np.nan)
        return BorderKS(nan, nan.copy(), nan.copy(), n1, n2)

    # Border CDF at (up to ties, see step 2) and just below each sorted border value.
    x_at, x_below = np.arange(1, n1 + 1) / n1, np.arange(n1) / n1
    centre_le, centre_lt = centre.counts_below(border)
    k = min(n1, n2)  # the truncated centre cannot be larger than the centre
    cut = n2 - k  # values of the centre below its top k

    largest = _largest(x_at, centre_le / n2)
    smallest = _smallest(x_below, centre_lt / n2)
    ks = np.maximum(largest, smallest)  # two-sided
    np.subtract(centre_lt, cut, out=centre_lt)
    ks_plus = _smallest(x_below, np.maximum(centre_lt, 0, out=centre_lt) / k)  # "less"
    ks_minus = _largest(x_at, np.minimum(centre_le, k, out=centre_le) / k)  # "greater"
    return BorderKS(ks, ks_plus, ks_minus, n1, n2)


def _largest(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """scipy's ``max(cdf1 - cdf2)`` per row, from both CDFs at the border values."""
    return np.subtract(x, y, out=y).max(axis=1)


def _smallest(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """scipy's ``clip(-min(cdf1 - cdf2), 0, 1)`` per row, from both CDFs just below the border
    values (the difference at the top of the pooled sample is 0)."""
    return np.clip(-np.subtract(x, y, out=y).min(axis=1), 0, 1)
