"""Padding bias (paper §4): per-class odds (Eq. 1), Table 3 and sample influence.

All numbers come from the logits of the four variants (:mod:`pan.variants`) over the same
images (:mod:`pan.logits`):

- **odds** of a class ``c`` under a variant ``v`` against ``original``:
  ``sum_i softmax(v(i))[c] / sum_i softmax(original(i))[c]`` (softmax in float64);
- **Table 3**: the classes whose odds move by more than a threshold ``t``: ``odds > 1 + t``
  (``up``) or ``1 / odds > 1 + t`` (``down``);
- **sample influence**: per image, the Manhattan (L1) distance between the logits of
  ``original`` and of ``pan_reflect`` (or ``rand_reflect``), images ranked by it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from .logits import Logits, read_logits

ODDS_VARIANTS: tuple[str, ...] = ("pan_reflect", "rand_reflect", "reflect")
"""Variants whose odds are taken against ``original``, in the column order of the odds table."""
INFLUENCE_VARIANTS: tuple[str, ...] = ("pan_reflect", "rand_reflect")
"""Variants whose per-image distance to ``original`` is ranked (§4.2)."""
DEFAULT_ODDS_THRESHOLD = 0.07
TOP_FRACTION = 0.1
"""Share of the most affected images the §4.2 summary looks at (the paper's 5,000 of 50,000)."""

ODDS_SCHEMA = {
    "class_index": pl.Int64,
    "class_name": pl.String,
    **{f"{kind}_{v}": pl.Float64 for v in ODDS_VARIANTS for kind in ("odds", "log_odds")},
}
"""Columns of ``odds_{model}.csv`` (log-odds are natural logarithms)."""
TABLE3_SCHEMA = {
    "model": pl.String,
    "variant": pl.String,
    "direction": pl.String,
    "class_index": pl.Int64,
    "class_name": pl.String,
    "odds": pl.Float64,
    "log_odds": pl.Float64,
}
"""Columns of ``table3.csv``: one row per model, variant and class beyond the threshold."""
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


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable: the row maximum is subtracted first)."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def class_odds(original: np.ndarray, variant: np.ndarray) -> np.ndarray:
    """Eq. 1: per class, the summed softmax of ``variant`` over that of ``original`` (same images)."""
    if original.shape != variant.shape:
        raise ValueError(f"logits differ in shape: original {original.shape}, variant {variant.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return softmax(variant).sum(axis=0) / softmax(original).sum(axis=0)


def _check_same_images(runs: Mapping[str, Logits]) -> None:
    """Every variant must have seen the same images in the same order."""
    reference = runs["original"]
    for name, run in runs.items():
        if run.ids != reference.ids or run.num_classes != reference.num_classes:
            raise ValueError(f"variant {name!r} was evaluated on other images or classes than 'original'")


def odds_table(runs: Mapping[str, Logits]) -> pl.DataFrame:
    """Per class: odds and natural log-odds of each of :data:`ODDS_VARIANTS` against ``original``."""
    missing = [v for v in ("original", *ODDS_VARIANTS) if v not in runs]
    if missing:
        raise ValueError(f"odds need the logits of {missing}")
    _check_same_images(runs)
    original = runs["original"]
    columns: dict[str, object] = {
        "class_index": np.arange(original.num_classes),
        "class_name": pl.Series(
            [original.class_name(c) for c in range(original.num_classes)], dtype=pl.String
        ),
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        for variant in ODDS_VARIANTS:
            odds = class_odds(original.logits, runs[variant].logits)
            columns[f"odds_{variant}"] = odds
            columns[f"log_odds_{variant}"] = np.log(odds)
    return pl.DataFrame(columns, schema=ODDS_SCHEMA)


def read_runs(eval_files: Sequence[str | Path]) -> dict[str, Logits]:
    """The logits of one model's variants, keyed by variant name (from the files' metadata)."""
    runs = [read_logits(f) for f in eval_files]
    return {run.variant: run for run in runs}


def write_odds(eval_files: Sequence[str | Path], out: str | Path) -> pl.DataFrame:
    """Write the odds table of one model from its variants' logit files."""
    table = odds_table(read_runs(eval_files))
    table.write_csv(out)
    return table


def table3(odds: Mapping[str, pl.DataFrame], threshold: float = DEFAULT_ODDS_THRESHOLD) -> pl.DataFrame:
    """The classes whose odds move by more than ``threshold`` (e.g. 0.07 for 7%), per model and variant.

    Columns: ``model, variant, direction, class_index, class_name, odds, log_odds``;
    ``direction`` is ``down`` (``1 / odds > 1 + threshold``, listed first) or ``up``
    (``odds > 1 + threshold``); models in the given order, variants in :data:`ODDS_VARIANTS`
    order, ``down`` before ``up``, the largest change first.
    """
    if not threshold > 0:
        raise ValueError(f"odds threshold must be positive, got {threshold}")
    rows = [
        frame.select(
            pl.lit(model).alias("model"),
            pl.lit(variant).alias("variant"),
            pl.when(pl.col(f"odds_{variant}") > 1)
            .then(pl.lit("up"))
            .otherwise(pl.lit("down"))
            .alias("direction"),
            "class_index",
            pl.col("class_name").cast(pl.String),
            pl.col(f"odds_{variant}").alias("odds"),
            pl.col(f"log_odds_{variant}").alias("log_odds"),
        )
        .filter((pl.col("odds") > 1 + threshold) | (1 / pl.col("odds") > 1 + threshold))
        .sort(["direction", pl.col("log_odds").abs()], descending=[False, True], maintain_order=True)
        for model, frame in odds.items()
        for variant in ODDS_VARIANTS
    ]
    return pl.concat(rows).cast(TABLE3_SCHEMA) if rows else pl.DataFrame(schema=TABLE3_SCHEMA)


def write_table3(
    odds_files: Sequence[str | Path], out: str | Path, threshold: float = DEFAULT_ODDS_THRESHOLD
) -> pl.DataFrame:
    """Write Table 3 from the models' odds tables (``odds_{model}.csv``, model from the file name)."""
    odds = {Path(f).stem.removeprefix("odds_"): pl.read_csv(f, schema=ODDS_SCHEMA) for f in odds_files}
    table = table3(odds, threshold)
    table.write_csv(out)
    return table


def sample_influence(runs: Mapping[str, Logits]) -> pl.DataFrame:
    """Images ranked by the L1 distance of their logits to ``original``, per :data:`INFLUENCE_VARIANTS`.

    Columns: :data:`INFLUENCE_SCHEMA`; rank 1 is the most affected image of a variant.
    """
    missing = [v for v in ("original", *INFLUENCE_VARIANTS) if v not in runs]
    if missing:
        raise ValueError(f"sample influence needs the logits of {missing}")
    _check_same_images(runs)
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
    table = sample_influence(read_runs(eval_files))
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


def write_influence_summary(influence_files: Sequence[str | Path], out: str | Path) -> pl.DataFrame:
    """Write the §4.2 summary from the models' ``sample_influence_{model}.csv`` files."""
    tables = {
        Path(f).stem.removeprefix("sample_influence_"): pl.read_csv(f, schema=INFLUENCE_SCHEMA)
        for f in influence_files
    }
    table = influence_summary(tables)
    table.write_csv(out)
    return table
