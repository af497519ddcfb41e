"""Padding reach: how far from each border a neuron still tells the border apart (beyond §3).

The paper scores only the outermost row/column of a map, yet its Fig. 8 neuron fires on the
*second* row. For a distance ``d = 0..max_distance`` from each border, this module scores

- T: row ``d``; B: row ``H-1-d``; L: column ``d``; R: column ``W-1-d`` (full rows/columns,
  corners included, as the §3 borders)

against the *inner centre*: the positions further than ``max_distance`` from every border
(rows and columns ``max_distance+1 .. size-2-max_distance``), so no scored row or column is
ever part of the centre it is compared with. The statistics are §3's KS, KS+ and KS-
(:func:`pan.core.ks.border_ks`), and the share rule's KS+/KS- against the top/bottom share ``q`` of
the inner centre; at ``d = 0`` they differ from the §3 table only in the smaller centre. A
neuron is *padding-aware at distance d* for a border when it passes a PAN rule
(:func:`pan.core.labelling.rule_expr`: ``paper`` or ``share``) there. Under the paper rule the
smaller inner centre alone makes the truncated centre a larger share of it (39 % of a 7x7
layer's inner centre at distance 0 against 28 % of the §3 centre), so its ``d = 0`` count
exceeds Table 2's; the share rule keeps the same share ``q`` of either centre.

The statistics are theta-free (``results/reach/{model}.parquet``, :data:`REACH_SCHEMA`);
theta enters only in :func:`reach_counts` and :func:`reach_by_depth`. Layers whose maps are
too small for an inner centre (``size <= 2 * max_distance + 2``) are skipped and listed in
the file's schema metadata (``skipped``, read by :func:`read_skipped`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pan.core.borders import BORDERS
from pan.core.chunks import over_chunks
from pan.core.dumps import read_feature_maps, read_manifest
from pan.core.ks import DEFAULT_SHARE, BorderKS, SortedSamples, borders_ks
from pan.core.labelling import DEFAULT_THETA, RULES, check_theta, rule_expr
from pan.core.scoring import KS_SCHEMA

__all__ = [
    "DEFAULT_MAX_DISTANCE",
    "REACH_COLUMNS",
    "REACH_SCHEMA",
    "aware",
    "distance_samples",
    "fits",
    "inner_centre",
    "reach_by_depth",
    "reach_counts",
    "reach_maps",
    "read_skipped",
    "score_reach",
    "with_new",
    "write_reach_tables",
]

DEFAULT_MAX_DISTANCE = 3
"""Rows/columns scored from each border: 0 (the §3 border) to 3."""

REACH_SCHEMA = pa.schema(
    [
        *[KS_SCHEMA.field(name) for name in ("layer", "layer_index", "neuron", "border")],
        ("distance", pa.int32()),
        *[KS_SCHEMA.field(name) for name in ("ks", "ks_plus", "ks_minus", "n_border", "n_centre")],
        *[KS_SCHEMA.field(name) for name in ("ks_plus_q", "ks_minus_q", "n_q")],
    ]
)
"""A KS table's columns (:data:`pan.core.scoring.KS_SCHEMA`, no intervals) with the distance."""


def fits(height: int, width: int, max_distance: int) -> bool:
    """Whether a ``height x width`` map has an inner centre beyond ``max_distance``."""
    return min(height, width) > 2 * max_distance + 2


def inner_centre(maps: np.ndarray, max_distance: int) -> np.ndarray:
    """Per-neuron inner-centre samples ``(neurons, values)`` of ``maps`` ``(images, neurons, H, W)``."""
    inner = maps[:, :, max_distance + 1 : -max_distance - 1, max_distance + 1 : -max_distance - 1]
    return inner.transpose(1, 0, 2, 3).copy().reshape(maps.shape[1], -1)


def distance_samples(maps: np.ndarray, distance: int) -> dict[str, np.ndarray]:
    """``{border: (neurons, values)}``: row/column ``distance`` from each border, all images."""
    h, w = maps.shape[-2:]
    lines = {
        "T": maps[:, :, distance, :],
        "B": maps[:, :, h - 1 - distance, :],
        "L": maps[:, :, :, distance],
        "R": maps[:, :, :, w - 1 - distance],
    }
    return {name: line.transpose(1, 0, 2).copy().reshape(maps.shape[1], -1) for name, line in lines.items()}


def reach_maps(
    maps: np.ndarray,
    layer: str,
    layer_index: int,
    max_distance: int,
    q: float = DEFAULT_SHARE,
    threads: int = 1,
) -> pa.Table:
    """KS, KS+ and KS- (both rules, share ``q``) of every neuron, border and distance
    ``0..max_distance`` of ``maps``, groups of neurons scored on ``threads`` threads.

    Rows are ordered by neuron, border (T, B, L, R) and distance. Raises ``ValueError`` for
    maps without an inner centre (see :func:`fits`).
    """
    n, c, h, w = maps.shape
    if not fits(h, w, max_distance):
        raise ValueError(f"{h}x{w} maps have no inner centre beyond distance {max_distance}")
    inner = (h - 2 * max_distance - 2) * (w - 2 * max_distance - 2)

    def score(start: int, stop: int) -> list[dict[str, np.ndarray]]:
        chunk = maps[:, start:stop]
        centre = SortedSamples(inner_centre(chunk, max_distance), overwrite=True)
        keys, lines = [], []  # every distance and border: one search per neuron
        for distance in range(max_distance + 1):
            for border, values in distance_samples(chunk, distance).items():
                keys.append((distance, border))
                lines.append(SortedSamples(values, overwrite=True))
        results = borders_ks(lines, centre, q)
        return [_reach_rows(start, *key, result) for key, result in zip(keys, results, strict=True)]

    parts = [rows for chunk in over_chunks(score, c, n * inner, threads) for rows in chunk]
    arrays = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    rows = len(arrays["neuron"])
    arrays["layer"] = np.full(rows, layer, dtype=object)
    arrays["layer_index"] = np.full(rows, layer_index, dtype=np.int32)
    order = np.lexsort((arrays["distance"], arrays["border_rank"], arrays["neuron"]))
    return pa.table(
        {
            name: pa.array(arrays[name][order], type=REACH_SCHEMA.field(name).type)
            for name in REACH_SCHEMA.names
        }
    )


def _reach_rows(start: int, distance: int, border: str, result: BorderKS) -> dict[str, np.ndarray]:
    """The columns of one border and distance of a group of neurons from ``start``."""
    size = len(result.ks)
    return {
        "neuron": np.arange(start, start + size, dtype=np.int32),
        "border_rank": np.full(size, BORDERS.index(border)),
        "border": np.full(size, border, dtype=object),
        "distance": np.full(size, distance, dtype=np.int32),
        "ks": result.ks,
        "ks_plus": result.ks_plus,
        "ks_minus": result.ks_minus,
        "n_border": np.full(size, result.n_border, dtype=np.int64),
        "n_centre": np.full(size, result.n_centre, dtype=np.int64),
        "ks_plus_q": result.ks_plus_q,
        "ks_minus_q": result.ks_minus_q,
        "n_q": np.full(size, result.n_q, dtype=np.int64),
    }


def score_reach(
    dump_dir: str | Path,
    out: str | Path,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    q: float = DEFAULT_SHARE,
    threads: int = 1,
) -> pa.Table:
    """Score every layer of a model's activation dump (one layer in memory at a time, on
    ``threads`` threads) and write the reach table to ``out``; layers too small for an inner
    centre are listed, not scored."""
    dump_dir = Path(dump_dir)
    tables, skipped = [], []
    for layer in read_manifest(dump_dir)["layers"]:
        if not fits(layer["height"], layer["width"], max_distance):
            skipped.append({key: layer[key] for key in ("name", "index", "height", "width")})
            continue
        maps = read_feature_maps(dump_dir / layer["file"])
        tables.append(reach_maps(maps, layer["name"], layer["index"], max_distance, q, threads))
        del maps
    table = pa.concat_tables(tables) if tables else REACH_SCHEMA.empty_table()
    meta = {"max_distance": str(max_distance), "skipped": json.dumps(skipped)}
    table = table.replace_schema_metadata(meta)
    pq.write_table(table, out)
    return table


def read_skipped(path: str | Path) -> list[dict]:
    """The layers a reach file skipped: ``name, index, height, width`` each."""
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta.get(b"skipped", b"[]"))


def aware(reach: pl.DataFrame, theta: float = DEFAULT_THETA, rule: str = "paper") -> pl.DataFrame:
    """Per neuron and distance: ``aware`` (passes the PAN rule ``rule`` on some border at that
    distance) and ``borders`` (those borders, in T, B, L, R order)."""
    theta = check_theta(theta)
    return (
        reach.with_columns(passes=rule_expr(rule, theta))
        .sort("layer_index", "neuron", "distance")
        .group_by("layer", "layer_index", "neuron", "distance", maintain_order=True)
        .agg(
            aware=pl.col("passes").any(),
            borders=pl.col("border").filter(pl.col("passes")).str.join(""),
        )
    )


def with_new(aware_rows: pl.DataFrame) -> pl.DataFrame:
    """Adds ``new``: aware at this distance and not at distance 0."""
    at_zero = aware_rows.filter(pl.col("distance") == 0).select(
        "layer_index", "neuron", aware_at_0=pl.col("aware")
    )
    return aware_rows.join(at_zero, on=["layer_index", "neuron"], how="left").with_columns(
        new=pl.col("aware") & ~pl.col("aware_at_0")
    )


REACH_COLUMNS = (
    "model",
    "rule",
    "distance",
    "padding_aware",
    "not_pan_at_0",
    "neurons",
    "layers",
    "skipped_layers",
)
"""Columns of ``results/tables/reach.csv``."""


def reach_counts(
    reach: Mapping[str, pl.DataFrame], skipped: Mapping[str, list], theta: float
) -> pl.DataFrame:
    """Per model, rule and distance: neurons padding-aware there, and how many of them are not
    at distance 0; ``neurons``/``layers``: what was scored, ``skipped_layers``: layers too small."""
    frames = []
    for (model, table), rule in ((item, rule) for item in reach.items() for rule in _rules(item[1])):
        rows = with_new(aware(table, theta, rule))
        neurons = rows.select("layer_index", "neuron").unique().height
        layers = rows["layer_index"].n_unique()
        frames.append(
            rows.group_by("distance")
            .agg(padding_aware=pl.col("aware").sum(), not_pan_at_0=pl.col("new").sum())
            .with_columns(
                model=pl.lit(model),
                rule=pl.lit(rule),
                neurons=pl.lit(neurons),
                layers=pl.lit(layers),
                skipped_layers=pl.lit(len(skipped[model])),
            )
        )
    table = pl.concat(frames).select(REACH_COLUMNS)
    order = pl.col("rule").replace_strict({rule: i for i, rule in enumerate(RULES)})
    return table.with_columns(pl.col(c).cast(pl.Int64) for c in REACH_COLUMNS[3:]).sort(
        "model", order, "distance"
    )


def _rules(reach: pl.DataFrame) -> list[str]:
    """The rules a reach table has statistics for (files from before the share rule: paper)."""
    return [rule for rule in RULES if rule == "paper" or "ks_plus_q" in reach.columns]


def reach_by_depth(reach: pl.DataFrame, theta: float, rule: str = "paper") -> pl.DataFrame:
    """Per layer and distance under ``rule``: ``aware`` and ``new`` counts (the reach figure's data)."""
    return (
        with_new(aware(reach, theta, rule))
        .group_by("layer", "layer_index", "distance")
        .agg(aware=pl.col("aware").sum(), new=pl.col("new").sum(), neurons=pl.len())
        .sort("layer_index", "distance")
    )


def write_reach_tables(
    reach_files: Mapping[str, str | Path], out: str | Path, skipped_out: str | Path, theta: float
) -> pl.DataFrame:
    """``reach.csv`` (:func:`reach_counts`) and the skipped layers (``model, layer, layer_index,
    height, width``) from the models' reach files."""
    reach = {model: pl.read_parquet(path) for model, path in reach_files.items()}
    skipped = {model: read_skipped(path) for model, path in reach_files.items()}
    table = reach_counts(reach, skipped, theta)
    table.write_csv(out)
    rows = [
        {
            "model": m,
            "layer": s["name"],
            "layer_index": s["index"],
            "height": s["height"],
            "width": s["width"],
        }
        for m, layers in skipped.items()
        for s in layers
    ]
    schema = {
        "model": pl.String,
        "layer": pl.String,
        "layer_index": pl.Int64,
        "height": pl.Int64,
        "width": pl.Int64,
    }
    pl.DataFrame(rows, schema=schema).write_csv(skipped_out)
    return table
