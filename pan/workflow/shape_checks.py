"""Checks on a model's layer shapes (:func:`pan.workflow.resources.layer_shapes`) before the
jobs that would fail or score nothing on them.

- Reflect padding mirrors the map it pads, so each amount must be smaller than the side it
  pads (``F.pad(mode="reflect")``). The reflect control, the §4 variants, origin's own-reflect
  passes, the zero-line attack's variants, the PAN cards and the exports all pad every
  analysed zero-padded conv (or any of them) with reflect: :func:`check_reflect_fits` refuses
  a model with a conv whose padding is not smaller than its input, naming the layer, its input
  size, its padding and the fix, while the DAG is built, not minutes into a job.
- Maps below 3x3 have no centre to compare borders with: their neurons get NaN statistics
  and can be no PANs. :func:`unscoreable_layers` lists them (``results/tables/unscoreable.csv``).

Imports no torch: the shapes are plain JSON.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

__all__ = [
    "UNSCOREABLE_COLUMNS",
    "check_reflect_fits",
    "reflect_misfits",
    "unscoreable_layers",
    "write_unscoreable_layers",
]

UNSCOREABLE_COLUMNS = ("model", "layer_index", "layer", "neurons", "height", "width", "reason")
"""Columns of ``results/tables/unscoreable.csv``."""


def reflect_misfits(shapes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The layers of ``shapes`` whose reflect padding is not smaller than the side it pads:
    ``name, input_height, input_width, padding`` and ``fitting_input_size``, an estimate of
    the smallest ``input_size`` at which the layer's input is large enough (its input side
    scales with the model's input size)."""
    misfits = []
    for layer in shapes["layers"]:
        padding = layer.get("padding")
        if padding is None:  # not padded with zeros: no variant changes it
            continue
        left, right, top, bottom = padding
        height, width = layer["input_height"], layer["input_width"]
        if max(left, right) < width and max(top, bottom) < height:
            continue
        needed = [
            math.ceil(shapes["input_size"] * (pad + 1) / side)
            for pad, side in ((max(top, bottom), height), (max(left, right), width))
            if side > 0
        ]
        misfits.append(
            {
                "name": layer["name"],
                "input_height": height,
                "input_width": width,
                "padding": list(padding),
                "fitting_input_size": max(needed, default=None),
            }
        )
    return misfits


def check_reflect_fits(model: str, shapes: Mapping[str, Any], needed_by: str = "reflect padding") -> None:
    """Refuse ``model`` for a target that pads with reflect when a conv's padding is not
    smaller than its input side (:func:`reflect_misfits`), naming the layer, its input size,
    its padding and a larger ``input_size``.

    Raises:
        ValueError: naming the first such layer and how many there are.
    """
    misfits = reflect_misfits(shapes)
    if not misfits:
        return
    first = misfits[0]
    others = f" (and {len(misfits) - 1} more layers)" if len(misfits) > 1 else ""
    fix = (
        f"a larger input_size (about {first['fitting_input_size']} px or more; it is {shapes['input_size']})"
        if first["fitting_input_size"]
        else "a larger input_size"
    )
    raise ValueError(
        f"model {model!r}: layer {first['name']!r} has a {first['input_height']}x"
        f"{first['input_width']} input and zero padding (left, right, top, bottom)="
        f"{tuple(first['padding'])}{others}; {needed_by} needs each amount smaller than the side "
        f"it mirrors. Use {fix}, or leave out the targets that pad with reflect (the reflect "
        "control, section 4, origin, the zero-line attack, PAN cards, exports)"
    )


def unscoreable_layers(shapes: Mapping[str, Mapping[str, Any]]) -> pl.DataFrame:
    """Per model (model -> :func:`pan.workflow.resources.layer_shapes`), the analysed layers whose
    maps are below 3x3: their neurons get NaN statistics, can be no PANs, and are left out of
    Tables 1/2's ``scoreable_neurons``. Columns :data:`UNSCOREABLE_COLUMNS`."""
    rows = [
        {
            "model": model,
            "layer_index": index,
            "layer": layer["name"],
            "neurons": layer["out_channels"],
            "height": layer["height"],
            "width": layer["width"],
            "reason": "maps below 3x3 have no centre to compare borders with",
        }
        for model, model_shapes in shapes.items()
        for index, layer in enumerate(model_shapes["layers"])
        if not layer["scoreable"]
    ]
    schema = dict.fromkeys(UNSCOREABLE_COLUMNS, pl.String) | {
        "layer_index": pl.Int64,
        "neurons": pl.Int64,
        "height": pl.Int64,
        "width": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema)


def write_unscoreable_layers(shape_files: Mapping[str, str | Path], out: str | Path) -> pl.DataFrame:
    """Write :func:`unscoreable_layers` of each model's shapes file (model -> ``results/shapes/
    {model}.json``) as CSV, and log each layer left out."""
    from pan.workflow.resources import read_layer_shapes

    table = unscoreable_layers({model: read_layer_shapes(path) for model, path in shape_files.items()})
    for row in table.iter_rows(named=True):
        logging.warning(
            "model %s, layer %s: %d neurons with %dx%d maps are not scoreable (%s)",
            row["model"],
            row["layer"],
            row["neurons"],
            row["height"],
            row["width"],
            row["reason"],
        )
    logging.info("%d unscoreable layers in %d models", table.height, len(shape_files))
    table.write_csv(out)
    return table
