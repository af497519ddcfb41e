"""PAN-free models to take away: a §4 variant exported as a standalone ``torch.export`` artefact.

:func:`export_variant` builds a variant with :func:`pan.bias.reflect.with_reflect_padding`
(``channels=None``: every analysed conv pads with reflect, the ``reflect`` variant; a
mapping layer -> channels: only those channels do, e.g. the PANs for ``pan_reflect``),
exports it in eval mode with :func:`torch.export.export` and saves it with
:func:`torch.export.save` as a ``.pt2`` file. The file holds the graph and the weights; it
loads and runs without ``pan`` installed::

    import json, torch

    extra = {"pan_provenance.json": ""}
    model = torch.export.load("efficientnet_lite0_pan_reflect.pt2", extra_files=extra).module()
    provenance = json.loads(extra["pan_provenance.json"])
    logits = model(images)  # images: (batch, 3, height, width), the exported height and width

Provenance (:data:`PROVENANCE_FILE` inside the artefact, and the same JSON in a sidecar file
beside it, ``<path without suffix>.json``) holds the caller's ``metadata`` (for the workflow:
``source_model``, ``variant``, ``theta``, ``pan_count``, ...) and the fields pan fills in:

================== ==========================================================================
key                meaning
================== ==========================================================================
format             ``"pan-variant/1"``
variant            the caller's, else ``reflect`` (``channels=None``), ``original`` (no channel)
                   or ``pan_reflect``
source_model       the caller's, else the model's class name
theta, pan_count   the caller's, else null (``pan_count``: the number of selected channels
                   when ``channels`` is a mapping and the caller gave none)
input_size         ``[height, width]`` of the example, the only spatial size the artefact takes
input_shape        the example's shape
dynamic_batch      whether any batch size works (``torch.export.Dim``; an example batch of 1
                   is traced as a batch of 2, which ``torch.export`` does not specialise)
batch_size         null when the batch is dynamic; else the only batch size the artefact takes
static_batch_reason  null, or why the batch is static: ``dynamic_batch=False`` was asked for
                   (``"asked for"``), or the error of ``torch.export`` with a dynamic batch
reflect_channels   ``"all"`` or ``{layer: [channel, ...]}`` (layers with a channel)
reflect_channel_count  the number of output channels that pad with reflect
check_max_abs_diff the largest difference between the exported program and pan's variant on
                   the example (0.0 when they agree exactly)
pan_version, torch_version, created (UTC, ISO 8601)
artefact           the artefact's file name: the ``.pt2``, or the state dict (below)
export_error       null, or why ``torch.export`` could not export the variant (below)
================== ==========================================================================

Only the batch dimension is dynamic: reflect padding and TF "SAME" padding are computed from
the spatial size when the graph is traced, so every artefact takes one height and width.
The artefact runs on the device of the model and example it was exported from (export on
the CPU for a portable file).

**Where torch.export cannot export a variant** (onnx2torch's ``Reshape`` and ``Resize``
read the values of shape tensors, which ``torch.export`` cannot trace), the export says so
and keeps the state dict instead: the variant's ``state_dict()`` goes to
:func:`state_dict_path` (``m_reflect.state_dict.pt``), no ``.pt2`` is written (a stale one
is removed), and the provenance JSON beside it says why (``export_error``: torch's error);
``dynamic_batch``, ``batch_size`` and ``static_batch_reason`` are then null (the state dict
takes any batch), and ``check_max_abs_diff`` compares a variant rebuilt from the saved file
with pan's. Such a variant needs pan and the model's source to run again:
:func:`load_variant_state` rebuilds it from the model and the provenance.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

import pan
from pan.bias.reflect import _channel_indices, with_reflect_padding

if TYPE_CHECKING:
    import polars as pl

    from pan.capture.models import ModelSpec

__all__ = [
    "PROVENANCE_FILE",
    "export_labelled_variant",
    "export_model_variant",
    "export_variant",
    "load_variant_state",
    "read_provenance",
    "sidecar_path",
    "state_dict_path",
]

PROVENANCE_FILE = "pan_provenance.json"
"""Name of the provenance JSON inside the ``.pt2`` file (``torch.export.load(..., extra_files=)``)."""

FORMAT = "pan-variant/1"


def sidecar_path(path: str | Path) -> Path:
    """The provenance JSON beside an artefact: ``results/models/m_reflect.pt2`` -> ``.../m_reflect.json``."""
    return Path(path).with_suffix(".json")


def state_dict_path(path: str | Path) -> Path:
    """Where the state dict goes when ``torch.export`` fails:
    ``m_reflect.pt2`` -> ``m_reflect.state_dict.pt``."""
    return Path(path).with_suffix(".state_dict.pt")


def _selected_channels(
    model: nn.Module, channels: Mapping[str, Iterable[int] | Tensor] | None
) -> str | dict[str, list[int]]:
    if channels is None:
        return "all"
    modules = dict(model.named_modules())
    selected = {}
    for name, layer_channels in channels.items():
        if name not in modules:  # with_reflect_padding raises the clear KeyError
            continue
        indices = _channel_indices(layer_channels, modules[name].out_channels).tolist()
        if indices:
            selected[name] = indices
    return selected


class _Exported(nn.Module):
    """Holds a variant whose own children would shadow what ``torch.export`` unlifts the program
    into, a ``GraphModule``: pan's ONNX models keep their converted graph as ``graph``."""

    def __init__(self, variant: nn.Module) -> None:
        super().__init__()
        self.variant = variant

    def forward(self, x: Tensor) -> Any:
        return self.variant(x)


def _exportable(variant: nn.Module) -> nn.Module:
    if any(hasattr(torch.fx.GraphModule, name) for name, _ in variant.named_children()):
        return _Exported(variant)
    return variant


def _export(
    variant: nn.Module, example: Tensor, dynamic_batch: bool
) -> tuple[torch.export.ExportedProgram, bool, str | None]:
    """The program, whether its batch is dynamic, and if not, why."""
    variant = _exportable(variant)
    if dynamic_batch:
        # torch.export specialises a dimension of size 1 (the "0/1 specialisation"): trace a
        # batch of at least 2, the example repeated, so that the batch stays symbolic.
        traced = example if example.shape[0] >= 2 else example.expand(2, *example.shape[1:]).contiguous()
        try:
            batch = torch.export.Dim("batch", min=1)
            return torch.export.export(variant, (traced,), dynamic_shapes=({0: batch},)), True, None
        except Exception as error:  # torch.export raises several types when it cannot generalise
            reason = f"torch.export could not make the batch dynamic: {type(error).__name__}: {error}"
            reason = reason[:500]
            logging.warning("%s; exporting with a static batch of %d", reason, example.shape[0])
            return torch.export.export(variant, (example,)), False, reason
    return torch.export.export(variant, (example,)), False, "asked for (dynamic_batch=False)"


def export_variant(
    model: nn.Module,
    channels: Mapping[str, Iterable[int] | Tensor] | None,
    example: Tensor,
    path: str | Path,
    metadata: Mapping[str, Any] | None = None,
    *,
    dynamic_batch: bool = True,
    state_dict_fallback: bool = True,
) -> dict[str, Any]:
    """Export ``model`` with reflect padding on ``channels`` to a standalone ``.pt2`` file.

    Args:
        model: the original model (left unchanged; the variant shares its weights).
        channels: ``None`` for reflect padding on every analysed conv, or analysed layer
            name -> output channels (indices or boolean mask), as for
            :func:`pan.bias.reflect.with_reflect_padding`.
        example: an input batch ``(batch, channels, height, width)`` on the model's device;
            the artefact takes its height and width.
        path: the ``.pt2`` file to write; the provenance goes to :func:`sidecar_path` too.
        metadata: provenance to store (JSON-serialisable): ``source_model``, ``variant``,
            ``theta``, ``pan_count``, ... (see the module docstring for what pan adds).
        dynamic_batch: export with a dynamic batch dimension (any batch size; an example
            batch of 1 is traced as 2); falls back to the example's batch size when
            ``torch.export`` refuses, recorded as ``dynamic_batch: false``, ``batch_size`` and
            ``static_batch_reason`` in the provenance, not only in the log.
        state_dict_fallback: where ``torch.export`` cannot export the variant at all, keep
            its state dict at :func:`state_dict_path` and say why in the provenance
            (``export_error``) instead of raising (see the module docstring).

    Returns:
        The provenance dict, as stored.

    Both files are written to temporary names first and renamed once complete, so a failed
    export leaves no partial artefact.
    """
    path = Path(path)
    variant = with_reflect_padding(model, channels).eval()
    selected = _selected_channels(model, channels)
    with torch.no_grad():
        expected = variant(example)
    try:
        program, dynamic, static_reason = _export(variant, example, dynamic_batch)
        with torch.no_grad():
            exported = program.module()(example)  # the program must also run, not only trace
        export_error = None
    except Exception as error:  # torch.export raises many types (guards, unsupported ops, ...)
        if not state_dict_fallback:
            raise
        export_error = f"torch.export could not export the variant: {type(error).__name__}: {error}"[:1000]
        logging.warning("%s; keeping its state dict in %s, no .pt2", export_error, state_dict_path(path))
        program, dynamic, static_reason = None, None, None
    if program is None:
        with torch.no_grad():
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(state_dict_path(path), lambda tmp: torch.save(variant.state_dict(), tmp))
            exported = _rebuilt(model, selected, state_dict_path(path))(example)
    max_abs_diff = float((exported - expected).abs().max()) if expected.numel() else 0.0
    metadata = dict(metadata or {})
    selected_count = (
        sum(layer.out_channels for layer in _analysed(model))
        if selected == "all"
        else sum(map(len, selected.values()))
    )
    if selected == "all":
        default_variant = "reflect"
    else:
        default_variant = "pan_reflect" if selected else "original"
    provenance = {
        "format": FORMAT,
        "variant": default_variant,
        "source_model": type(model).__name__,
        "theta": None,
        "pan_count": None if selected == "all" else selected_count,
        **metadata,
        "input_size": list(example.shape[-2:]),
        "input_shape": list(example.shape),
        "dynamic_batch": dynamic,
        "batch_size": None if dynamic or program is None else int(example.shape[0]),
        "static_batch_reason": static_reason,
        "reflect_channels": selected,
        "reflect_channel_count": selected_count,
        "check_max_abs_diff": max_abs_diff,
        "pan_version": pan.__version__,
        "torch_version": torch.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "artefact": (path if program is not None else state_dict_path(path)).name,
        "export_error": export_error,
    }
    text = json.dumps(provenance, indent=2, sort_keys=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    if program is not None:
        extra_files = {PROVENANCE_FILE: text}
        _write_atomically(path, lambda tmp: torch.export.save(program, tmp, extra_files=extra_files))
    stale = state_dict_path(path) if program is not None else path  # from an earlier export
    stale.unlink(missing_ok=True)
    _write_atomically(sidecar_path(path), lambda tmp: Path(tmp).write_text(text + "\n"))
    return provenance


def _analysed(model: nn.Module):
    from pan.capture.layers import analysed_layers

    return analysed_layers(model)


def _write_atomically(path: Path, write) -> None:
    # Same suffix: torch.export.save warns about archives not named *.pt2.
    handle, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_variant_state(model: nn.Module, provenance: str | Path | Mapping[str, Any]) -> nn.Module:
    """The variant a state dict artefact holds, rebuilt around a copy of ``model`` (the source
    model, built as the provenance's ``model_spec`` says, e.g. with
    :func:`pan.capture.models.load_model`) that takes the saved weights; ``model`` is unchanged.

    ``provenance`` is the JSON beside the artefact (its path; the state dict is read from
    beside it) or its contents with ``artefact`` made a full path. Returns the variant in
    eval mode.
    """
    if not isinstance(provenance, Mapping):
        folder = Path(provenance).parent
        provenance = json.loads(Path(provenance).read_text())
        artefact = folder / provenance["artefact"]
    else:
        artefact = Path(provenance["artefact"])
    if provenance.get("export_error") is None:
        raise ValueError(f"{artefact} is a torch.export program: load it with torch.export.load")
    return _rebuilt(model, provenance["reflect_channels"], artefact)


def _rebuilt(model: nn.Module, channels: str | Mapping[str, list[int]], state_dict: Path) -> nn.Module:
    variant = with_reflect_padding(copy.deepcopy(model), None if channels == "all" else channels).eval()
    device = next(iter(variant.state_dict().values()), torch.empty(0)).device
    variant.load_state_dict(torch.load(state_dict, map_location=device))
    return variant


def read_provenance(path: str | Path) -> dict[str, Any]:
    """The provenance stored inside a ``.pt2`` artefact (loads the program, not pan-specific)."""
    extra = {PROVENANCE_FILE: ""}
    torch.export.load(path, extra_files=extra)
    return json.loads(extra[PROVENANCE_FILE])


def export_labelled_variant(
    model: nn.Module,
    labels: pl.DataFrame,
    variant: str,
    example: Tensor,
    path: str | Path,
    *,
    seed: int = 0,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Export one of :data:`pan.bias.variants.VARIANTS` from a PAN label table
    (``results/pans/{model}.parquet``).

    Fills ``variant``, ``theta`` (from the labels' ``theta`` column), ``pan_count`` (the
    labelled PANs, for every variant) and, for ``rand_reflect``, ``rand_seed``; ``metadata``
    (e.g. ``source_model``) overrides them.
    """
    from pan.bias.variants import variant_channels

    channels = variant_channels(labels, seed)[variant]
    filled: dict[str, Any] = {
        "variant": variant,
        "pan_count": int(labels["is_pan"].sum()),
        "theta": float(labels["theta"][0]) if "theta" in labels.columns and labels.height else None,
    }
    if variant == "rand_reflect":
        filled["rand_seed"] = seed
    return export_variant(model, channels, example, path, {**filled, **(metadata or {})})


def export_model_variant(
    spec: ModelSpec, pan_labels: str | Path, variant: str, path: str | Path, seed: int = 0
) -> dict[str, Any]:
    """Export ``variant`` of a configured model (its weights, its PAN labels) on the CPU, for an
    input of the model's own size; the provenance names the model and its source."""
    from pan.capture.models import load_model
    from pan.core.labelling import read_labels

    loaded = load_model(spec)
    example = torch.zeros(2, 3, loaded.input_size, loaded.input_size)  # a batch of 1 would be specialised
    source = {
        k: v for k, v in vars(spec).items() if k in ("source", "builder", "weights", "variant", "checkpoint")
    }
    metadata = {"source_model": spec.name, "model_spec": {k: v for k, v in source.items() if v is not None}}
    return export_labelled_variant(
        loaded.model, read_labels(pan_labels), variant, example, path, seed=seed, metadata=metadata
    )
