"""The ``repair:`` and ``compare:`` sections of the config, their defaults (stated once, here),
and the check that training images never overlap the §3 or §4 images. Imports no torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pan.capture.images import ImageSpec, image_records

from .names import STRATEGIES

__all__ = [
    "DEFAULT_REPAIR_IMAGES",
    "PARAMETER_SETS",
    "CompareSettings",
    "DistillSettings",
    "ImageOverlapError",
    "RepairSettings",
    "check_no_overlap",
    "image_keys",
]

DEFAULT_REPAIR_IMAGES = ImageSpec(source="builtin", count=1024, seed=2)
"""Training images: 1,024 builtin crops of their own seed (the §3 batch uses seed 0, §4 seed 1)."""
PARAMETER_SETS: tuple[str, ...] = ("all", "norm", "convs")
"""Which student parameters train: ``all``; ``norm`` (the affine weights and biases of the
normalisation layers only); ``convs`` (every ``Conv2d``'s weight and bias only)."""


class ImageOverlapError(ValueError):
    """Training images overlap images the repair is measured on; the message names one."""


@dataclass(frozen=True)
class DistillSettings:
    """What a distillation run depends on (the repair rule's params): changing any of these
    reruns the repairs, changing which teachers or strategies are repaired does not."""

    images: ImageSpec = DEFAULT_REPAIR_IMAGES
    """Training images (same keys as ``images``); the last ``held_out`` of them are never trained on."""
    held_out: int = 64
    """Images of ``images`` kept aside to measure fidelity during training."""
    steps: int = 150
    """Optimiser steps."""
    batch: int = 16
    """Images per step."""
    lr: float = 1e-4
    """Adam's learning rate."""
    temperature: float = 1.0
    """Softmax temperature of the distillation loss (KL teacher -> student, times T²)."""
    train: str = "all"
    """Which parameters train, one of :data:`PARAMETER_SETS`."""
    freeze_batchnorm: bool = True
    """Keep BatchNorm running statistics as the teacher's (``false``: they update in training)."""
    zero_lines: int = 2
    """``zero_line`` strategy: random one-pixel zero or black lines drawn into each training image."""
    eval_every: int = 25
    """Steps between held-out fidelity measurements (and checkpoints)."""
    seed: int = 0
    """Seed of the shuffling, the augmentation (horizontal flips) and the lines."""

    def __post_init__(self) -> None:
        if self.train not in PARAMETER_SETS:
            raise ValueError(f"repair.train: unknown {self.train!r}; use one of {list(PARAMETER_SETS)}")


@dataclass(frozen=True)
class RepairSettings(DistillSettings):
    """The ``repair:`` section: which configured models (teachers) are repaired, by which
    strategies, and how (:class:`DistillSettings`)."""

    models: tuple[str, ...] = ()
    """Teachers; none by default: a repair trains, so it is asked for."""
    strategies: tuple[str, ...] = STRATEGIES

    @classmethod
    def from_config(cls, entry: Mapping[str, Any]) -> RepairSettings:
        entry = dict(entry)
        if "images" in entry:  # keys left out keep the repair set's defaults, not the §3 batch's
            entry["images"] = replace(DEFAULT_REPAIR_IMAGES, **entry["images"])
        for key in ("models", "strategies"):
            if key in entry:
                entry[key] = tuple(entry[key])
        unknown = sorted(set(entry.get("strategies", ())) - set(STRATEGIES))
        if unknown:
            raise ValueError(f"repair.strategies: unknown {unknown}; use some of {list(STRATEGIES)}")
        if "strategies" in entry:  # table order, whatever the config's order
            entry["strategies"] = tuple(s for s in STRATEGIES if s in entry["strategies"])
        return cls(**entry)

    def distill(self) -> DistillSettings:
        """The settings one distillation run depends on."""
        return DistillSettings(**{f.name: getattr(self, f.name) for f in fields(DistillSettings)})


@dataclass(frozen=True)
class CompareSettings:
    """The ``compare:`` section: pairs of models of one architecture whose PAN sets are compared
    (each teacher and its repaired students are compared without being listed)."""

    pairs: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def from_config(cls, entry: Mapping[str, Any]) -> CompareSettings:
        return cls(pairs=tuple((str(a), str(b)) for a, b in entry.get("pairs", ())))


def image_keys(spec: ImageSpec) -> dict[str, str]:
    """What identifies each image of ``spec`` across image sets -> its id.

    A builtin crop is identified by its seed and position (the same seed draws the same crops
    in the same order; its id alone, ``photo/index``, repeats across seeds); a file by its
    resolved path.
    """
    records = image_records(spec)
    if spec.source == "builtin":
        return {f"builtin seed {spec.seed} crop {i}": r.id for i, r in enumerate(records)}
    root = Path(spec.path).resolve()
    return {str(root / r.id): r.id for r in records}


def check_no_overlap(training: ImageSpec, others: Mapping[str, ImageSpec | Sequence[ImageSpec]]) -> None:
    """Raise :class:`ImageOverlapError` if a training image is also one of ``others``' images
    (section name -> its image set(s)), naming the first shared image and what to change."""
    train = image_keys(training)
    for section, specs in others.items():
        for spec in [specs] if isinstance(specs, ImageSpec) else list(specs):
            shared = sorted(set(train) & set(image_keys(spec)))
            if shared:
                raise ImageOverlapError(
                    f"repair.images overlaps {section}: {len(shared)} shared image(s), first "
                    f"{train[shared[0]]!r} ({shared[0]}); training images must never be measured "
                    f"on: give repair.images another seed or folder"
                )
