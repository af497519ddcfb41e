"""The repair jobs: the plain swap, the distillation with its provenance, the ``.pt2`` export.

A repair job writes its three outputs (``student.pt``, ``curve.parquet``, ``provenance.json``)
only once training has finished, each to a temporary name renamed into place, so a killed job
leaves no output a rerun could trust; its checkpoint (``checkpoint.pt`` beside them, not an
output) lets the rerun resume, and is removed once the outputs exist.
"""

from __future__ import annotations

import json
import logging
import resource
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from pan.capture.images import image_records
from pan.capture.inference import pick_device
from pan.capture.models import ModelSpec, load_model

from .distill import _file_digest, distill
from .names import RepairedModelSpec
from .settings import DistillSettings
from .student import build_student, save_student

__all__ = ["PROVENANCE_FORMAT", "export_student", "read_repair_provenance", "repair", "write_swapped"]

PROVENANCE_FORMAT = "pan-repair/1"


def write_swapped(
    teacher: ModelSpec, strategy: str, out: str | Path, labels: str | Path | None = None
) -> None:
    """The plain swap of ``teacher`` by ``strategy`` as a state dict (``labels``: the teacher's
    PAN labels, needed by ``pan_reflect`` only)."""
    import polars as pl

    loaded = load_model(teacher)
    student = build_student(loaded.model, strategy, pl.read_parquet(labels) if labels else None)
    swapped = sum(int(b.sum()) for k, b in student.state_dict().items() if k.endswith(".reflect_mask"))
    logging.info("%s by %s: %d output channels pad with reflect", teacher.name, strategy, swapped)
    save_student(student, out)


def _peak_rss_mb() -> float:
    """This process's peak resident memory (MB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def repair(
    swapped: RepairedModelSpec,
    settings: DistillSettings,
    student_out: str | Path,
    curve_out: str | Path,
    provenance_out: str | Path,
    device: str = "auto",
) -> dict[str, Any]:
    """Distil the plain swap ``swapped`` towards its teacher on ``settings.images``; write the
    student's state dict, the curve and the provenance (returned)."""
    began = time.perf_counter()
    teacher = load_model(swapped.teacher)
    student = load_model(swapped)
    records = image_records(settings.images)
    target = pick_device(device)
    logging.info(
        "repairing %s by %s on %s: %d training and %d held-out images, %d steps of %d",
        swapped.teacher.name,
        swapped.strategy,
        target,
        len(records) - settings.held_out,
        settings.held_out,
        settings.steps,
        settings.batch,
    )
    checkpoint = Path(student_out).with_name("checkpoint.pt")
    curve, seconds = distill(
        teacher.model,
        student.model,
        teacher.transform,
        records,
        settings,
        strategy=swapped.strategy,
        output_key=swapped.teacher.output,
        device=target,
        checkpoint=checkpoint,
        checkpoint_inputs={"swapped": _file_digest(swapped.state_dict), "teacher": repr(swapped.teacher)},
    )
    measured = curve.filter(curve["held_out_kl"].is_not_null())
    provenance = {
        "format": PROVENANCE_FORMAT,
        "teacher": swapped.teacher.name,
        "teacher_spec": {
            k: v for k, v in vars(swapped.teacher).items() if v is not None and k != "categories"
        },
        "strategy": swapped.strategy,
        "settings": asdict(settings),
        "steps": settings.steps,
        "images": len(records) - settings.held_out,
        "held_out_images": settings.held_out,
        "image_ids": [r.id for r in records],
        "seed": settings.seed,
        "device": str(target),
        "train_seconds": round(seconds, 2),
        "wall_seconds": round(time.perf_counter() - began, 2),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "held_out_before": {"kl": measured["held_out_kl"][0], "agreement": measured["held_out_agreement"][0]},
        "held_out_after": {
            "kl": measured["held_out_kl"][-1],
            "agreement": measured["held_out_agreement"][-1],
        },
        "loss_curve": curve["loss"].drop_nulls().round(6).to_list(),
        "torch_version": torch.__version__,
    }
    for path in (student_out, curve_out, provenance_out):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    curve_tmp = Path(curve_out).with_name(f".{Path(curve_out).name}.partial")
    curve.write_parquet(curve_tmp)
    provenance_tmp = Path(provenance_out).with_name(f".{Path(provenance_out).name}.partial")
    provenance_tmp.write_text(json.dumps(provenance, indent=2) + "\n")
    save_student(student.model, student_out)
    curve_tmp.replace(curve_out)
    provenance_tmp.replace(provenance_out)
    checkpoint.unlink(missing_ok=True)
    logging.info(
        "done in %.0f s (training %.0f s), held-out KL %.4f -> %.4f, agreement %.3f -> %.3f",
        provenance["wall_seconds"],
        seconds,
        provenance["held_out_before"]["kl"],
        provenance["held_out_after"]["kl"],
        provenance["held_out_before"]["agreement"],
        provenance["held_out_after"]["agreement"],
    )
    return provenance


def read_repair_provenance(path: str | Path) -> dict[str, Any]:
    """A repair's ``provenance.json``."""
    return json.loads(Path(path).read_text())


def export_student(spec: RepairedModelSpec, provenance: str | Path, path: str | Path) -> dict[str, Any]:
    """The repaired student as a standalone ``torch.export`` artefact (``.pt2``, CPU, the
    teacher's input size) whose provenance (inside, and in a JSON sidecar) is the repair's."""
    from pan.bias.export import export_variant

    loaded = load_model(spec)
    repaired = read_repair_provenance(provenance)
    repaired.pop("image_ids")
    example = torch.zeros(1, 3, loaded.input_size, loaded.input_size)
    metadata = {"variant": "repaired", "source_model": spec.name, "repair": repaired}
    # The rule declares the .pt2: a student torch.export refuses fails here, with torch's error.
    return export_variant(loaded.model, {}, example, path, metadata, state_dict_fallback=False)
