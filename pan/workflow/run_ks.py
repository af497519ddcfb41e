"""The KS job of a run (the main run, a control or a draw): one function for every run.

A run that keeps its activation dump (the main run: figures and reach read it) is scored
from that dump, :func:`pan.core.scoring.score_dump`. A run whose dump nobody reads again
(controls, stability draws) makes its maps in the same job and scores them in memory,
through the same :func:`pan.core.scoring.score_layer_maps`: no Parquet write and read of a
dump of about 1 GB per run, and the same KS tables to the bit (the maps are the same float32
values the dump would hold). Maps are recorded in groups of layers that fit
:data:`pan.workflow.resources.MAPS_BUDGET_MB`, one forward pass per group over images
decoded once.

Either way the job writes the run's record (``model, condition, seed, images, available,
note``), which the controls table reads.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pan.capture.images import ImageSpec, image_records
from pan.core.ks import DEFAULT_SHARE
from pan.trust.controls import DEFAULT_CONTROLS_SEED

if TYPE_CHECKING:
    from pan.capture.models import ModelSpec

__all__ = ["score_run"]


def score_run(
    spec: ModelSpec,
    images: ImageSpec,
    ks_dir: str | Path,
    record: str | Path,
    condition: str = "trained",
    seed: int = DEFAULT_CONTROLS_SEED,
    dump: str | Path | None = None,
    shapes: str | Path | None = None,
    micro_batch: int | None = None,
    device: str = "auto",
    ks_device: str = "cpu",
    threads: int | None = None,
    budget_mb: float | None = None,
    progress: TextIO | None = None,
    q: float = DEFAULT_SHARE,
    replicates: int = 0,
    bootstrap_seed: int = 0,
    interior_out: str | Path | None = None,
) -> dict[str, Any]:
    """Write the KS tables of ``spec`` under ``condition`` over ``images`` into ``ks_dir`` (one
    per layer, as :func:`pan.core.scoring.score_dump`) and the run's ``record``.

    With ``dump`` (a dump of this run) the maps are read from it; else they are made here, the
    layers grouped by the shapes file ``shapes`` (:func:`pan.workflow.resources.layer_shapes`;
    default: one group) within ``budget_mb`` of maps. ``device`` runs the model, ``ks_device``
    scores (:func:`pan.core.scoring.score_maps`) by both PAN rules (``q``: the share rule's
    share). An unavailable condition writes no table and a record that says why.

    The image-bootstrap intervals (``replicates``, ``bootstrap_seed``) and the interior-line
    null (``interior_out``) are computed from a dump (the main run's); a run scored in memory
    skips them and writes ``interior_out`` as an empty table (a rerun's labels carry no interval)."""
    from pan.core.scoring import score_dump

    ks_dir = Path(ks_dir)
    ks_dir.mkdir(parents=True, exist_ok=True)
    records = image_records(images)
    if dump is not None:
        from pan.core.dumps import read_manifest

        score_dump(
            dump,
            ks_dir,
            device=ks_device,
            threads=threads,
            q=q,
            replicates=replicates,
            seed=bootstrap_seed,
            interior_out=interior_out,
        )
        note = read_manifest(dump).get("unavailable", "")
        available = not note
    else:
        available, note = _score_in_memory(
            spec,
            records,
            ks_dir,
            condition,
            seed,
            shapes,
            micro_batch,
            device,
            ks_device,
            threads,
            budget_mb,
            progress,
            q,
        )
        if interior_out is not None:
            import pyarrow.parquet as pq

            from pan.core.interior import INTERIOR_SCHEMA

            pq.write_table(INTERIOR_SCHEMA.empty_table(), interior_out)
    summary = {
        "model": spec.name,
        "condition": condition,
        "seed": seed if condition == "random_init" else None,
        "images": [r.id for r in records],
        "available": available,
        "note": note,
    }
    Path(record).write_text(json.dumps(summary, indent=1))
    return summary


def _score_in_memory(
    spec,
    records,
    ks_dir,
    condition,
    seed,
    shapes,
    micro_batch,
    device,
    ks_device,
    threads,
    budget_mb,
    progress,
    q,
) -> tuple[bool, str]:
    from pan.capture.activations import record_maps
    from pan.capture.inference import DEFAULT_MICRO_BATCH
    from pan.capture.padding import layer_padding
    from pan.core.scoring import score_layer_maps
    from pan.trust.controls import control_model, recorded_layers
    from pan.workflow.resources import MAPS_BUDGET_MB, map_groups, read_layer_shapes

    loaded, note = control_model(spec, condition, seed)
    if loaded is None:
        print(f"model {spec.name!r}, condition {condition}: {note}; its labels stay empty", file=sys.stderr)
        return False, note
    layers = recorded_layers(loaded.model)
    groups = None
    if shapes is not None:  # shapes name a wrapped conv ``x.conv``; the run records it as ``x``
        planned = map_groups(read_layer_shapes(shapes), len(records), budget_mb or MAPS_BUDGET_MB)
        group_of = {name: i for i, group in enumerate(planned) for name in group}
        groups = [[] for _ in planned]
        for layer in layers:
            number = group_of.get(layer.name, group_of.get(f"{layer.name}.conv"))
            if number is not None:  # any other layer is recorded in a last pass of its own
                groups[number].append(layer.name)
    passes = record_maps(
        loaded.model,
        loaded.transform,
        records,
        spec.name,
        groups,
        micro_batch or DEFAULT_MICRO_BATCH,
        device,
        progress,
        layers=layers,
    )
    for layer, maps in passes:
        start = time.perf_counter()
        meta = {
            "layer": layer.name,
            "layer_index": str(layer.index),
            "padding": layer_padding(loaded.model, layer.name),
        }
        score_layer_maps(maps, meta, ks_dir / f"{layer.name}.parquet", ks_device, threads, q=q)
        print(
            f"scored {layer.name} ({maps.shape[1]} neurons) in {time.perf_counter() - start:.2f} s",
            file=sys.stderr,
        )
        del maps
    return True, ""
