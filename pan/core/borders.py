"""Border regions of a feature map (paper §3.1).

The four borders are one pixel wide on their short axis and overlap at the corners: top row
(T), bottom row (B), left column (L), right column (R). The centre is everything else, with no
overlap. These regions are always taken on a layer's *output*: only its first and last
row/column are guaranteed to have the padded area inside the kernel's receptive field.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BORDERS", "BORDER_NAMES", "border_samples", "centre_samples", "region_masks"]

BORDERS: tuple[str, ...] = ("T", "B", "L", "R")
"""Border names in the paper's order; PAN types list their borders in this order."""

BORDER_NAMES: dict[str, str] = {"T": "top", "B": "bottom", "L": "left", "R": "right"}


def region_masks(height: int, width: int) -> dict[str, np.ndarray]:
    """Boolean ``(height, width)`` masks of the regions T, B, L, R and ``"centre"``."""
    masks = {name: np.zeros((height, width), dtype=bool) for name in (*BORDERS, "centre")}
    masks["T"][0, :] = True
    masks["B"][-1, :] = True
    masks["L"][:, 0] = True
    masks["R"][:, -1] = True
    masks["centre"][1:-1, 1:-1] = True
    return masks


def border_samples(maps: np.ndarray) -> dict[str, np.ndarray]:
    """Per-neuron samples of each border from feature maps ``(images, neurons, H, W)``.

    Returns ``{border: (neurons, values)}``, fresh arrays (callers may sort them in place); a
    border holds ``images * W`` (T, B) or ``images * H`` (L, R) values per neuron, corners
    included.
    """
    channels = maps.shape[1]
    rows = {"T": maps[:, :, 0, :], "B": maps[:, :, -1, :]}
    cols = {"L": maps[:, :, :, 0], "R": maps[:, :, :, -1]}
    return {
        name: region.transpose(1, 0, 2).copy().reshape(channels, -1)
        for name, region in {**rows, **cols}.items()
    }


def centre_samples(maps: np.ndarray) -> np.ndarray:
    """Per-neuron centre samples ``(neurons, images * (H-2) * (W-2))``, a fresh array; empty
    below 3x3 maps."""
    centre = maps[:, :, 1:-1, 1:-1]
    return centre.transpose(1, 0, 2, 3).copy().reshape(maps.shape[1], -1)
