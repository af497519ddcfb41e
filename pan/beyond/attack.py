"""The zero-line attack (paper §5: claimed, never measured).

"Adding a one-row/column of zeros anywhere in the input will cause PANs to fire." On the §4
evaluation images, a one-pixel line is written into the preprocessed input at each configured
position (a fraction of the height for rows, of the width for columns; input row/column
``min(floor(position * size), size - 1)``), of one of three kinds:

- ``zero``:   0 in the model's input space (after normalisation): what the first conv pads with;
- ``black``:  pixel value 0 (the model's transform of a black image): what an attacker draws;
- ``copied``: the control: the same line of pixels copied from row/column
  ``(index + max(1, size // 8)) % size`` of the same image, a change of content that is not
  padding-like.

**PAN firing** (theta-free statistics, :func:`firing_statistics`). A line at input row ``p``
of an ``S``-pixel input lands, at a layer whose maps have ``s`` rows, on map row
``c = floor(p * s / S)``; the rows that count are ``c - 1, c, c + 1`` (clipped to the map),
the 3x3 neighbourhood a kernel of the next layer sees (:func:`reached`; columns alike).
Each such row of each neuron, over all injected images, is scored against that neuron's §3
centre (rows and columns ``1 .. s-2``) on the *clean* images with §3's KS, KS+ and KS-
(:func:`pan.core.ks.border_ks`). At theta (:func:`pan.beyond.attack_summary.injection_summary`) a PAN
with a border of the line's orientation (T or B for rows, L or R for columns) *fires* at a
position when one of the counted rows passes the PAN rule (:func:`pan.core.labelling.pan_rule`)
with the line and not without it: the same rows of the clean images are scored too (kind
``clean``), since near a border (small maps) they can pass with no line at all.
``pans_firing_fraction`` is the share of (PAN, position) pairs that fire.

**Predictions** (:func:`line_predictions`): per image, line and variant (``original``,
``pan_reflect``, ``rand_reflect``), the top-1 class and the L1 distance between the logits
of the injected and the clean image under the same variant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
import polars as pl

if TYPE_CHECKING:  # torch loads lazily: the config imports the defaults below
    import torch
    from torch import nn

__all__ = [
    "CLEAN",
    "DEFAULT_INJECTION_COUNT",
    "DEFAULT_KINDS",
    "DEFAULT_POSITIONS",
    "KINDS",
    "Line",
    "ORIENTATIONS",
    "PREDICTION_COLUMNS",
    "PREDICTION_VARIANTS",
    "black_value",
    "clean_control",
    "copy_source",
    "inject",
    "input_line",
    "line_predictions",
    "plan_lines",
    "prepared_run",
    "reached",
    "write_injection_table",
    "write_variant_predictions",
]

KINDS: tuple[str, ...] = ("zero", "black", "copied")
DEFAULT_KINDS = KINDS
DEFAULT_POSITIONS: tuple[float, ...] = (0.25, 0.5, 0.75)
DEFAULT_INJECTION_COUNT = 64
"""Evaluation images that get lines: each costs ``1 + 2 * positions * kinds`` forward passes
per variant (19 for the defaults, 57 for the three variants); the default takes the first 64
of the §4 images, enough for bootstrap intervals that tell the kinds of line apart."""
ORIENTATIONS: dict[str, tuple[str, str]] = {"rows": ("T", "B"), "columns": ("L", "R")}
"""Line orientation -> the PAN borders it mimics."""
PREDICTION_VARIANTS: tuple[str, ...] = ("original", "pan_reflect", "rand_reflect")


PREDICTION_COLUMNS = (
    "sample",
    "id",
    "variant",
    "kind",
    "orientation",
    "position",
    "line",
    "pred_clean",
    "pred_injected",
    "changed",
    "l1",
)
"""Columns of the prediction files and of ``results/tables/injection_{model}.csv``."""


@dataclass(frozen=True)
class Line:
    """One injected line: its kind, orientation, configured position and input row/column."""

    kind: str
    orientation: str
    position: float
    index: int
    source: int
    """Row/column the ``copied`` line's pixels come from (-1 for the other kinds)."""


def input_line(position: float, size: int) -> int:
    """The input row (column) of a line at ``position`` (a fraction) of ``size`` pixels."""
    return min(int(position * size), size - 1)


def copy_source(index: int, size: int) -> int:
    """Where the control line's pixels come from: ``size // 8`` further on (at least 1), wrapped."""
    return (index + max(1, size // 8)) % size


def plan_lines(positions: Sequence[float], kinds: Sequence[str], height: int, width: int) -> list[Line]:
    """Every line of the config for a ``height x width`` input, rows first."""
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown line kinds {unknown}; use some of {KINDS}")
    lines = []
    for orientation, size in (("rows", height), ("columns", width)):
        for position in positions:
            index = input_line(position, size)
            for kind in kinds:
                source = copy_source(index, size) if kind == "copied" else -1
                lines.append(Line(kind, orientation, float(position), index, source))
    return lines


CLEAN = "clean"
"""Kind of the control rows in the firing statistics: the counted rows of a line position on
the clean images; a PAN fires only on rows that do not pass the PAN rule there already."""


def clean_control(line: Line) -> Line:
    """The clean control of ``line``: the same orientation and position, nothing drawn."""
    return Line(CLEAN, line.orientation, line.position, line.index, -1)


def reached(index: int, input_size: int, map_size: int) -> list[int]:
    """The map rows (columns) that count for a line at input row ``index`` (see module docstring)."""
    centre = index * map_size // input_size
    return [r for r in (centre - 1, centre, centre + 1) if 0 <= r < map_size]


def black_value(transform: Callable[[Any], torch.Tensor]) -> torch.Tensor:
    """The model's input-space value ``(channels,)`` of a black pixel (pixel value 0)."""
    from PIL import Image

    image = transform(Image.new("RGB", (256, 256)))
    return image[:, image.shape[1] // 2, image.shape[2] // 2].clone()


def inject(batch: torch.Tensor, line: Line, black: torch.Tensor) -> torch.Tensor:
    """A copy of ``batch`` ``(images, channels, H, W)`` with ``line`` written into every image."""
    out = batch.clone()
    view = out if line.orientation == "rows" else out.transpose(2, 3)
    source = batch if line.orientation == "rows" else batch.transpose(2, 3)
    if line.kind == "zero":
        view[:, :, line.index, :] = 0
    elif line.kind == "black":
        view[:, :, line.index, :] = black.to(batch)[None, :, None]
    elif line.kind == "copied":
        view[:, :, line.index, :] = source[:, :, line.source, :]
    else:
        raise ValueError(f"unknown line kind {line.kind!r}; use one of {KINDS}")
    return out


def line_predictions(
    nets: Mapping[str, nn.Module],
    batches: Sequence[torch.Tensor],
    lines: Sequence[Line],
    black: torch.Tensor,
    ids: Sequence[str],
    output_key: str | None = None,
    model: str = "model",
    on_line: Callable[[str, Line | None], None] = lambda variant, line: None,
    after_line: Callable[[str, Line | None], None] = lambda variant, line: None,
    progress: Callable[[int], None] = lambda n: None,
) -> pl.DataFrame:
    """Top-1 and logit L1 of every image with every line against the clean image, per variant.

    Each variant runs the clean batches first (``line`` None), then each line over every
    batch; ``on_line``/``after_line`` are called around each of these passes (the firing
    statistics hook into them).
    """
    import torch

    from pan.bias.evaluation import output_logits

    def logits(net: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return output_logits(net(batch), output_key, model=model).float().cpu()

    frames = []
    with torch.inference_mode():
        for variant, net in nets.items():
            on_line(variant, None)
            clean = torch.cat([logits(net, batch) for batch in batches])
            after_line(variant, None)
            progress(len(ids))
            for line in lines:
                on_line(variant, line)
                injected = torch.cat([logits(net, inject(batch, line, black)) for batch in batches])
                after_line(variant, line)
                progress(len(ids))
                pred_clean, pred_injected = clean.argmax(1).numpy(), injected.argmax(1).numpy()
                frames.append(
                    pl.DataFrame(
                        {
                            "sample": np.arange(len(ids), dtype=np.int32),
                            "id": list(ids),
                            "variant": variant,
                            "kind": line.kind,
                            "orientation": line.orientation,
                            "position": line.position,
                            "line": line.index,
                            "pred_clean": pred_clean.astype(np.int64),
                            "pred_injected": pred_injected.astype(np.int64),
                            "changed": pred_clean != pred_injected,
                            "l1": (injected - clean).abs().sum(1).double().numpy(),
                        }
                    )
                )
    return pl.concat(frames).select(PREDICTION_COLUMNS)


def prepared_run(model, images, count: int | None, micro_batch: int, device: str):
    """The loaded model on its device, the first ``count`` evaluation records and their batches."""
    from pan.capture.images import image_records
    from pan.capture.inference import pick_device, preprocessed_batches
    from pan.capture.models import load_model

    loaded = load_model(model)
    records = image_records(images)
    records = records[:count] if count is not None else records
    target = pick_device(device)
    net = loaded.model.to(target).eval()
    batches = [b.to(target) for b in preprocessed_batches(records, loaded.transform, micro_batch)]
    return loaded, net, records, batches, black_value(loaded.transform)


def write_variant_predictions(
    model,
    images,
    positions: Sequence[float],
    kinds: Sequence[str],
    count: int | None,
    pan_labels: str | Path,
    out: str | Path,
    rand_seed: int = 0,
    micro_batch: int = 16,
    device: str = "auto",
    progress: TextIO | None = None,
) -> pl.DataFrame:
    """The label-dependent job: predictions of ``pan_reflect`` and ``rand_reflect`` with lines."""
    from pan.bias.reflect import with_reflect_padding
    from pan.bias.variants import variant_channels
    from pan.logs import image_progress

    loaded, net, records, batches, black = prepared_run(model, images, count, micro_batch, device)
    channels = variant_channels(pl.read_parquet(pan_labels), rand_seed)
    nets = {
        name: with_reflect_padding(net, channels[name]).eval() for name in ("pan_reflect", "rand_reflect")
    }
    lines = plan_lines(positions, kinds, *batches[0].shape[-2:])
    bar = image_progress(len(records) * (1 + len(lines)) * len(nets), f"lines {model.name}", progress)
    table = line_predictions(
        nets, batches, lines, black, [r.id for r in records], model.output, model.name, progress=bar.update
    )
    bar.close()
    table.write_parquet(out)
    return table


def write_injection_table(prediction_files: Iterable[str | Path], out: str | Path) -> pl.DataFrame:
    """``injection_{model}.csv``: the prediction files of one model, variants in order."""
    table = pl.concat([pl.read_parquet(f) for f in prediction_files])
    order = {v: i for i, v in enumerate(PREDICTION_VARIANTS)}
    table = table.sort(pl.col("variant").replace_strict(order), "orientation", "position", "kind", "sample")
    table.write_csv(out)
    return table
