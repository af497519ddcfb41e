"""KS scoring with torch, for a GPU: the algorithm of :mod:`pan.core.ks`, to the same bits.

Each neuron's centre is sorted (``torch.sort``), each border too, and ``torch.searchsorted``
of the sorted border in the sorted centre counts the centre values ``<`` (``right=False``)
and ``<=`` (``right=True``) each border value; -0.0 ties with 0.0 in both. The counts are
exact integers, so they equal the numpy ones, and the statistics are made from them with the
float64 operations of :func:`pan.core.ks.cdf_statistics`, each correctly rounded by IEEE-754 on
any device: ``count / n``, a difference, a max or min per row (over values that are never
-0.0), then numpy's ``clip`` and ``maximum`` spelled out so that a zero keeps numpy's sign.

Layers are cut into chunks of neurons that fit a memory budget, so any layer fits a GPU.
Only :mod:`pan.core.scoring` (``device="cuda"``/``"auto"``) and tests import this module; the CPU
scoring path never imports torch.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from pan.core.ks import BorderKS, _as_float32, nan_result, share_size

__all__ = [
    "BYTES_PER_BORDER_VALUE",
    "BYTES_PER_CENTRE_VALUE",
    "CPU_MEMORY_BYTES",
    "borders_ks",
    "cdf_statistics",
    "chunk_neurons",
    "default_memory_bytes",
    "score_chunks",
    "torch_device",
]

BYTES_PER_CENTRE_VALUE = 40
"""GPU bytes per centre value of a chunk: the map itself, the centre copy, the sort's values,
int64 indices and their scratch buffers."""

BYTES_PER_BORDER_VALUE = 96
"""GPU bytes per border value: its sort, two int64 counts and the float64 CDF arrays."""

CPU_MEMORY_BYTES = 1 << 28
"""Default budget when the torch path runs on the CPU (tests)."""


def torch_device(device: str) -> str:
    """The device that :func:`pan.core.scoring.resolve_device` resolves to when torch is asked
    for: ``"torch-cpu"`` as given; a CUDA device when torch sees a GPU; ``"auto"`` without one
    is ``"cpu"`` (numpy)."""
    if device == "torch-cpu":
        return device
    if torch.cuda.is_available():
        return "cuda" if device == "auto" else device
    if device == "auto":
        return "cpu"
    raise RuntimeError(f"device={device!r} asked for, but torch sees no CUDA GPU")


def default_memory_bytes(device: torch.device) -> int:
    """Half the free memory of a CUDA ``device``; :data:`CPU_MEMORY_BYTES` elsewhere."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 2
    return CPU_MEMORY_BYTES


def chunk_neurons(shape: Sequence[int], memory_bytes: int) -> int:
    """Neurons of maps ``(images, neurons, H, W)`` scored at once within ``memory_bytes``
    (at least one)."""
    n, c, h, w = shape
    centre = n * max(h - 2, 0) * max(w - 2, 0)
    per_neuron = 4 * n * h * w + BYTES_PER_CENTRE_VALUE * centre + BYTES_PER_BORDER_VALUE * n * 2 * (h + w)
    return int(max(1, min(c, memory_bytes // max(1, per_neuron))))


def score_chunks(
    maps: np.ndarray | torch.Tensor,
    device: str | torch.device = "cuda",
    memory_bytes: int | None = None,
    q: float | None = None,
) -> list[tuple[int, list[BorderKS]]]:
    """``(first neuron, [T, B, L, R results])`` per chunk of neurons of ``maps``
    ``(images, neurons, H, W)``, scored on ``device`` (numpy arrays or tensors anywhere); with
    a share ``q`` also the share rule's statistics."""
    device = torch.device(device)
    n, c, h, w = maps.shape
    step = chunk_neurons(maps.shape, memory_bytes or default_memory_bytes(device))
    chunks = []
    for start in range(0, c, step):
        chunk = _float32_tensor(maps[:, start : start + step]).to(device)
        centre = chunk[:, :, 1:-1, 1:-1].permute(1, 0, 2, 3).reshape(chunk.shape[1], -1)
        borders = [
            chunk[:, :, 0, :].permute(1, 0, 2).reshape(chunk.shape[1], -1),
            chunk[:, :, -1, :].permute(1, 0, 2).reshape(chunk.shape[1], -1),
            chunk[:, :, :, 0].permute(1, 0, 2).reshape(chunk.shape[1], -1),
            chunk[:, :, :, -1].permute(1, 0, 2).reshape(chunk.shape[1], -1),
        ]
        chunks.append((start, borders_ks(borders, centre, q=q)))
        del chunk, centre, borders
    return chunks


def borders_ks(
    borders: Sequence[np.ndarray | torch.Tensor],
    centre: np.ndarray | torch.Tensor,
    device: str | torch.device | None = None,
    q: float | None = None,
) -> list[BorderKS]:
    """:func:`pan.core.ks.borders_ks` of raw ``(neurons, values)`` samples, computed with torch on
    ``device`` (default: where ``centre`` lies), with the share rule's statistics for a share
    ``q``. Inputs are never modified."""
    centre = _float32_tensor(centre)
    device = torch.device(device) if device is not None else centre.device
    centre = centre.to(device)
    borders = [_float32_tensor(b).to(device) for b in borders]
    for border in borders:
        if border.ndim != 2 or centre.ndim != 2:
            raise ValueError(
                f"expected (neurons, values), got {tuple(border.shape)} and {tuple(centre.shape)}"
            )
        if border.shape[0] != centre.shape[0]:
            raise ValueError(f"{border.shape[0]} border neurons against {centre.shape[0]} centre ones")
    if any(bool(torch.isnan(x).any()) for x in (centre, *borders)):
        raise ValueError("samples contain NaN; KS statistics are undefined")
    neurons, n2 = centre.shape
    if n2 == 0:
        return [nan_result(neurons, b.shape[1], n2, q) for b in borders]
    # + 0.0 turns -0.0 into 0.0 (and copies): the sort then holds one zero, as numpy's keys do.
    ordered = torch.sort(centre + 0.0, dim=1).values
    results = []
    for border in borders:
        values = torch.sort(border + 0.0, dim=1).values
        at_most = torch.searchsorted(ordered, values, right=True)
        below = torch.searchsorted(ordered, values, right=False)
        results.append(cdf_statistics(at_most, below, values.shape[1], n2, q))
    return results


def cdf_statistics(
    centre_le: torch.Tensor, centre_lt: torch.Tensor, n1: int, n2: int, q: float | None = None
) -> BorderKS:
    """:func:`pan.core.ks.cdf_statistics` in torch: the same float64 operations, the same bits."""
    device = centre_le.device
    f64 = torch.float64
    x_at = _ratio(torch.arange(1, n1 + 1, dtype=f64, device=device), n1)
    x_below = _ratio(torch.arange(n1, dtype=f64, device=device), n1)
    k = min(n1, n2)

    largest = _largest(x_at, _ratio(centre_le.to(f64), n2))
    smallest = _smallest(x_below, _ratio(centre_lt.to(f64), n2))
    ks = torch.where(largest > smallest, largest, smallest)  # np.maximum: the second on ties
    stats = [ks, *_truncated(centre_le, centre_lt, x_at, x_below, n2, k)]
    m = share_size(n2, q) if q is not None else 0
    if q is not None:
        stats += _truncated(centre_le, centre_lt, x_at, x_below, n2, m)
    out = [t.cpu().numpy() for t in stats]
    if q is None:
        return BorderKS(out[0], out[1], out[2], n1, n2)
    return BorderKS(out[0], out[1], out[2], n1, n2, out[3], out[4], m)


def _truncated(
    centre_le: torch.Tensor,
    centre_lt: torch.Tensor,
    x_at: torch.Tensor,
    x_below: torch.Tensor,
    n2: int,
    k: int,
) -> list[torch.Tensor]:
    """KS+ and KS- against the top and bottom ``k`` of the centre."""
    f64 = torch.float64
    ks_plus = _smallest(x_below, _ratio(torch.clamp(centre_lt - (n2 - k), min=0).to(f64), k))
    ks_minus = _largest(x_at, _ratio(torch.clamp(centre_le, max=k).to(f64), k))
    return [ks_plus, ks_minus]


def _ratio(counts: torch.Tensor, n: int) -> torch.Tensor:
    """``counts / n``, correctly rounded as numpy's: the divisor is a tensor on the counts'
    device, since CUDA divides by a CPU scalar as a multiplication by its reciprocal."""
    return counts / torch.tensor(float(n), dtype=counts.dtype, device=counts.device)


def _largest(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x - y).amax(dim=1)


def _smallest(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """numpy's ``clip(-min, 0, 1)``: values below 0 become +0.0, -0.0 stays -0.0."""
    value = -(x - y).amin(dim=1)
    value = torch.where(value < 0, torch.zeros_like(value), value)
    return torch.where(value > 1, torch.ones_like(value), value)


def _float32_tensor(values: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A float32 tensor of ``values`` (no copy when it is one), rejecting values that float32
    does not hold exactly, as :mod:`pan.core.ks` does."""
    if isinstance(values, torch.Tensor):
        if values.dtype == torch.float32:
            return values
        single = values.to(torch.float32)
        back = single.to(values.dtype)
        if not bool(((back == values) | (torch.isnan(back) & torch.isnan(values))).all()):
            raise TypeError(
                f"KS scoring works on float32 values; {values.dtype} values here are not exact in float32"
            )
        return single
    values = np.ascontiguousarray(_as_float32(np.asarray(values)))
    with warnings.catch_warnings():  # read-only arrays (Parquet reads): never written to here
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(values)
