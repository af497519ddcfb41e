"""How far to trust a PAN count: controls and label stability across image draws.

A PAN count alone cannot be interpreted: a randomly initialised network, whose filters never
learned anything, can have many neurons whose border activations differ from the centre, and
the PAN set moves with the batch of images. Two kinds of reruns of the §3 method put the count
in context, each through the same dump, KS and labelling code as the main run:

- *controls*, per model (:data:`CONDITIONS`):

  - ``trained``: the model as configured (the main run, ``results/pans/{model}.parquet``);
  - ``reflect``: the same weights with reflect padding in every analysed conv
    (:func:`pan.padding.with_reflect_padding`), recorded at the same layers: a PAN that reads
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

import hashlib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import polars as pl

from .images import ImageSpec, image_records
from .labelling import PAN_TYPES, label_pans
from .scoring import ks_table_files
from .tables import table2

if TYPE_CHECKING:
    from torch import nn

    from .layers import AnalysedLayer
    from .models import LoadedModel, ModelSpec

CONDITIONS: tuple[str, ...] = ("trained", "reflect", "random_init")
"""The controls, in table order."""
DEFAULT_CONTROLS_SEED = 0
"""Seed of the random-init control."""
DEFAULT_DRAWS = 5
"""Seeded draws of the §3 batch for the stability analysis."""
RUN_PATTERN = r"controls/(?:reflect|random_init)|stability/draw[0-9]+"
"""The runs besides the main one (the ``run`` wildcard of the workflow)."""
CONFIDENCE = 0.95
"""Coverage of the t-interval of the PAN share over draws."""


def control_run(condition: str) -> str:
    """The run name of a control condition other than ``trained`` (the main run)."""
    if condition not in CONDITIONS[1:]:
        raise ValueError(f"no separate run for condition {condition!r}; runs exist for {CONDITIONS[1:]}")
    return f"controls/{condition}"


def draw_run(draw: int) -> str:
    """The run name of stability draw ``draw`` (0, 1, ...)."""
    return f"stability/draw{draw}"


def parse_run(run: str) -> tuple[str, int | None]:
    """``(condition, draw)`` of a run name: ``controls/reflect`` -> ``("reflect", None)``,
    ``stability/draw3`` -> ``("trained", 3)``."""
    kind, _, rest = run.partition("/")
    if kind == "controls" and rest in CONDITIONS[1:]:
        return rest, None
    if kind == "stability" and rest.startswith("draw") and rest[4:].isdigit():
        return "trained", int(rest[4:])
    raise ValueError(f"unknown run {run!r}: use controls/<condition> or stability/draw<k>")


def draw_seed(seed: int, draw: int) -> int:
    """The image seed of draw ``draw``: 32 bits of SHA-256 of the main seed and the draw, so
    draws differ from each other and from the main batch, and any integer seed works."""
    digest = hashlib.sha256(f"pan-stability/{seed}/{draw}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def draw_images(images: ImageSpec, draw: int) -> ImageSpec:
    """The §3 batch of draw ``draw``: same source and size as ``images``, its own seed."""
    return replace(images, seed=draw_seed(images.seed, draw))


def run_images(images: ImageSpec, run: str) -> ImageSpec:
    """The images a run analyses: the main batch for controls, its own draw for stability."""
    _, draw = parse_run(run)
    return images if draw is None else draw_images(images, draw)


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

    from .models import load_model
    from .padding import with_reflect_padding

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
    :class:`pan.padding.ChannelPaddedConv2d` is recorded at the wrapper (whose output is the
    layer's output) under the original conv's name."""
    from .layers import AnalysedLayer, analysed_layers
    from .padding import ChannelPaddedConv2d

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
    record: str | Path,
    condition: str = "trained",
    seed: int = DEFAULT_CONTROLS_SEED,
    micro_batch: int | None = None,
    device: str = "auto",
    progress: TextIO | None = None,
) -> dict[str, Any]:
    """Dump the activations of ``spec`` under ``condition`` over ``images`` into ``out_dir``
    (the format of :mod:`pan.dumps`) and write ``record``: a small JSON that outlives the dump
    (``model, condition, seed, images, available, note``). An unavailable condition writes a
    manifest without layers that says why, and no layer file."""
    import sys

    from .activations import dump_module_activations
    from .dumps import MANIFEST
    from .inference import DEFAULT_MICRO_BATCH

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
    Path(record).write_text(json.dumps(summary, indent=1))
    return summary


def label_run_files(
    ks_files: str | Path | Sequence[str | Path], out: str | Path, theta: float
) -> pl.DataFrame:
    """:func:`pan.labelling.label_pan_files`, also for an unavailable run (no neurons, no rows)."""
    files = ks_table_files(ks_files)
    ks = pl.concat([pl.read_parquet(f) for f in files]) if files else pl.DataFrame()
    if ks.is_empty():
        template = pl.DataFrame(
            {"layer": ["x"] * 4, "layer_index": [0] * 4, "neuron": [0] * 4, "border": list("TBLR")},
            schema_overrides={"layer_index": pl.Int32, "neuron": pl.Int32},
        ).with_columns(ks=0.0, ks_plus=0.0, ks_minus=0.0, n_border=0, n_centre=0)
        labels = label_pans(template, theta).clear()
    else:
        labels = label_pans(ks, theta)
    labels.write_parquet(out)
    return labels


# -- controls ----------------------------------------------------------------------------------


def controls_table(
    labels: Mapping[tuple[str, str], pl.DataFrame], notes: Mapping[tuple[str, str], str]
) -> pl.DataFrame:
    """Per ``(model, condition)`` (the keys of ``labels``, in order): Table 2's columns, and a
    ``note`` (why a condition is unavailable; ``""`` otherwise)."""
    rows = []
    for (model, condition), frame in labels.items():
        row = table2({model: frame}).row(0, named=True)
        rows.append(
            {"model": model, "condition": condition, **{k: v for k, v in row.items() if k != "model"}}
        )
        rows[-1]["note"] = notes.get((model, condition), "")
    return pl.DataFrame(rows)


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
    """Per condition and layer: ``condition, layer_index, layer, neurons, pans, share`` (% PANs)."""
    frames = [
        frame.group_by("layer_index", "layer")
        .agg(neurons=pl.len(), pans=pl.col("is_pan").sum().cast(pl.Int64))
        .select(pl.lit(condition).alias("condition"), pl.all())
        for condition, frame in labels.items()
        if not frame.is_empty()
    ]
    schema = {
        "condition": pl.String,
        "layer_index": pl.Int32,
        "layer": pl.String,
        "neurons": pl.UInt32,
        "pans": pl.Int64,
    }
    rows = pl.concat([f.cast(schema) for f in frames]) if frames else pl.DataFrame(schema=schema)
    return rows.with_columns(share=100 * pl.col("pans") / pl.col("neurons")).sort("layer_index", "condition")


# -- stability ---------------------------------------------------------------------------------

NEURON = ["layer_index", "layer", "neuron"]


def stability(draws: Sequence[pl.DataFrame], main: pl.DataFrame) -> pl.DataFrame:
    """One row per neuron: ``layer, layer_index, neuron, pan_frequency`` (fraction of the draws'
    labels in which it is a PAN), ``modal_type`` (its most frequent PAN type over the draws
    where it is one, ties in Table 2's order; ``""`` if never), ``pan_in_main_batch``."""
    stacked = pl.concat(
        [d.select(*NEURON, "is_pan", "pan_type").with_columns(draw=pl.lit(k)) for k, d in enumerate(draws)]
    )
    frequency = stacked.group_by(NEURON).agg(pan_frequency=pl.col("is_pan").sum().cast(pl.Int64) / len(draws))
    order = pl.DataFrame({"pan_type": list(PAN_TYPES), "type_rank": list(range(len(PAN_TYPES)))})
    modal = (
        stacked.filter("is_pan")
        .group_by(*NEURON, "pan_type")
        .agg(times=pl.len())
        .join(order, on="pan_type")
        .sort("times", "type_rank", descending=[True, False])
        .group_by(NEURON, maintain_order=True)
        .first()
        .select(*NEURON, modal_type="pan_type")
    )
    return (
        frequency.join(modal, on=NEURON, how="left")
        .join(main.select(*NEURON, pan_in_main_batch="is_pan"), on=NEURON, how="left")
        .with_columns(pl.col("modal_type").fill_null(""), pl.col("pan_in_main_batch").fill_null(False))
        .select("layer", "layer_index", "neuron", "pan_frequency", "modal_type", "pan_in_main_batch")
        .sort("layer_index", "neuron")
    )


def jaccard(a: set, b: set) -> float:
    """|a ∩ b| / |a ∪ b|; 1 for two empty sets (they agree)."""
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean and two-sided Student-t interval of the mean of ``values`` (at least two)."""
    from scipy.stats import t

    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t.ppf((1 + confidence) / 2, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def stability_summary(model: str, draws: Sequence[pl.DataFrame]) -> dict[str, Any]:
    """One row of ``results/tables/stability.csv``: ``model, draws``, the PAN share (%) over the
    draws as ``pan_pct_mean`` and its 95 % t-interval ``pan_pct_low``, ``pan_pct_high``,
    ``jaccard_mean`` (mean over pairs of draws of the Jaccard index of their PAN sets),
    ``pans_every_draw`` and ``pans_any_draw``."""
    shares = [100 * float(d["is_pan"].sum()) / d.height for d in draws]
    sets = [set(d.filter("is_pan").select("layer", "neuron").iter_rows()) for d in draws]
    mean, low, high = t_interval(shares)
    pairs = [jaccard(a, b) for a, b in itertools.combinations(sets, 2)]
    return {
        "model": model,
        "draws": len(draws),
        "pan_pct_mean": round(mean, 3),
        "pan_pct_low": round(low, 3),
        "pan_pct_high": round(high, 3),
        "jaccard_mean": round(sum(pairs) / len(pairs), 4),
        "pans_every_draw": len(set.intersection(*sets)),
        "pans_any_draw": len(set.union(*sets)),
    }


def frequency_counts(table: pl.DataFrame) -> pl.DataFrame:
    """Neurons that are PANs in at least one draw, counted per ``pan_frequency`` and by whether
    they are PANs in the main batch: ``pan_frequency, pan_in_main_batch, neurons``."""
    return (
        table.filter(pl.col("pan_frequency") > 0)
        .group_by("pan_frequency", "pan_in_main_batch")
        .agg(neurons=pl.len())
        .sort("pan_frequency", "pan_in_main_batch")
    )


def write_stability(draw_files: Sequence[str | Path], main: str | Path, out: str | Path) -> pl.DataFrame:
    """Write ``results/stability/{model}.parquet`` from the draws' labels and the main labels."""
    table = stability([pl.read_parquet(f) for f in draw_files], pl.read_parquet(main))
    table.write_parquet(out)
    return table


def write_stability_table(
    models: Sequence[str], draw_files: Sequence[str | Path], out: str | Path
) -> pl.DataFrame:
    """Write ``results/tables/stability.csv`` from the draws' labels: ``draw_files`` holds each
    model's draws in turn, the models in the order of ``models``."""
    per_model = len(draw_files) // len(models)
    table = pl.DataFrame(
        [
            stability_summary(
                model, [pl.read_parquet(f) for f in draw_files[i * per_model : (i + 1) * per_model]]
            )
            for i, model in enumerate(models)
        ]
    )
    table.write_csv(out)
    return table
