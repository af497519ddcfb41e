"""Sample influence (paper §4.2): which images the PANs' padding moves most.

Per image, the Manhattan (L1) distance between the logits of ``original`` and of
``pan_reflect`` (or of the control ``rand_reflect``); images ranked by it, and a per-model
summary of the most affected ones. ``sample_influence_{model}.csv`` has the columns of
:data:`INFLUENCE_SCHEMA`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from pan.bias.logits import Logits
from pan.bias.odds import check_same_images, read_runs

__all__ = [
    "INFLUENCE_SCHEMA",
    "INFLUENCE_VARIANTS",
    "TOP_FRACTION",
    "influence_summary",
    "read_influence",
    "sample_influence",
    "write_influence_summary",
    "write_sample_influence",
]

INFLUENCE_VARIANTS: tuple[str, ...] = ("pan_reflect", "rand_reflect")
"""Variants whose per-image distance to ``original`` is ranked (§4.2)."""
TOP_FRACTION = 0.1
"""Share of the most affected images the §4.2 summary looks at (the paper's 5,000 of 50,000)."""

INFLUENCE_SCHEMA = {
    "model": pl.String,
    "variant": pl.String,
    "rank": pl.Int64,
    "sample": pl.Int64,
    "id": pl.String,
    "distance": pl.Float64,
    "class_index": pl.Int64,
    "class_name": pl.String,
    "pred_original": pl.Int64,
    "pred_original_name": pl.String,
    "pred_variant": pl.Int64,
    "pred_variant_name": pl.String,
    "disagree": pl.Boolean,
    "correct_original": pl.Boolean,
    "correct_variant": pl.Boolean,
}
"""Columns of ``sample_influence_{model}.csv``; class and correctness columns are empty without labels."""


def sample_influence(runs: Mapping[str, Logits]) -> pl.DataFrame:
    """Images ranked by the L1 distance of their logits to ``original``, per :data:`INFLUENCE_VARIANTS`.

    Columns: :data:`INFLUENCE_SCHEMA`; rank 1 is the most affected image of a variant.
    """
    missing = [v for v in ("original", *INFLUENCE_VARIANTS) if v not in runs]
    if missing:
        raise ValueError(f"sample influence needs the logits of {missing}")
    check_same_images(runs)
    original = runs["original"]
    truth = original.class_index
    pred_original = original.logits.argmax(axis=1)
    frames = []
    for variant in INFLUENCE_VARIANTS:
        logits = runs[variant].logits
        distance = np.abs(logits.astype(np.float64) - original.logits.astype(np.float64)).sum(axis=1)
        pred = logits.argmax(axis=1)
        order = np.argsort(-distance, kind="stable")
        frames.append(
            pl.DataFrame(
                {
                    "model": original.model,
                    "variant": variant,
                    "rank": np.arange(1, len(order) + 1),
                    "sample": order,
                    "id": [original.ids[i] for i in order],
                    "distance": distance[order],
                    "class_index": truth[order] if truth is not None else None,
                    "class_name": [original.class_name(c) for c in truth[order]]
                    if truth is not None
                    else None,
                    "pred_original": pred_original[order],
                    "pred_original_name": [original.class_name(c) for c in pred_original[order]],
                    "pred_variant": pred[order],
                    "pred_variant_name": [original.class_name(c) for c in pred[order]],
                    "disagree": pred[order] != pred_original[order],
                    "correct_original": pred_original[order] == truth[order] if truth is not None else None,
                    "correct_variant": pred[order] == truth[order] if truth is not None else None,
                },
                schema=INFLUENCE_SCHEMA,
            )
        )
    return pl.concat(frames)


def write_sample_influence(eval_files: Sequence[str | Path], out: str | Path) -> pl.DataFrame:
    """Write the ranked sample influence of one model from its variants' logit files."""
    runs = read_runs(eval_files)  # a dense output has no classes: an empty table (pan.bias.outputs)
    table = (
        sample_influence(runs) if runs["original"].is_classifier else pl.DataFrame(schema=INFLUENCE_SCHEMA)
    )
    table.write_csv(out)
    return table


def influence_summary(tables: Mapping[str, pl.DataFrame], top_fraction: float = TOP_FRACTION) -> pl.DataFrame:
    """§4.2 in numbers, one row per model, from the ranked sample influence tables.

    Columns: ``images``; ``labelled`` (whether correctness is known); ``top_images``, the
    ``ceil(top_fraction * images)`` most affected images under ``pan_reflect``; ``cut_distance``,
    the distance of the last of them; ``disagreements_pan_reflect`` and
    ``disagreements_rand_reflect``, images among each variant's own top whose predicted
    class changes; ``rand_reflect_reaching_cut``, images whose ``rand_reflect`` distance
    reaches ``cut_distance`` (§4.2: 13 against 5,000); and, with labels only,
    ``top_wrong_both`` (top ``pan_reflect`` images misclassified by both models) and the
    accuracy of ``original``, ``pan_reflect`` and ``rand_reflect``.
    """
    rows = []
    for model, table in tables.items():
        pan = table.filter(variant="pan_reflect").sort("rank")
        rand = table.filter(variant="rand_reflect").sort("rank")
        images = pan.height
        top = max(1, math.ceil(top_fraction * images)) if images else 0
        cut = pan["distance"][top - 1] if top else None
        labelled = images > 0 and pan["correct_original"].null_count() == 0
        top_pan = pan.head(top)
        rows.append(
            {
                "model": model,
                "images": images,
                "labelled": labelled,
                "top_fraction": top_fraction,
                "top_images": top,
                "cut_distance": cut,
                "disagreements_pan_reflect": int(top_pan["disagree"].sum()),
                "disagreements_rand_reflect": int(rand.head(top)["disagree"].sum()),
                "rand_reflect_reaching_cut": int((rand["distance"] >= cut).sum()) if top else 0,
                "top_wrong_both": int((~top_pan["correct_original"] & ~top_pan["correct_variant"]).sum())
                if labelled
                else None,
                "accuracy_original": pan["correct_original"].mean() if labelled else None,
                "accuracy_pan_reflect": pan["correct_variant"].mean() if labelled else None,
                "accuracy_rand_reflect": rand["correct_variant"].mean() if labelled else None,
            }
        )
    return pl.DataFrame(
        rows,
        schema_overrides={
            "cut_distance": pl.Float64,
            "top_wrong_both": pl.Int64,
            "accuracy_original": pl.Float64,
            "accuracy_pan_reflect": pl.Float64,
            "accuracy_rand_reflect": pl.Float64,
        },
    )


def read_influence(path: str | Path) -> pl.DataFrame:
    """A ranked sample influence table written by :func:`write_sample_influence`."""
    return pl.read_csv(path, schema=INFLUENCE_SCHEMA)


def write_influence_summary(influence_files: Mapping[str, str | Path], out: str | Path) -> pl.DataFrame:
    """Write the §4.2 summary from each model's ``sample_influence_{model}.csv`` (model -> file)."""
    table = influence_summary({model: read_influence(f) for model, f in influence_files.items()})
    table.write_csv(out)
    return table
