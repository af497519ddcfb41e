"""The zero-line attack's tables (:mod:`pan.beyond.attack`, :mod:`pan.beyond.firing`): every rate
with its interval, and the differences between kinds of line and between variants.

The images are the unit of resampling: every image gets the same lines, so an image's lines
move together (a low-confidence image changes under any line). Per image, the share of its
lines (of a kind, orientation and variant) that change the top-1 class and their mean logit L1
are averaged; a rate is the mean over images, and its interval the :data:`CONFIDENCE` percentile
interval of ``bootstrap`` resamples of the images (seeded). The share of PANs that fire is
resampled over PANs instead (each PAN's lines move together; the firing statistics pool all
images, so there is no per-image firing to resample).

Differences (``results/tables/injection_differences.csv``) are paired: the same resample of
images on both sides.

- ``kind - copied``: a padding-like line (``zero``, ``black``) against the copied control,
  under the same variant: the part of the effect that is specific to a padding-like line;
- ``variant - original``: PAN-reflect (and RAND-reflect) against the original under the same
  kind of line: whether switching the PANs to reflect padding makes the model more robust
  (negative) or less (positive).

``orientation`` ``all`` pools rows and columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from pan.beyond.attack import KINDS, ORIENTATIONS, PREDICTION_VARIANTS
from pan.core.labelling import DEFAULT_THETA

__all__ = [
    "CONFIDENCE",
    "DEFAULT_INJECTION_BOOTSTRAP",
    "DIFFERENCE_COLUMNS",
    "SUMMARY_COLUMNS",
    "firing_intervals",
    "injection_differences",
    "injection_summary",
    "rate_intervals",
    "write_injection_summary",
]

DEFAULT_INJECTION_BOOTSTRAP = 1000
"""Bootstrap resamples of the images (rates, differences) and of the PANs (firing shares)."""
CONFIDENCE = 0.95
DIFFERENCE_COLUMNS = (
    "model",
    "comparison",
    "variant",
    "kind",
    "orientation",
    "images",
    "difference",
    "difference_low",
    "difference_high",
)
"""Columns of ``results/tables/injection_differences.csv`` (differences of top-1 change rates)."""


def _weights(units: int, bootstrap: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, units, 7])
    return rng.multinomial(units, np.full(units, 1 / units), size=bootstrap).astype(np.float64) / units


def _interval(samples: np.ndarray) -> tuple[float, float]:
    tail = 100 * (1 - CONFIDENCE) / 2
    return float(np.percentile(samples, tail)), float(np.percentile(samples, 100 - tail))


def _per_image(table: pl.DataFrame) -> pl.DataFrame:
    """Per image, variant, kind and orientation (and ``all``): share of lines changed, mean L1."""
    keys = ["sample", "variant", "kind"]
    aggregates = {"changed": pl.col("changed").cast(pl.Float64).mean(), "l1": pl.col("l1").mean()}
    by_orientation = table.group_by(*keys, "orientation").agg(**aggregates)
    pooled = table.group_by(*keys).agg(**aggregates).with_columns(orientation=pl.lit("all"))
    return pl.concat([by_orientation, pooled.select(by_orientation.columns)]).sort("sample")


def _aligned(per_image: pl.DataFrame, variant: str, kind: str, orientation: str, column: str) -> np.ndarray:
    rows = per_image.filter(
        (pl.col("variant") == variant) & (pl.col("kind") == kind) & (pl.col("orientation") == orientation)
    )
    return rows.sort("sample")[column].to_numpy()


def rate_intervals(
    table: pl.DataFrame, bootstrap: int = DEFAULT_INJECTION_BOOTSTRAP, seed: int = 0
) -> pl.DataFrame:
    """Per kind, orientation (and ``all``) and variant of one model's injection table: the top-1
    change rate and mean L1 with their image-bootstrap intervals."""
    per_image = _per_image(table)
    images = per_image["sample"].n_unique()
    weights = _weights(images, bootstrap, seed)
    rows = []
    for (variant, kind, orientation), _ in per_image.group_by("variant", "kind", "orientation"):
        row = {"kind": kind, "orientation": orientation, "variant": variant}
        for column, name in (("changed", "top1_change_rate"), ("l1", "mean_l1")):
            values = _aligned(per_image, variant, kind, orientation, column)
            low, high = _interval(weights @ values)
            row |= {name: float(values.mean()), f"{name}_low": low, f"{name}_high": high}
        rows.append(row)
    return pl.DataFrame(rows)


def firing_intervals(
    fired: pl.DataFrame, bootstrap: int = DEFAULT_INJECTION_BOOTSTRAP, seed: int = 0
) -> pl.DataFrame:
    """Per kind and orientation (and ``all``): the share of (PAN, position) pairs that fire, with an
    interval from resampling PANs (``fired``: :func:`pan.beyond.firing_pans.pan_firing`)."""
    rows = []
    pooled = fired.with_columns(orientation=pl.lit("all"))
    for (kind, orientation), group in pl.concat([fired, pooled]).group_by("kind", "orientation"):
        per_pan = (  # in PAN order: the draws weigh PANs by position, so the order must not vary
            group.group_by("layer_index", "neuron")
            .agg(pl.col("fires").cast(pl.Float64).mean())
            .sort("layer_index", "neuron")
        )
        values = per_pan["fires"].to_numpy()
        low, high = (
            _interval(_weights(len(values), bootstrap, seed) @ values) if len(values) else (np.nan,) * 2
        )
        rows.append(
            {"kind": kind, "orientation": orientation, "pans_firing_low": low, "pans_firing_high": high}
        )
    schema = {
        "kind": pl.String,
        "orientation": pl.String,
        "pans_firing_low": pl.Float64,
        "pans_firing_high": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


def injection_differences(
    tables: Mapping[str, pl.DataFrame], bootstrap: int = DEFAULT_INJECTION_BOOTSTRAP, seed: int = 0
) -> pl.DataFrame:
    """Paired differences of top-1 change rates with image-bootstrap intervals, per model:
    ``kind - copied`` under each variant and ``variant - original`` under each kind."""
    rows = []
    for model, table in tables.items():
        per_image = _per_image(table)
        images = per_image["sample"].n_unique()
        weights = _weights(images, bootstrap, seed)
        kinds, variants = set(table["kind"]), set(table["variant"])
        pairs = [
            ("kind - copied", variant, kind, (variant, kind), (variant, "copied"))
            for variant in sorted(variants)
            for kind in ("zero", "black")
            if kind in kinds and "copied" in kinds
        ]
        pairs += [
            ("variant - original", variant, kind, (variant, kind), ("original", kind))
            for variant in ("pan_reflect", "rand_reflect")
            for kind in sorted(kinds)
            if variant in variants and "original" in variants
        ]
        for comparison, variant, kind, first, second in pairs:
            for orientation in ("rows", "columns", "all"):
                if orientation != "all" and orientation not in set(table["orientation"]):
                    continue
                values = _aligned(per_image, *first, orientation, "changed") - _aligned(
                    per_image, *second, orientation, "changed"
                )
                low, high = _interval(weights @ values)
                rows.append(
                    dict(
                        zip(
                            DIFFERENCE_COLUMNS,
                            (
                                model,
                                comparison,
                                variant,
                                kind,
                                orientation,
                                images,
                                float(values.mean()),
                                low,
                                high,
                            ),
                            strict=True,
                        )
                    )
                )
    schema = dict.fromkeys(DIFFERENCE_COLUMNS, pl.String) | {
        "images": pl.Int64,
        "difference": pl.Float64,
        "difference_low": pl.Float64,
        "difference_high": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


SUMMARY_COLUMNS = (
    "model",
    "kind",
    "orientation",
    "variant",
    "images",
    "pans",
    "pans_firing_fraction",
    "pans_firing_low",
    "pans_firing_high",
    "top1_change_rate",
    "top1_change_rate_low",
    "top1_change_rate_high",
    "mean_l1",
    "mean_l1_low",
    "mean_l1_high",
)
"""Columns of ``results/tables/injection_summary.csv``; ``_low``/``_high``: the 95 % bootstrap
interval; orientation ``all`` pools rows and columns."""


def injection_summary(
    firing: Mapping[str, pl.DataFrame],
    labels: Mapping[str, pl.DataFrame],
    predictions: Mapping[str, pl.DataFrame],
    theta: float = DEFAULT_THETA,
    bootstrap: int = DEFAULT_INJECTION_BOOTSTRAP,
) -> pl.DataFrame:
    """Per model, kind, orientation (and ``all``) and variant: PANs of that orientation, the share
    of (PAN, position) pairs that fire (measured on the original model, so the same for every
    variant), the top-1 change rate and the mean L1 logit distance, each with its interval."""
    from pan.beyond.firing_pans import pan_firing  # here: the config reads this module's defaults, no torch

    frames = []
    for model, table in predictions.items():
        fired = pan_firing(firing[model], labels[model], theta)
        label = labels[model]
        pans = {
            o: label.filter(pl.any_horizontal(*[pl.col(f"pan_{b}") for b in borders])).height
            for o, borders in ORIENTATIONS.items()
        }
        pans["all"] = label.filter(pl.any_horizontal(*[pl.col(f"pan_{b}") for b in "TBLR"])).height
        share = pl.concat([fired, fired.with_columns(orientation=pl.lit("all"))])
        share = share.group_by("kind", "orientation").agg(pans_firing_fraction=pl.col("fires").mean())
        frames.append(
            rate_intervals(table, bootstrap)
            .join(share, on=["kind", "orientation"], how="left")
            .join(firing_intervals(fired, bootstrap), on=["kind", "orientation"], how="left")
            .with_columns(
                model=pl.lit(model),
                images=pl.lit(table["sample"].n_unique(), dtype=pl.Int64),
                pans=pl.col("orientation").replace_strict(pans, return_dtype=pl.Int64),
            )
        )
    kind_order = {k: i for i, k in enumerate(KINDS)}
    variant_order = {v: i for i, v in enumerate(PREDICTION_VARIANTS)}
    orientation_order = {"rows": 0, "columns": 1, "all": 2}
    return (
        pl.concat(frames)
        .select(SUMMARY_COLUMNS)
        .sort(
            "model",
            pl.col("kind").replace_strict(kind_order),
            pl.col("orientation").replace_strict(orientation_order),
            pl.col("variant").replace_strict(variant_order),
        )
    )


def write_injection_summary(
    models: Sequence[str],
    firing_files: Sequence[str | Path],
    label_files: Sequence[str | Path],
    table_files: Sequence[str | Path],
    out: str | Path,
    theta: float,
    bootstrap: int = DEFAULT_INJECTION_BOOTSTRAP,
    differences_out: str | Path | None = None,
) -> pl.DataFrame:
    """``injection_summary.csv`` (and ``injection_differences.csv`` when ``differences_out`` is
    given) from each model's firing statistics, labels and injection table."""
    tables = {m: pl.read_csv(f) for m, f in zip(models, table_files, strict=True)}
    summary = injection_summary(
        {m: pl.read_parquet(f) for m, f in zip(models, firing_files, strict=True)},
        {m: pl.read_parquet(f) for m, f in zip(models, label_files, strict=True)},
        tables,
        theta,
        bootstrap,
    )
    summary.write_csv(out)
    if differences_out is not None:
        injection_differences(tables, bootstrap).write_csv(differences_out)
    return summary
