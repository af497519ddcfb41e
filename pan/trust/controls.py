"""How far to trust a PAN count: controls and label stability across image draws.

A PAN count alone cannot be interpreted: a randomly initialised network, whose filters never
learned anything, can have many neurons whose border activations differ from the centre, and
the PAN set moves with the batch of images. Two kinds of reruns of the §3 method put the count
in context, each through the same dump, KS and labelling code as the main run:

- *controls*, per model (:data:`CONDITIONS`):

  - ``trained``: the model as configured (the main run, ``results/pans/{model}.parquet``);
  - ``reflect``: the same weights with reflect padding in every analysed conv
    (:func:`pan.bias.reflect.with_reflect_padding`), recorded at the same layers: a PAN that reads
    the zero padding should vanish. Zero padding from a separate module that runs before the
    conv (an ``nn.ZeroPad2d`` of its own in an ``nn.Sequential``) is not the conv's padding
    and stays zero;
  - ``random_init``: the same architecture with its own default initialisation, seeded
    (``controls.seed``): torchvision and EfficientNet-Lite build without weights; a ``python``
    model is built without its state dict and then every module that has a
    ``reset_parameters()`` is reset with the seed, which also re-initialises weights the
    builder set or loaded itself. A module that holds parameters but has no
    ``reset_parameters()`` cannot be re-initialised: the run is then *unavailable*, its
    labels are empty and the controls table's ``note`` says why (the run does not fail).

- *stability*: ``stability.draws`` seeded draws of the §3 batch (same source and size as
  ``images``; draw ``k`` uses :func:`draw_seed` of ``images.seed`` and ``k``), each labelled
  at the same θ; per neuron the fraction of draws in which it is a PAN.

A rerun is named by its *run*: ``controls/reflect``, ``controls/random_init`` or
``stability/draw{k}``; its outputs live under ``results/{run}/`` (:func:`parse_run`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import polars as pl

from pan.capture.images import ImageSpec, image_records
from pan.core.labelling import RULES, label_pans, rule_view
from pan.core.scoring import ks_table_files
from pan.core.tables import table2
from pan.trust.runs import CONDITIONS

if TYPE_CHECKING:
    from torch import nn

    from pan.capture.layers import AnalysedLayer
    from pan.capture.models import LoadedModel, ModelSpec

__all__ = [
    "DEFAULT_CONTROLS_SEED",
    "control_model",
    "controls_table",
    "depth_by_condition",
    "dump_run",
    "label_run_files",
    "recorded_layers",
    "reinitialise",
    "write_controls_table",
]

DEFAULT_CONTROLS_SEED = 0
"""Seed of the random-init control."""


# -- building the control nets ---------------------------------------------------------------


def reinitialise(net: nn.Module, seed: int) -> list[str]:
    """Reset every module of ``net`` that has ``reset_parameters()``, seeded; return the names
    of modules that hold parameters of their own but have no ``reset_parameters()`` (those
    could not be re-initialised; empty when all were)."""
    import torch

    torch.manual_seed(seed)
    stuck = []
    for name, module in net.named_modules():
        if callable(getattr(module, "reset_parameters", None)):
            module.reset_parameters()
        elif any(True for _ in module.parameters(recurse=False)):
            stuck.append(name or type(module).__name__)
    return stuck


def control_model(
    spec: ModelSpec, condition: str, seed: int = DEFAULT_CONTROLS_SEED
) -> tuple[LoadedModel | None, str]:
    """The model of ``spec`` under ``condition`` (see the module doc), in eval mode, and ``""``;
    or ``None`` and the reason when the condition cannot be built for this model."""

    from pan.bias.reflect import with_reflect_padding
    from pan.capture.models import load_model

    if condition == "trained":
        return load_model(spec), ""
    if condition == "reflect":
        loaded = load_model(spec)
        loaded.model = with_reflect_padding(loaded.model).eval()
        return loaded, ""
    if condition != "random_init":
        raise ValueError(f"unknown condition {condition!r}; use one of {CONDITIONS}")
    loaded = load_model(replace(spec, pretrained=False), init_seed=seed)  # seeded as they build
    if spec.source == "python":
        stuck = reinitialise(loaded.model, seed)
        if stuck:
            return None, (
                f"not re-initialisable: modules {', '.join(stuck)} hold parameters but have no "
                "reset_parameters()"
            )
    return loaded, ""


def recorded_layers(net: nn.Module) -> list[AnalysedLayer]:
    """The analysed layers of ``net`` to record, where a conv wrapped by a
    :class:`pan.bias.reflect.ChannelPaddedConv2d` is recorded at the wrapper (whose output is the
    layer's output) under the original conv's name."""
    from pan.bias.reflect import ChannelPaddedConv2d
    from pan.capture.layers import AnalysedLayer, analysed_layers

    layers = []
    for layer in analysed_layers(net):
        parent, _, leaf = layer.name.rpartition(".")
        wrapper = net.get_submodule(parent) if leaf == "conv" and parent else None
        if isinstance(wrapper, ChannelPaddedConv2d):
            layer = AnalysedLayer(layer.index, parent, wrapper)
        layers.append(layer)
    return layers


def dump_run(
    spec: ModelSpec,
    images: ImageSpec,
    out_dir: str | Path,
    record: str | Path | None,
    condition: str = "trained",
    seed: int = DEFAULT_CONTROLS_SEED,
    micro_batch: int | None = None,
    device: str = "auto",
    progress: TextIO | None = None,
) -> dict[str, Any]:
    """Dump the activations of ``spec`` under ``condition`` over ``images`` into ``out_dir``
    (the format of :mod:`pan.core.dumps`) and write ``record`` (unless ``None``): a small JSON
    that outlives the dump (``model, condition, seed, images, available, note``). An
    unavailable condition writes a manifest without layers that says why, and no layer file."""
    import sys

    from pan.capture.activations import dump_module_activations
    from pan.capture.inference import DEFAULT_MICRO_BATCH
    from pan.core.dumps import MANIFEST

    records = image_records(images)
    loaded, note = control_model(spec, condition, seed)
    out_dir = Path(out_dir)
    if loaded is None:
        print(f"model {spec.name!r}, condition {condition}: {note}; its labels stay empty", file=sys.stderr)
        out_dir.mkdir(parents=True, exist_ok=True)
        manifest = {"model": spec.name, "layers": [], "images": [], "unavailable": note}
        (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1))
    else:
        dump_module_activations(
            loaded.model,
            loaded.transform,
            records,
            out_dir,
            spec.name,
            micro_batch or DEFAULT_MICRO_BATCH,
            device,
            progress,
            layers=recorded_layers(loaded.model),
        )
    summary = {
        "model": spec.name,
        "condition": condition,
        "seed": seed if condition == "random_init" else None,
        "images": [r.id for r in records],
        "available": loaded is not None,
        "note": note,
    }
    if record is not None:
        Path(record).write_text(json.dumps(summary, indent=1))
    return summary


def label_run_files(
    ks_files: str | Path | Sequence[str | Path], out: str | Path, theta: float
) -> pl.DataFrame:
    """:func:`pan.core.labelling.label_pan_files`, also for an unavailable run (no neurons, no rows)."""
    files = ks_table_files(ks_files)
    ks = pl.concat([pl.read_parquet(f) for f in files]) if files else pl.DataFrame()
    if ks.is_empty():
        template = pl.DataFrame(
            {"layer": ["x"] * 4, "layer_index": [0] * 4, "neuron": [0] * 4, "border": list("TBLR")},
            schema_overrides={"layer_index": pl.Int32, "neuron": pl.Int32},
        ).with_columns(**dict.fromkeys(("ks", "ks_plus", "ks_minus", "ks_plus_q", "ks_minus_q"), 0.0))
        labels = label_pans(template, theta).clear()
    else:
        labels = label_pans(ks, theta)
    labels.write_parquet(out)
    return labels


# -- controls ----------------------------------------------------------------------------------


def controls_table(
    labels: Mapping[tuple[str, str], pl.DataFrame], notes: Mapping[tuple[str, str], str]
) -> pl.DataFrame:
    """Per ``(model, condition)`` (the keys of ``labels``, in order) and rule: Table 2's columns,
    and a ``note`` (why a condition is unavailable; ``""`` otherwise)."""
    rows = []
    for (model, condition), frame in labels.items():
        for row in table2({model: frame}).iter_rows(named=True):
            row.pop("model")
            rows.append(
                {"model": model, "condition": condition, **row, "note": notes.get((model, condition), "")}
            )
    return pl.DataFrame(rows, schema_overrides={"borderline": pl.Int64})


def write_controls_table(
    label_files: Mapping[tuple[str, str], str | Path],
    record_files: Mapping[tuple[str, str], str | Path],
    out: str | Path,
) -> pl.DataFrame:
    """Write ``results/tables/controls.csv`` from each (model, condition)'s labels and the
    dump records of the conditions with a run of their own."""
    notes = {key: json.loads(Path(f).read_text())["note"] for key, f in record_files.items()}
    table = controls_table({key: pl.read_parquet(f) for key, f in label_files.items()}, notes)
    table.write_csv(out)
    return table


def depth_by_condition(labels: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Per rule, condition and layer: ``rule, condition, layer_index, layer, neurons, pans, share``
    (% PANs); both rules of :data:`pan.core.labelling.RULES` when every table carries the share
    rule's columns, else ``paper`` only."""
    tables = {condition: frame for condition, frame in labels.items() if not frame.is_empty()}
    rules = RULES if all("is_pan_share" in f.columns for f in tables.values()) else RULES[:1]
    frames = [
        rule_view(frame, rule)
        .group_by("layer_index", "layer")
        .agg(neurons=pl.len(), pans=pl.col("is_pan").sum().cast(pl.Int64))
        .select(pl.lit(rule).alias("rule"), pl.lit(condition).alias("condition"), pl.all())
        for rule in rules
        for condition, frame in tables.items()
    ]
    schema = {
        "rule": pl.String,
        "condition": pl.String,
        "layer_index": pl.Int32,
        "layer": pl.String,
        "neurons": pl.UInt32,
        "pans": pl.Int64,
    }
    rows = pl.concat([f.cast(schema) for f in frames]) if frames else pl.DataFrame(schema=schema)
    order = pl.col("rule").replace_strict({r: i for i, r in enumerate(RULES)}, return_dtype=pl.Int32)
    return rows.with_columns(share=100 * pl.col("pans") / pl.col("neurons")).sort(
        order, "layer_index", "condition"
    )


# -- stability ---------------------------------------------------------------------------------
