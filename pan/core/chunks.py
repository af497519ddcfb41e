"""Work cut into bounded groups: neurons in cache-sized groups, scored by a small thread pool;
layers in memory-sized groups, recorded one forward pass each (:func:`groups_from_back`).

Every per-neuron computation of :mod:`pan.core` (KS statistics, the image bootstrap, reach
lines) is independent across neurons, so a layer is cut into consecutive groups of neurons of
at most :data:`CHUNK_VALUES` centre values: each pass over a group's keys stays in the CPU
cache (twice as fast as whole-layer arrays on big layers) and memory is bounded whatever the
layer. With several threads each gets a few groups (numpy releases the GIL while it sorts and
searches). A neuron's result does not depend on its group, so neither does any table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["CHUNK_VALUES", "groups_from_back", "over_chunks"]

CHUNK_VALUES = 1 << 19
"""Centre values scored at once: a few MB."""

T = TypeVar("T")


def over_chunks(
    score: Callable[[int, int], T],
    neurons: int,
    values_per_neuron: int,
    threads: int = 1,
    chunk_values: int | None = None,
) -> list[T]:
    """``score(start, stop)`` of consecutive groups of neurons, in order: at most
    ``chunk_values`` (default :data:`CHUNK_VALUES`) values each, at least one neuron, and with
    ``threads > 1`` a few groups per thread (so that none waits long for the last one)."""
    step = max(1, (chunk_values or CHUNK_VALUES) // max(1, values_per_neuron))
    if threads > 1:
        step = min(step, -(-neurons // (4 * threads)))
    starts = range(0, neurons, step)
    threads = min(threads, len(starts))
    if threads <= 1:
        return [score(start, start + step) for start in starts]
    with ThreadPoolExecutor(threads, thread_name_prefix="pan-chunks") as pool:
        return list(pool.map(lambda start: score(start, start + step), starts))


def groups_from_back(items: Sequence[T], sizes: Sequence[float], budget: float) -> list[list[T]]:
    """``items`` (layers in depth order, each of its size) cut into consecutive groups of at most
    ``budget`` in all (an item larger than it is a group of its own), filled from the last item
    back: as few groups as filling from the front, but every group before the last ends
    earlier, so a forward pass that records it stops sooner. No items, no groups."""
    groups: list[list[T]] = [[]]
    held = 0.0
    for item, size in zip(reversed(items), reversed(sizes), strict=True):
        if groups[0] and held + size > budget:
            groups.insert(0, [])
            held = 0.0
        groups[0].insert(0, item)
        held += size
    return groups if groups[0] else []
