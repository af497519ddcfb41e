"""pan: find Padding Aware Neurons (PANs) in CNNs and measure the padding bias they carry.

Reproduces and extends "Padding Aware Neurons" (Garcia-Gasulla, Gimenez-Abalos,
Martin-Torres; ICCV 2023 workshops). The public surface, for notebooks:

- :func:`find_pans`: label every neuron of a model in memory (the §3 method end to end);
- :func:`border_ks`: KS, KS+ and KS- of border against centre samples, many neurons at once;
- :func:`label_pans`: PAN labels and types from KS tables, for any theta;
- :func:`with_reflect_padding`: a variant of a model whose chosen channels pad with reflect
  (the §4 ``reflect``, ``pan_reflect`` and ``rand_reflect`` models);
- :func:`analysed_layers`, :data:`BORDERS`, :data:`PAN_TYPES`.

Each paper concept lives in one module (docs/method.md): :mod:`pan.core.borders`, :mod:`pan.core.ks`,
:mod:`pan.core.labelling`, :mod:`pan.capture.padding`, :mod:`pan.bias.variants`, :mod:`pan.bias.odds`, ...
Names load on first use: ``import pan`` alone costs no torch import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pan.api import find_pans
    from pan.bias.reflect import with_reflect_padding
    from pan.capture.layers import analysed_layers
    from pan.core.borders import BORDERS
    from pan.core.ks import BorderKS, border_ks
    from pan.core.labelling import PAN_TYPES, label_pans

__version__ = "0.1.0"
_PUBLIC = {
    "BORDERS": "core.borders",
    "PAN_TYPES": "core.labelling",
    "BorderKS": "core.ks",
    "analysed_layers": "capture.layers",
    "border_ks": "core.ks",
    "find_pans": "api",
    "label_pans": "core.labelling",
    "with_reflect_padding": "bias.reflect",
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
    """Load the public names on first use, so that ``import pan.core.scoring`` (a KS job) loads no torch."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'pan' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
