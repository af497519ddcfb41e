"""Padding audit: where a model pads, by how much, and where it pads unevenly ("Mind the Pad").

Alsallakh et al. ("Mind the Pad -- CNNs Can Develop Blind Spots", ICLR 2021) point out that
a strided layer whose padded input does not fit its windows exactly never reads the last
``(in + pad_left + pad_right - dilation * (kernel - 1) - 1) % stride`` columns (rows) of the
padded input: the right (bottom) padding is effectively smaller than the left (top), or input
pixels are dropped altogether. A layer with uneven effective padding treats the borders
differently, which is exactly what Padding Aware Neurons can learn to exploit.

The audit is static: no images and no weights are used. One forward pass with a single
input of the requested size runs on a weight-less copy of the model on the ``meta`` device
(falling back to a 1-image CPU pass when a model cannot run on ``meta``), and forward hooks
record each layer's input and output sizes. So it covers padding that depends on the
input size (TF "SAME" convs and pools) at the size each layer actually sees.

Audited layers, in forward (execution) order, each module at its first call:

- every analysed conv (:func:`pan.capture.layers.is_analysed`: ``nn.Conv2d`` and subclasses with a
  kernel over 1x1), padded or not;
- every ``nn.MaxPool2d``/``nn.AvgPool2d`` (timm's ``MaxPool2dSame``/``AvgPool2dSame``
  included) that pads: ``padding > 0``, TF "SAME" padding, a pad module before it, or
  ``ceil_mode`` windows reaching past the input.

A padding is the sum of the layer's own ``padding``, any padding module the layer runs
itself (EfficientNet-Lite's ``static_padding``, timm's ``Conv2dSameExport.pad``), TF "SAME"
padding computed from the input size (EfficientNet-Lite's ``Conv2dDynamicSamePadding``,
timm's ``Conv2dSame``, ``StdConv2dSame`` and pools), and an ``nn.ConstantPad2d``/
``nn.ZeroPad2d`` whose output is the layer's input (found by tensor identity, so in any
forward, not only in ``nn.Sequential``; the reflect variants of :mod:`pan.capture.padding` fold only
a pad module that directly precedes the conv in a plain ``nn.Sequential``).

Not audited: 1x1 convs (not analysed, though a strided one can drop pixels too) and timm's
``CondConv2d`` (no ``Conv2d`` subclass, so not analysed either). timm's ``MixedConv2d`` shows
up as its member convs (``<name>.0``, ``<name>.1``, ...).

Columns of :func:`padding_audit` (one row per audited layer):

=================== ======= =====================================================================
column              type    meaning
=================== ======= =====================================================================
input_h, input_w    int64   the model's input size
layer_index         int64   position among the audited layers, in forward order
layer               str     module path in the model
kind                str     ``conv``, ``max_pool`` or ``avg_pool``
module              str     class name of the module
analysed_index      int64   position among the analysed convs in forward order (the ``layer_index`` of
                            the dump, KS and PAN tables); null for pools
kernel_h, kernel_w  int64   kernel size
stride_h, stride_w  int64   stride
dilation_h/_w       int64   dilation (1 for average pooling)
in_h, in_w          int64   size of the layer's input (before any padding)
out_h, out_w        int64   size of its output
pad_left/_right/    int64   padding applied on each side (own + modules + TF "SAME")
pad_top/_bottom
padding_source      str     what pads, joined by ``+``: ``padding`` (own), ``module`` (a pad
                            module in or before the layer), ``same`` (TF "SAME" at this input
                            size), or ``none``
padding_mode        str     what fills the padding: ``zeros``, a conv's other ``padding_mode``,
                            ``-inf`` (max pooling), ``excluded`` (average pooling with
                            ``count_include_pad=False``)
eff_left/_right/    int64   padding actually read by some window; left/top equal the applied
eff_top/_bottom             padding, right/bottom are smaller by the unread remainder (larger
                            when ``ceil_mode`` windows overhang; negative when input pixels are
                            never read)
unread_cols/_rows   int64   ``pad_right - eff_right`` / ``pad_bottom - eff_bottom``: trailing
                            columns/rows of the padded input no window reads
dropped_cols/_rows  int64   input columns/rows no window reads (``max(0, -eff_right)``, ...)
uneven              bool    ``eff_left != eff_right or eff_top != eff_bottom``
=================== ======= =====================================================================

Columns of :func:`padding_scan` (one row per input size): ``input_size`` (square),
``layers`` (audited layers), ``uneven_layers``, ``uneven_convs``, ``dropped_pixels`` (sum of
``dropped_cols + dropped_rows`` over layers), ``first_uneven_layer`` (null when none),
``error`` (null, or why the model could not run at that size). :func:`evenly_padded_sizes`
lists the sizes where no layer pads unevenly.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
from torch import nn

from pan.beyond.shapes import infer_in_channels, pair, run_shapes, shape_copy, timm_same_pools
from pan.capture.layers import analysed_layers
from pan.capture.padding import (
    declared_static_padding,
    own_padding,
    padding_depends_on_input,
    tf_same_padding,
)

if TYPE_CHECKING:
    from pan.capture.models import ModelSpec

__all__ = [
    "AUDIT_SCHEMA",
    "SCAN_SCHEMA",
    "evenly_padded_sizes",
    "padding_audit",
    "padding_scan",
    "write_padding_audit",
]

_INT = pl.Int64
AUDIT_SCHEMA: dict[str, pl.DataType] = {
    "input_h": _INT,
    "input_w": _INT,
    "layer_index": _INT,
    "layer": pl.String,
    "kind": pl.String,
    "module": pl.String,
    "analysed_index": _INT,
    "kernel_h": _INT,
    "kernel_w": _INT,
    "stride_h": _INT,
    "stride_w": _INT,
    "dilation_h": _INT,
    "dilation_w": _INT,
    "in_h": _INT,
    "in_w": _INT,
    "out_h": _INT,
    "out_w": _INT,
    "pad_left": _INT,
    "pad_right": _INT,
    "pad_top": _INT,
    "pad_bottom": _INT,
    "padding_source": pl.String,
    "padding_mode": pl.String,
    "eff_left": _INT,
    "eff_right": _INT,
    "eff_top": _INT,
    "eff_bottom": _INT,
    "unread_cols": _INT,
    "unread_rows": _INT,
    "dropped_cols": _INT,
    "dropped_rows": _INT,
    "uneven": pl.Boolean,
}
"""Column names and types of :func:`padding_audit` (see the module docstring)."""

SCAN_SCHEMA: dict[str, pl.DataType] = {
    "input_size": _INT,
    "layers": _INT,
    "uneven_layers": _INT,
    "uneven_convs": _INT,
    "dropped_pixels": _INT,
    "first_uneven_layer": pl.String,
    "error": pl.String,
}
"""Column names and types of :func:`padding_scan`."""

Size = int | tuple[int, int]


def _audit_row(name: str, record: dict, analysed_index: int | None) -> dict | None:
    module = record["module"]
    in_h, in_w = record["in"]
    out_h, out_w = record["out"]
    sources = []
    pads = [0, 0, 0, 0]

    def add(amounts, source: str) -> None:
        if any(amounts):
            sources.append(source)
            for i, amount in enumerate(amounts):
                pads[i] += amount

    if record["pad_before"] is not None:
        add(record["pad_before"], "module")
    seen_h, seen_w = record["seen"]  # after a pad module before the layer
    if isinstance(module, nn.Conv2d):
        kind = "conv"
        kernel, stride, dilation = pair(module.kernel_size), pair(module.stride), pair(module.dilation)
        add(own_padding(module), "padding")
        if padding_depends_on_input(module):
            add(tf_same_padding(kernel, stride, dilation, (seen_h, seen_w)), "same")
        else:
            add(declared_static_padding(module), "module")
        mode = module.padding_mode
    else:
        kind = "max_pool" if isinstance(module, nn.MaxPool2d) else "avg_pool"
        kernel, stride = pair(module.kernel_size), pair(module.stride or module.kernel_size)
        dilation = pair(module.dilation) if kind == "max_pool" else (1, 1)
        pad_h, pad_w = pair(module.padding)
        add((pad_w, pad_w, pad_h, pad_h), "padding")
        if isinstance(module, timm_same_pools()):
            add(tf_same_padding(kernel, stride, dilation, (seen_h, seen_w)), "same")
        if kind == "max_pool":
            mode = "-inf"
        else:
            mode = "zeros" if module.count_include_pad else "excluded"
    left, right, top, bottom = pads
    eff_right = (out_w - 1) * stride[1] + dilation[1] * (kernel[1] - 1) + 1 - left - in_w
    eff_bottom = (out_h - 1) * stride[0] + dilation[0] * (kernel[0] - 1) + 1 - top - in_h
    if kind != "conv" and not any(pads) and eff_right <= 0 and eff_bottom <= 0:
        return None  # a pool that does not pad
    return {
        "layer": name,
        "kind": kind,
        "module": type(module).__name__,
        "analysed_index": analysed_index,
        "kernel_h": kernel[0],
        "kernel_w": kernel[1],
        "stride_h": stride[0],
        "stride_w": stride[1],
        "dilation_h": dilation[0],
        "dilation_w": dilation[1],
        "in_h": in_h,
        "in_w": in_w,
        "out_h": out_h,
        "out_w": out_w,
        "pad_left": left,
        "pad_right": right,
        "pad_top": top,
        "pad_bottom": bottom,
        "padding_source": "+".join(dict.fromkeys(sources)) or "none",
        "padding_mode": mode,
        "eff_left": left,
        "eff_right": eff_right,
        "eff_top": top,
        "eff_bottom": eff_bottom,
        "unread_cols": right - eff_right,
        "unread_rows": bottom - eff_bottom,
        "dropped_cols": max(0, -eff_right),
        "dropped_rows": max(0, -eff_bottom),
        "uneven": left != eff_right or top != eff_bottom,
    }


def padding_audit(
    model: nn.Module, input_size: Size, *, in_channels: int | None = None, device: str = "meta"
) -> pl.DataFrame:
    """Padding of every analysed conv and padding pool of ``model`` at ``input_size``.

    Args:
        model: the model; it is not modified (the pass runs on a weight-less meta copy).
        input_size: the model's input, ``size`` (square) or ``(height, width)``.
        in_channels: channels of the input; by default those of the model's first conv.
        device: ``"meta"`` (no compute; falls back to a 1-image CPU pass if the model
            cannot run there) or a real device for a 1-image pass with the real weights.

    Returns:
        One row per audited layer in forward order, columns :data:`AUDIT_SCHEMA`.
    """
    return _ShapePass(model, in_channels, device).audit(pair(input_size))


def padding_scan(
    model: nn.Module,
    input_size: int,
    *,
    radius: int = 64,
    step: int = 1,
    in_channels: int | None = None,
    device: str = "meta",
) -> pl.DataFrame:
    """Audit square inputs ``input_size - radius`` to ``input_size + radius`` (``step`` apart).

    Sizes below 1 are skipped; a size the model cannot run at gets a row with ``error``.
    One meta copy of the model serves every size, so a ResNet-50 scan of 129 sizes takes
    seconds. Columns :data:`SCAN_SCHEMA`.
    """
    shape_pass = _ShapePass(model, in_channels, device)
    rows = []
    for size in range(max(1, input_size - radius), input_size + radius + 1, step):
        try:
            audit = shape_pass.audit((size, size))
        except Exception as error:  # too small for the model, typically
            rows.append({"input_size": size, "error": f"{type(error).__name__}: {error}".splitlines()[0]})
            continue
        uneven = audit.filter(pl.col("uneven"))
        rows.append(
            {
                "input_size": size,
                "layers": audit.height,
                "uneven_layers": uneven.height,
                "uneven_convs": uneven.filter(pl.col("kind") == "conv").height,
                "dropped_pixels": int(audit["dropped_cols"].sum() + audit["dropped_rows"].sum()),
                "first_uneven_layer": uneven["layer"][0] if uneven.height else None,
                "error": None,
            }
        )
    return pl.DataFrame(rows, schema=SCAN_SCHEMA)


def evenly_padded_sizes(model: nn.Module, input_size: int, *, radius: int = 64, **kwargs) -> list[int]:
    """Square input sizes within ``radius`` pixels of ``input_size`` where no layer pads unevenly."""
    scan = padding_scan(model, input_size, radius=radius, **kwargs)
    return scan.filter(pl.col("error").is_null() & (pl.col("uneven_layers") == 0))["input_size"].to_list()


def write_padding_audit(
    model: nn.Module,
    input_size: int,
    out_csv: str | Path,
    *,
    scan_csv: str | Path | None = None,
    radius: int = 64,
    model_name: str | None = None,
    in_channels: int | None = None,
) -> pl.DataFrame:
    """Write the audit at ``input_size`` to ``out_csv`` and, optionally, the size scan to ``scan_csv``.

    With ``model_name`` both tables get a leading ``model`` column. Returns the audit.
    """
    audit = padding_audit(model, input_size, in_channels=in_channels)
    tables = [(audit, out_csv)]
    if scan_csv is not None:
        tables.append((padding_scan(model, input_size, radius=radius, in_channels=in_channels), scan_csv))
    for table, path in tables:
        if model_name is not None:
            table = table.select(pl.lit(model_name).alias("model"), pl.all())
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        table.write_csv(path)
    return audit


def write_model_audit(
    spec: ModelSpec, out_csv: str | Path, scan_csv: str | Path, radius: int = 64
) -> pl.DataFrame:
    """The audit and the size scan of a configured model at its own input size (no weights needed:
    shapes only), each with a leading ``model`` column."""
    from pan.capture.models import load_model

    loaded = load_model(replace(spec, pretrained=False))
    return write_padding_audit(
        loaded.model, loaded.input_size, out_csv, scan_csv=scan_csv, radius=radius, model_name=spec.name
    )


class _ShapePass:
    """Runs shape passes on the meta copy, or on the CPU model when ``meta`` cannot run it."""

    def __init__(self, model: nn.Module, in_channels: int | None, device: str) -> None:
        self.in_channels = in_channels or infer_in_channels(model)
        self.model = model
        self.device = device
        self.meta_model = shape_copy(model) if device == "meta" else None
        self.analysed = {layer.name for layer in analysed_layers(model)}

    def records(self, size: tuple[int, int]) -> dict[str, dict]:
        if self.meta_model is not None:
            try:
                return run_shapes(self.meta_model, size, self.in_channels, "meta")
            except (NotImplementedError, RuntimeError) as error:
                logging.warning("model cannot run on the meta device (%s); auditing with a CPU pass", error)
                self.meta_model = None
        device = self.device if self.device != "meta" else "cpu"
        was_training = self.model.training
        self.model.eval()
        try:
            return run_shapes(self.model, size, self.in_channels, device)
        finally:
            self.model.train(was_training)

    def audit(self, size: tuple[int, int]) -> pl.DataFrame:
        rows = []
        records = self.records(size)  # in the order of the layers' first calls
        # Analysed convs indexed by first call, as the dump's layer_index (in_forward_order).
        forward = {name: i for i, name in enumerate(n for n in records if n in self.analysed)}
        for name, record in records.items():
            row = _audit_row(name, record, forward.get(name))
            if row is not None:
                rows.append({"input_h": size[0], "input_w": size[1], "layer_index": len(rows), **row})
        return (
            pl.DataFrame(rows, schema=AUDIT_SCHEMA, orient="row")
            if rows
            else pl.DataFrame(schema=AUDIT_SCHEMA)
        )
