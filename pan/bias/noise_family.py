"""The null family of the §4 noise model: perturbations of a model that know nothing of padding.

§4 compares PAN-reflect with one random channel set (RAND-reflect). One draw says nothing about
how far a random perturbation of that size moves the odds, and PAN-reflect perturbs the model
more than RAND-reflect does, so the two counts are not comparable as they stand. The null family
spans random perturbations of growing size, all evaluated on the §4 images:

- ``rand_channels`` at ``scale`` 1, seeds ``rand_seed + 1 .. rand_seed + rand_seeds - 1``:
  RAND-reflect redrawn (seed ``rand_seed`` itself is ``rand_reflect`` of :mod:`pan.bias.variants`,
  whose logits :func:`pan.bias.evaluation.evaluate_variants` already writes);
- ``rand_channels`` at each of ``channel_scales`` (seed ``rand_seed``): per layer
  ``round(scale x PANs)`` random non-PAN channels pad with reflect
  (:func:`pan.bias.variants.random_control_channels`);
- ``weight_noise`` at each of ``weight_noise`` levels ``sigma`` (seed ``rand_seed``): every
  ``Conv2d`` and ``Linear`` weight ``w`` becomes ``w * (1 + sigma * e)``, ``e`` standard normal
  (:func:`with_weight_noise`; a copy, the model itself is not changed).

:func:`evaluate_noise_family` writes the logits of every family member to one Parquet file,
decoding each image once and running every member on each
micro-batch (columns ``variant`` (string), ``sample`` (int32), ``logits``
(fixed_size_list<float32>[classes]); schema metadata ``model``, ``num_classes`` and ``family``,
the members as JSON); :mod:`pan.bias.noise` places PAN-reflect on the curve they draw.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

if TYPE_CHECKING:  # torch loads lazily: the config imports the defaults below
    from torch import nn

__all__ = [
    "DEFAULT_CHANNEL_SCALES",
    "DEFAULT_RAND_SEEDS",
    "DEFAULT_WEIGHT_NOISE",
    "FAMILIES",
    "NoiseVariant",
    "build_noise_variant",
    "evaluate_noise_family",
    "noise_family",
    "read_noise_logits",
    "with_weight_noise",
]

DEFAULT_RAND_SEEDS = 20
"""Draws of RAND-reflect (scale 1) in the null family, ``rand_seed`` included."""
DEFAULT_CHANNEL_SCALES: tuple[float, ...] = (2.0, 4.0, 8.0)
"""Random channel sets of ``scale`` x the PANs of each layer: larger perturbations, no padding knowledge."""
DEFAULT_WEIGHT_NOISE: tuple[float, ...] = (0.005, 0.01, 0.02)
"""Relative Gaussian weight noise levels (``w * (1 + sigma * e)``)."""
FAMILIES: tuple[str, ...] = ("rand_channels", "weight_noise")


@dataclass(frozen=True)
class NoiseVariant:
    """One member of the null family."""

    family: str
    """``rand_channels`` or ``weight_noise``."""
    scale: float
    """Channel multiple of the PAN count (``rand_channels``) or ``sigma`` (``weight_noise``)."""
    seed: int

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown noise family {self.family!r}; use one of {FAMILIES}")
        if not self.scale > 0:
            raise ValueError(f"{self.family} needs a positive scale, got {self.scale}")

    @property
    def name(self) -> str:
        """``rand_x1_s3``, ``weight_noise_0.01_s0``: unique within a family list."""
        if self.family == "rand_channels":
            return f"rand_x{self.scale:g}_s{self.seed}"
        return f"weight_noise_{self.scale:g}_s{self.seed}"


def noise_family(
    rand_seed: int = 0,
    rand_seeds: int = DEFAULT_RAND_SEEDS,
    channel_scales: Sequence[float] = DEFAULT_CHANNEL_SCALES,
    weight_noise: Sequence[float] = DEFAULT_WEIGHT_NOISE,
) -> list[NoiseVariant]:
    """The members to evaluate, in order: RAND-reflect redraws, larger channel sets, weight noise.

    RAND-reflect with ``rand_seed`` itself is left out: its logits are ``rand_reflect``'s.
    """
    if rand_seeds < 1:
        raise ValueError(f"rand_seeds must be at least 1 (RAND-reflect itself), got {rand_seeds}")
    members = [NoiseVariant("rand_channels", 1.0, rand_seed + k) for k in range(1, rand_seeds)]
    members += [NoiseVariant("rand_channels", float(s), rand_seed) for s in channel_scales if s != 1]
    members += [NoiseVariant("weight_noise", float(s), rand_seed) for s in weight_noise]
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise ValueError(f"the noise family lists a member twice: {names}")
    return members


def with_weight_noise(model: nn.Module, sigma: float, seed: int) -> nn.Module:
    """A copy of ``model`` whose ``Conv2d`` and ``Linear`` weights carry relative Gaussian noise.

    Each weight ``w`` becomes ``w * (1 + sigma * e)`` with ``e`` standard normal, drawn on the CPU
    from one generator seeded by ``seed`` in module order (the same on every device). Biases,
    normalisation and the model itself are unchanged.
    """
    import copy

    import torch
    from torch import nn

    noisy = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for module in noisy.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                e = torch.randn(module.weight.shape, generator=generator, dtype=torch.float32)
                module.weight.mul_(1 + sigma * e.to(module.weight))
    return noisy


def build_noise_variant(model: nn.Module, labels: pl.DataFrame, variant: NoiseVariant) -> nn.Module:
    """The network of one family member (``model`` is left as it is)."""
    from pan.bias.reflect import with_reflect_padding
    from pan.bias.variants import random_control_channels

    if variant.family == "weight_noise":
        return with_weight_noise(model, variant.scale, variant.seed).eval()
    channels = random_control_channels(labels, variant.seed, variant.scale)
    return with_reflect_padding(model, channels).eval()


def _schema(num_classes: int, model: str, family: Sequence[NoiseVariant]) -> pa.Schema:
    return pa.schema(
        [("variant", pa.string()), ("sample", pa.int32()), ("logits", pa.list_(pa.float32(), num_classes))],
        metadata={
            "model": model,
            "num_classes": str(num_classes),
            "family": json.dumps([{"name": m.name, **asdict(m)} for m in family]),
        },
    )


def evaluate_noise_family(
    model,
    images,
    pan_labels: str | Path,
    out: str | Path,
    family: Sequence[NoiseVariant],
    micro_batch: int = 16,
    device: str = "auto",
    progress: TextIO | None = None,
) -> int:
    """Write the logits of every member of ``family`` on the §4 images to ``out``.

    Each micro-batch is decoded once and run through every member in turn; the networks share
    the model's weights (reflect members) or hold their own noisy copy (weight noise). They run in
    channels-last memory layout, the fast one for these convs on a CPU: logits agree with the
    default layout to float32 rounding (about 1e-5), far below any perturbation of the family.
    Returns the number of images.
    """
    import torch

    from pan.bias.evaluation import output_logits
    from pan.capture.images import image_records
    from pan.capture.inference import full_float32, pick_device, preprocessed_batches
    from pan.capture.models import load_model
    from pan.logs import image_progress

    if not family:
        raise ValueError("the noise family is empty: nothing to evaluate")
    loaded = load_model(model)
    records = image_records(images)
    target = pick_device(device)
    labels = pl.read_parquet(pan_labels)
    base = loaded.model.to(target).eval()
    nets = {m.name: build_noise_variant(base, labels, m) for m in family}
    nets = {name: net.to(memory_format=torch.channels_last) for name, net in nets.items()}
    bar = image_progress(len(records) * len(nets), f"noise family {model.name}", progress)
    writer: pq.ParquetWriter | None = None
    first = 0
    try:
        with torch.inference_mode(), full_float32():
            for batch in preprocessed_batches(records, loaded.transform, micro_batch):
                batch = batch.to(target).contiguous(memory_format=torch.channels_last)
                samples = pa.array(np.arange(first, first + len(batch), dtype=np.int32))
                for name, net in nets.items():
                    logits = output_logits(net(batch), model.output, model=model.name).float().cpu().numpy()
                    if writer is None:
                        writer = pq.ParquetWriter(out, _schema(logits.shape[1], model.name, family))
                    values = pa.array(np.ascontiguousarray(logits).reshape(-1))
                    writer.write_table(
                        pa.Table.from_arrays(
                            [
                                pa.array([name] * len(batch), pa.string()),
                                samples,
                                pa.FixedSizeListArray.from_arrays(values, logits.shape[1]),
                            ],
                            schema=writer.schema,
                        )
                    )
                    bar.update(len(batch))
                first += len(batch)
    finally:
        if writer is not None:
            writer.close()
    bar.close()
    return first


def read_noise_logits(path: str | Path) -> tuple[list[NoiseVariant], dict[str, np.ndarray]]:
    """The family and each member's logits ``(images, classes)`` in sample order, from
    :func:`evaluate_noise_family`'s file."""
    table = pq.read_table(path)
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    family = [
        NoiseVariant(m["family"], float(m["scale"]), int(m["seed"])) for m in json.loads(meta["family"])
    ]
    num_classes = int(meta["num_classes"])
    logits = {}
    for member in family:
        rows = table.filter(pc.equal(table.column("variant"), member.name)).sort_by("sample")
        flat = rows.column("logits").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        logits[member.name] = flat.reshape(rows.num_rows, num_classes)
    return family, logits
