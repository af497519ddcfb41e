"""``results/tables/repair.csv``: each repair before (the plain swap) and after distillation.

Per teacher, strategy and stage, measured by the workflow's own outputs, with no special case
for repaired models: fidelity to the teacher on the §4 images (never trained on) from the
``original`` logits of the teacher and of the model (``results/eval/{model}/original.parquet``),
the PAN count and share by the §3 rule (``results/pans/{model}.parquet``), and the zero-line
attack's top-1 change rates of the model (``results/injection/{model}/original.parquet``).
*Before* is the plain swap (``{teacher}.swapped-{strategy}``), or the teacher itself for a
strategy that swaps nothing (``zero_line``). Imports no torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from pan.bias.logits import read_logits

__all__ = ["REPAIR_COLUMNS", "logit_fidelity", "repair_rows", "write_repair_table"]

REPAIR_COLUMNS = (
    "model",
    "strategy",
    "stage",
    "measured_model",
    "agreement",
    "mean_kl",
    "pans",
    "neurons",
    "pan_pct",
    "zero_line_change_zero",
    "zero_line_change_black",
    "zero_line_change_copied",
    "steps",
    "images",
    "wall_s",
)


def logit_fidelity(teacher: np.ndarray, model: np.ndarray) -> tuple[float, float]:
    """Top-1 agreement (0-1) and mean KL divergence teacher -> model (nats) over images."""
    if teacher.shape != model.shape:
        raise ValueError(f"logits of different shapes: {teacher.shape} and {model.shape}")

    def log_softmax(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float64)
        x = x - x.max(axis=1, keepdims=True)
        return x - np.log(np.exp(x).sum(axis=1, keepdims=True))

    p, q = log_softmax(teacher), log_softmax(model)
    kl = float((np.exp(p) * (p - q)).sum(axis=1).mean())
    agreement = float((teacher.argmax(1) == model.argmax(1)).mean())
    return agreement, kl


def _change_rates(injection: pl.DataFrame) -> dict[str, float | None]:
    rates = dict(injection.group_by("kind").agg(pl.col("changed").mean()).iter_rows())
    return {f"zero_line_change_{k}": rates.get(k) for k in ("zero", "black", "copied")}


def repair_rows(
    teacher: str,
    strategy: str,
    stage: str,
    measured_model: str,
    teacher_eval: str | Path,
    model_eval: str | Path,
    labels: str | Path,
    injection: str | Path,
    provenance: str | Path | None,
) -> dict:
    """One row of the table; ``provenance`` (the repair's) only for ``after``."""
    reference, measured = read_logits(teacher_eval), read_logits(model_eval)
    if reference.ids != measured.ids:
        raise ValueError(f"{model_eval} and {teacher_eval} hold different evaluation images")
    agreement, kl = logit_fidelity(reference.logits, measured.logits)
    label_table = pl.read_parquet(labels)
    pans, neurons = int(label_table["is_pan"].sum()), label_table.height
    repair = json.loads(Path(provenance).read_text()) if provenance else {}
    return {
        "model": teacher,
        "strategy": strategy,
        "stage": stage,
        "measured_model": measured_model,
        "agreement": round(agreement, 4),
        "mean_kl": round(kl, 5),
        "pans": pans,
        "neurons": neurons,
        "pan_pct": round(100 * pans / neurons, 2) if neurons else 0.0,
        **_change_rates(pl.read_parquet(injection)),
        "steps": repair.get("steps", 0),
        "images": repair.get("images", 0),
        "wall_s": repair.get("wall_seconds", 0.0),
    }


def write_repair_table(rows: Sequence[Mapping], out: str | Path) -> pl.DataFrame:
    """Write ``repair.csv`` from :func:`repair_rows` (the workflow's order: teacher, strategy,
    before then after)."""
    table = pl.DataFrame(list(rows), schema_overrides={"wall_s": pl.Float64}).select(REPAIR_COLUMNS)
    table.write_csv(out)
    return table
