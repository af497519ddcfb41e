"""§4 for any output: how much each variant changes what a model outputs, and where.

A classifier's §4 is Eq. 1's odds, Table 3 and the sample influence (:mod:`pan.bias.odds`,
:mod:`pan.bias.table3`, :mod:`pan.bias.influence`). These tables need no classes, so every model
gets them, from the same evaluation files (``results/eval/{model}/{variant}.parquet``):

- **change** (:func:`change_table`, ``output_change_{model}.csv``): per variant, over the
  evaluation images, the mean L1 change (mean absolute difference per output value) and the
  mean L2 change (root mean square difference per output value) against ``original``; for a
  spatial output ``(channels, height, width)`` also the mean absolute change in the **border
  frame** (rows and columns fewer than ``frame`` pixels from an edge) and in the **interior**
  (the rest), and their ratio (frame over interior: above 1, the variant changes the output
  more at the border than inside);
- **per-image ranking** (:func:`image_ranking`, ``output_change_images_{model}.csv``): per
  variant, images ranked by their L1 change (rank 1: the most changed), with the L2 change;
- **change map** (:func:`change_map`, ``output_change_map_{model}.parquet``): per variant and
  output pixel, the absolute change averaged over images and channels (spatial outputs only);
- **flat-image frame** (:func:`flat_frame`, ``flat_frame_{model}.csv``): ``original``'s own
  output on flat images (one grey level everywhere, through the model's transform), frame
  against interior: a flat image has no edge anywhere, so a frame that differs from the
  interior is an artefact of the padding (spatial outputs only).

Values are per output value (not summed), so models with outputs of different sizes compare.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from pan.bias.logits import Logits
from pan.bias.odds import check_same_images, read_runs

__all__ = [
    "CHANGE_SCHEMA",
    "DEFAULT_FRAME",
    "FLAT_LEVELS",
    "FLAT_SCHEMA",
    "change_map",
    "change_table",
    "flat_frame",
    "frame_mask",
    "image_ranking",
    "output_kind",
    "flat_outputs",
    "write_any_output_tables",
    "write_flat_frame",
    "write_output_change",
]

DEFAULT_FRAME = 3
"""Width in pixels of the border frame of a spatial output (``outputs.frame``)."""
FLAT_LEVELS = (0, 128, 255)
"""Pixel values of the flat images whose ``original`` output :func:`flat_frame` reports."""

CHANGE_SCHEMA = {
    "model": pl.String,
    "variant": pl.String,
    "kind": pl.String,
    "output_shape": pl.String,
    "images": pl.Int64,
    "mean_l1": pl.Float64,
    "mean_l2": pl.Float64,
    "frame": pl.Int64,
    "frame_l1": pl.Float64,
    "interior_l1": pl.Float64,
    "frame_ratio": pl.Float64,
}
"""Columns of ``output_change_{model}.csv``; the frame columns are empty for non-spatial outputs."""
RANKING_SCHEMA = {
    "model": pl.String,
    "variant": pl.String,
    "rank": pl.Int64,
    "sample": pl.Int64,
    "id": pl.String,
    "l1": pl.Float64,
    "l2": pl.Float64,
}
FLAT_SCHEMA = {
    "model": pl.String,
    "level": pl.Int64,
    "frame": pl.Int64,
    "frame_mean": pl.Float64,
    "interior_mean": pl.Float64,
    "frame_minus_interior": pl.Float64,
    "frame_ratio": pl.Float64,
}
"""Columns of ``flat_frame_{model}.csv`` (empty for non-spatial outputs)."""


def output_kind(run: Logits) -> str:
    """``classifier`` (a vector per image), ``spatial`` (``(channels, height, width)``) or ``other``."""
    if run.is_classifier:
        return "classifier"
    return "spatial" if len(run.output_shape) == 3 else "other"


def frame_mask(height: int, width: int, frame: int = DEFAULT_FRAME) -> np.ndarray:
    """``(height, width)`` booleans: True within ``frame`` pixels of an edge (the border frame)."""
    if frame < 1 or 2 * frame >= min(height, width):
        raise ValueError(f"a frame of {frame} pixels leaves no interior in a {height}x{width} output")
    rows = np.arange(height)
    cols = np.arange(width)
    near_row = (rows < frame) | (rows >= height - frame)
    near_col = (cols < frame) | (cols >= width - frame)
    return near_row[:, None] | near_col[None, :]


def _differences(original: Logits, run: Logits) -> np.ndarray:
    return run.logits.astype(np.float64) - original.logits.astype(np.float64)


def change_table(runs: Mapping[str, Logits], frame: int = DEFAULT_FRAME) -> pl.DataFrame:
    """Per variant other than ``original``: mean L1 and L2 change, and for spatial outputs the
    frame and interior change and their ratio (columns :data:`CHANGE_SCHEMA`)."""
    check_same_images(runs)
    original = runs["original"]
    kind = output_kind(original)
    rows = []
    for variant, run in runs.items():
        if variant == "original":
            continue
        difference = _differences(original, run)
        row = {
            "model": original.model,
            "variant": variant,
            "kind": kind,
            "output_shape": "x".join(map(str, original.output_shape or (original.num_classes,))),
            "images": len(difference),
            "mean_l1": float(np.abs(difference).mean(axis=1).mean()) if len(difference) else None,
            "mean_l2": float(np.sqrt((difference**2).mean(axis=1)).mean()) if len(difference) else None,
        }
        if kind == "spatial" and len(difference):
            channels, height, width = original.output_shape
            change = np.abs(difference).reshape(-1, channels, height, width).mean(axis=(0, 1))
            mask = frame_mask(height, width, frame)
            frame_l1, interior_l1 = float(change[mask].mean()), float(change[~mask].mean())
            row |= {
                "frame": frame,
                "frame_l1": frame_l1,
                "interior_l1": interior_l1,
                "frame_ratio": frame_l1 / interior_l1 if interior_l1 > 0 else None,
            }
        rows.append(row)
    return pl.DataFrame(rows, schema=CHANGE_SCHEMA)


def image_ranking(runs: Mapping[str, Logits]) -> pl.DataFrame:
    """Per variant other than ``original``: images ranked by L1 change, rank 1 the most changed."""
    check_same_images(runs)
    original = runs["original"]
    frames = []
    for variant, run in runs.items():
        if variant == "original":
            continue
        difference = _differences(original, run)
        l1 = np.abs(difference).mean(axis=1)
        l2 = np.sqrt((difference**2).mean(axis=1))
        order = np.argsort(-l1, kind="stable")
        frames.append(
            pl.DataFrame(
                {
                    "model": original.model,
                    "variant": variant,
                    "rank": np.arange(1, len(order) + 1),
                    "sample": order,
                    "id": [original.ids[i] for i in order],
                    "l1": l1[order],
                    "l2": l2[order],
                },
                schema=RANKING_SCHEMA,
            )
        )
    return pl.concat(frames) if frames else pl.DataFrame(schema=RANKING_SCHEMA)


def change_map(runs: Mapping[str, Logits]) -> pl.DataFrame:
    """Per variant and output pixel of a spatial output: the mean absolute change over images
    and channels (columns ``variant, row, col, mean_abs_change``); empty for other outputs."""
    original = runs["original"]
    schema = {"variant": pl.String, "row": pl.Int64, "col": pl.Int64, "mean_abs_change": pl.Float64}
    if output_kind(original) != "spatial":
        return pl.DataFrame(schema=schema)
    channels, height, width = original.output_shape
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    frames = []
    for variant, run in runs.items():
        if variant == "original":
            continue
        change = np.abs(_differences(original, run)).reshape(-1, channels, height, width).mean(axis=(0, 1))
        frames.append(
            pl.DataFrame(
                {
                    "variant": variant,
                    "row": rows.ravel(),
                    "col": cols.ravel(),
                    "mean_abs_change": change.ravel(),
                },
                schema=schema,
            )
        )
    return pl.concat(frames)


def flat_frame(model: str, outputs: Mapping[int, np.ndarray], frame: int = DEFAULT_FRAME) -> pl.DataFrame:
    """Frame against interior of ``original``'s outputs on flat images (level -> one image's
    output ``(channels, height, width)``), averaged over channels (columns :data:`FLAT_SCHEMA`)."""
    rows = []
    for level, output in outputs.items():
        if output.ndim != 3:
            continue
        mean = output.astype(np.float64).mean(axis=0)
        mask = frame_mask(*mean.shape, frame)
        inside, border = float(mean[~mask].mean()), float(mean[mask].mean())
        rows.append(
            {
                "model": model,
                "level": level,
                "frame": frame,
                "frame_mean": border,
                "interior_mean": inside,
                "frame_minus_interior": border - inside,
                "frame_ratio": border / inside if inside != 0 else None,
            }
        )
    return pl.DataFrame(rows, schema=FLAT_SCHEMA)


def write_output_change(
    eval_files: Sequence[str | Path],
    change_out: str | Path,
    ranking_out: str | Path,
    map_out: str | Path,
    frame: int = DEFAULT_FRAME,
) -> pl.DataFrame:
    """Write one model's change table, per-image ranking and change map from its eval files."""
    runs = read_runs(eval_files)
    runs = {"original": runs["original"], **{k: v for k, v in runs.items() if k != "original"}}
    table = change_table(runs, frame)
    table.write_csv(change_out)
    image_ranking(runs).write_csv(ranking_out)
    change_map(runs).write_parquet(map_out)
    return table


def flat_outputs(model, levels: Sequence[int] = FLAT_LEVELS, device: str = "cpu") -> dict[int, np.ndarray]:
    """``original``'s output on a flat image of each grey ``level`` (a pixel value in 0..255),
    through the model's own transform: level -> one image's output (``model``: a model spec)."""
    import torch
    from PIL import Image

    from pan.bias.evaluation import output_tensor
    from pan.capture.inference import full_float32, pick_device
    from pan.capture.models import load_model

    loaded = load_model(model)
    target = pick_device(device)
    net = loaded.model.to(target)
    side = loaded.input_size * 2  # any size: the transform resizes and crops a flat image to flat
    batch = torch.stack([loaded.transform(Image.new("RGB", (side, side), (level,) * 3)) for level in levels])
    with torch.inference_mode(), full_float32():
        output = output_tensor(net(batch.to(target)), model.output, model=model.name).float().cpu().numpy()
    return dict(zip(levels, output, strict=True))


def write_flat_frame(model, out: str | Path, frame: int = DEFAULT_FRAME, device: str = "cpu") -> pl.DataFrame:
    """Write ``flat_frame_{model}.csv`` for the model spec ``model`` (empty for non-spatial outputs)."""
    table = flat_frame(model.name, flat_outputs(model, device=device), frame)
    table.write_csv(out)
    return table


def write_any_output_tables(
    change_files: Sequence[str | Path],
    flat_files: Sequence[str | Path],
    change_out: str | Path,
    flat_out: str | Path,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every model's change and flat-frame tables in one file each (``output_change.csv``,
    ``flat_frame.csv``), in the order given."""
    change = pl.concat([pl.read_csv(f, schema=CHANGE_SCHEMA) for f in change_files])
    flat = pl.concat([pl.read_csv(f, schema=FLAT_SCHEMA) for f in flat_files])
    change.write_csv(change_out)
    flat.write_csv(flat_out)
    return change, flat
