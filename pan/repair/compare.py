"""PAN inheritance: which PANs two models of one architecture share, layer by layer.

For a teacher and its repaired student, or a pretrained backbone and a model fine-tuned from
it, :func:`compare_labels` counts per analysed layer the PANs *kept* (PANs of both), *lost*
(of ``a`` only) and *new* (of ``b`` only), and the Jaccard index of the two PAN sets (1.0 when
neither has a PAN there: nothing differs). Models whose analysed layers or channel counts do
not match are refused naming the first mismatch. Imports no torch.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

__all__ = ["COMPARE_COLUMNS", "LayerMismatchError", "compare_labels", "compare_pair_name", "write_comparison"]

COMPARE_COLUMNS = ("layer_index", "layer", "neurons", "pans_a", "pans_b", "kept", "lost", "new", "jaccard")


class LayerMismatchError(ValueError):
    """The two models' analysed layers or channels differ; the message names the first mismatch."""


def compare_pair_name(a: str, b: str) -> str:
    """The ``{a}_{b}`` of ``results/tables/compare_{a}_{b}.csv``."""
    return f"{a}_{b}"


def _layers(labels: pl.DataFrame) -> list[tuple[str, int]]:
    return list(
        labels.group_by("layer_index", "layer").len().sort("layer_index").select("layer", "len").iter_rows()
    )


def _check_match(a: pl.DataFrame, b: pl.DataFrame, names: tuple[str, str]) -> None:
    layers_a, layers_b = _layers(a), _layers(b)
    for index, (first, second) in enumerate(zip(layers_a, layers_b, strict=False)):
        if first[0] != second[0]:
            raise LayerMismatchError(
                f"{names[0]} and {names[1]} differ at analysed layer {index}: {first[0]!r} vs {second[0]!r}"
            )
        if first[1] != second[1]:
            raise LayerMismatchError(
                f"{names[0]} and {names[1]} differ at layer {first[0]!r}: {first[1]} vs {second[1]} channels"
            )
    if len(layers_a) != len(layers_b):
        shorter, longer = (names[0], layers_b) if len(layers_a) < len(layers_b) else (names[1], layers_a)
        extra = longer[min(len(layers_a), len(layers_b))][0]
        raise LayerMismatchError(
            f"{shorter} has no analysed layer {extra!r} (layer {min(len(layers_a), len(layers_b))})"
        )


def compare_labels(a: pl.DataFrame, b: pl.DataFrame, names: tuple[str, str] = ("a", "b")) -> pl.DataFrame:
    """Per analysed layer (and a last row ``layer == "all"``, ``layer_index == -1``) of two
    PAN label tables (``results/pans/{model}.parquet``): :data:`COMPARE_COLUMNS`."""
    _check_match(a, b, names)
    joined = a.select("layer_index", "layer", "neuron", pan_a="is_pan").join(
        b.select("layer_index", "neuron", pan_b="is_pan"), on=["layer_index", "neuron"], how="inner"
    )
    counts = [
        pl.len().alias("neurons"),
        pl.col("pan_a").sum().alias("pans_a"),
        pl.col("pan_b").sum().alias("pans_b"),
        (pl.col("pan_a") & pl.col("pan_b")).sum().alias("kept"),
        (pl.col("pan_a") & ~pl.col("pan_b")).sum().alias("lost"),
        (~pl.col("pan_a") & pl.col("pan_b")).sum().alias("new"),
    ]
    per_layer = joined.group_by("layer_index", "layer").agg(counts).sort("layer_index")
    total = joined.select(counts).with_columns(layer_index=pl.lit(-1), layer=pl.lit("all"))
    table = pl.concat([per_layer, total.select(per_layer.columns)], how="vertical_relaxed")
    union = pl.col("kept") + pl.col("lost") + pl.col("new")
    jaccard = pl.when(union == 0).then(1.0).otherwise(pl.col("kept") / union)
    return table.with_columns(jaccard=jaccard.round(4)).select(COMPARE_COLUMNS)


def write_comparison(a: str | Path, b: str | Path, names: tuple[str, str], out: str | Path) -> pl.DataFrame:
    """``results/tables/compare_{a}_{b}.csv`` from two label files."""
    table = compare_labels(pl.read_parquet(a), pl.read_parquet(b), names)
    table.write_csv(out)
    return table
