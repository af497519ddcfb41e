"""Nascent vs downstream PANs, told apart by an intervention (beyond §3).

§3 names two kinds of PAN: *nascent* PANs read the padding of their own conv, *downstream*
PANs get the border from earlier layers (Fig. 8). Here the difference is measured: for each
analysed layer, the §3 batch runs again with reflect padding in that layer's own conv only
(every channel of it; every other layer keeps zero padding), and the layer is scored again
with §3's KS, KS+ and KS- (:func:`own_reflect_ks`: one forward pass per layer, stopped at
the layer, only its maps in memory; no dump written). These statistics are theta-free.

:func:`label_origin` then applies the PAN rule at theta: a PAN border that no longer passes
when only its own padding changes is ``nascent``; one that still passes is ``downstream``.
A PAN whose borders disagree is ``mixed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pan.core.borders import BORDERS
from pan.core.labelling import DEFAULT_THETA, check_theta, pan_rule
from pan.core.scoring import KS_SCHEMA, score_maps

__all__ = [
    "ORIGINS",
    "ORIGIN_COLUMNS",
    "label_origin",
    "origin_counts",
    "own_reflect_ks",
    "write_origin",
    "write_origin_table",
    "write_own_reflect_ks",
]

ORIGINS: tuple[str, ...] = ("nascent", "downstream", "mixed")


def own_reflect_ks(
    net, records, transform, micro_batch: int, device: str = "auto", progress: TextIO | None = None
):
    """KS tables (:data:`pan.core.scoring.KS_SCHEMA`) of every analysed layer of ``net`` when that
    layer alone pads with reflect, over ``records`` preprocessed once by ``transform``."""
    import torch

    from pan.bias.reflect import with_reflect_padding
    from pan.capture.inference import layer_outputs, pick_device, preprocessed_batches
    from pan.capture.layers import AnalysedLayer, analysed_layers
    from pan.logs import image_progress

    target = pick_device(device)
    net = net.to(target).eval()
    batches = list(preprocessed_batches(records, transform, micro_batch))
    layers = analysed_layers(net, batches[0][:1].to(target))  # indexed by depth, as the dump
    bar = image_progress(len(records) * len(layers), "own-reflect passes", progress)
    tables = []
    for layer in layers:
        variant = with_reflect_padding(net, {layer.name: torch.ones(layer.out_channels, dtype=torch.bool)})
        hooked = AnalysedLayer(layer.index, layer.name, variant.get_submodule(layer.name))
        maps = layer_outputs(variant, hooked, iter(batches), target, bar.update).numpy()
        tables.append(score_maps(maps, layer.name, layer.index))
        del maps, variant
    bar.close()
    return pa.concat_tables(tables) if tables else KS_SCHEMA.empty_table()


def write_own_reflect_ks(
    model, images, out: str | Path, micro_batch: int, device: str = "auto", progress: TextIO | None = None
) -> pa.Table:
    """:func:`own_reflect_ks` of the configured ``model`` (a ModelSpec) over the §3 batch
    ``images`` (an ImageSpec), written to ``out``."""
    from pan.capture.images import image_records
    from pan.capture.models import load_model

    loaded = load_model(model)
    table = own_reflect_ks(
        loaded.model, image_records(images), loaded.transform, micro_batch, device, progress
    )
    pq.write_table(table, out)
    return table


def label_origin(labels: pl.DataFrame, own_ks: pl.DataFrame, theta: float = DEFAULT_THETA) -> pl.DataFrame:
    """One row per PAN of ``labels`` (:func:`pan.core.labelling.label_pans`) with its origin.

    Columns, as the labels' per-border columns (T, B, L, R within each statistic): ``layer,
    layer_index, neuron, pan_type, own_ks_T..own_ks_R, own_ks_plus_T..own_ks_plus_R,
    own_ks_minus_T..own_ks_minus_R`` (the layer's own-reflect statistics), ``origin_T..origin_R``
    (``nascent``/``downstream``, null where the neuron is no PAN for that border), then
    ``origin`` (``nascent``, ``downstream`` or ``mixed``) and ``theta``.
    """
    theta = check_theta(theta)
    own = own_ks.with_columns(still=pan_rule(theta)).pivot(
        on="border",
        index=["layer_index", "neuron"],
        values=["ks", "ks_plus", "ks_minus", "still"],
        separator="_",
    )
    own = own.rename({c: f"own_{c}" for c in own.columns if c not in ("layer_index", "neuron")})
    pans = labels.filter("is_pan").join(own, on=["layer_index", "neuron"], how="left")
    origin_b = {
        f"origin_{b}": pl.when(pl.col(f"pan_{b}"))
        .then(pl.when(pl.col(f"own_still_{b}")).then(pl.lit("downstream")).otherwise(pl.lit("nascent")))
        .otherwise(pl.lit(None, dtype=pl.String))
        for b in BORDERS
    }
    pans = pans.with_columns(**origin_b)
    kinds = pl.concat_list([pl.col(f"origin_{b}") for b in BORDERS]).list.drop_nulls().list.unique()
    origin = pl.when(kinds.list.len() > 1).then(pl.lit("mixed")).otherwise(kinds.list.first())
    return pans.select(
        "layer",
        "layer_index",
        "neuron",
        "pan_type",
        *[f"own_{stat}_{b}" for stat in ("ks", "ks_plus", "ks_minus") for b in BORDERS],
        *origin_b,
        origin=origin,
        theta=pl.lit(theta),
    ).sort("layer_index", "neuron")


def write_origin(labels: str | Path, own_ks: str | Path, out: str | Path, theta: float) -> pl.DataFrame:
    """:func:`label_origin` from a label file and an own-reflect KS file, written to ``out``."""
    table = label_origin(pl.read_parquet(labels), pl.read_parquet(own_ks), theta)
    table.write_parquet(out)
    return table


ORIGIN_COLUMNS = ("model", "pan_type", "pans", *ORIGINS)
"""Columns of ``results/tables/pan_origin.csv``."""


def origin_counts(origins: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Per model and PAN type (and ``all`` types): PANs, and how many are nascent, downstream, mixed."""
    from pan.core.labelling import PAN_TYPES

    frames = []
    for model, table in origins.items():
        for pan_type, rows in [
            ("all", table),
            *((t, table.filter(pl.col("pan_type") == t)) for t in PAN_TYPES),
        ]:
            if pan_type != "all" and rows.is_empty():
                continue
            counts = {kind: int((rows["origin"] == kind).sum()) for kind in ORIGINS}
            frames.append({"model": model, "pan_type": pan_type, "pans": rows.height, **counts})
    schema = {"model": pl.String, "pan_type": pl.String, **{c: pl.Int64 for c in ORIGIN_COLUMNS[2:]}}
    return pl.DataFrame(frames, schema=schema)


def write_origin_table(origin_files: Mapping[str, str | Path], out: str | Path) -> pl.DataFrame:
    """``pan_origin.csv`` from the models' origin files."""
    table = origin_counts({model: pl.read_parquet(path) for model, path in origin_files.items()})
    table.write_csv(out)
    return table
