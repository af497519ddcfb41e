"""pan: find Padding Aware Neurons (PANs) in CNNs and measure the padding bias they carry.

Reproduces and extends "Padding Aware Neurons" (Garcia-Gasulla, Gimenez-Abalos,
Martin-Torres; ICCV 2023 workshops). The public surface, for notebooks:

- :func:`find_pans`: label every neuron of a model in memory (the §3 method end to end);
- :func:`border_ks`: KS, KS+ and KS- of border against centre samples, many neurons at once;
- :func:`label_pans`: PAN labels and types from KS tables, for any theta;
- :func:`with_reflect_padding`: a variant of a model whose chosen channels pad with reflect
  (the §4 ``reflect``, ``pan_reflect`` and ``rand_reflect`` models);
- :func:`analysed_layers`, :data:`BORDERS`, :data:`PAN_TYPES`.

Each paper concept lives in one module (README, "Layout"): :mod:`pan.borders`, :mod:`pan.ks`,
:mod:`pan.labelling`, :mod:`pan.padding`, :mod:`pan.variants`, :mod:`pan.odds`, ...
Names load on first use: ``import pan`` alone costs no torch import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .api import find_pans
    from .borders import BORDERS
    from .ks import BorderKS, border_ks
    from .labelling import PAN_TYPES, label_pans
    from .layers import analysed_layers
    from .padding import with_reflect_padding

__version__ = "0.1.0"
_PUBLIC = {
    "BORDERS": "borders",
    "PAN_TYPES": "labelling",
    "BorderKS": "ks",
    "analysed_layers": "layers",
    "border_ks": "ks",
    "find_pans": "api",
    "label_pans": "labelling",
    "with_reflect_padding": "padding",
}
__all__ = [
    "BORDERS",
    "PAN_TYPES",
    "BorderKS",
    "analysed_layers",
    "border_ks",
    "find_pans",
    "label_pans",
    "with_reflect_padding",
]


def __getattr__(name: str):
    """Load the public names on first use, so that ``import pan.scoring`` (a KS job) loads no torch."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'pan' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
