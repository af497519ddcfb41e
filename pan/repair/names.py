"""Repaired models are models: their derived names and the spec that loads them.

A repair turns a configured model (the *teacher*) into a *student* by a strategy
(:data:`STRATEGIES`), then fine-tunes the student by distillation. Two models come out of each
teacher and strategy, and both re-enter every rule of the workflow under a derived name:

- ``{teacher}.swapped-{strategy}``: the plain swap, the student before any training (only for
  strategies that change the architecture: for ``zero_line`` the plain swap is the teacher);
- ``{teacher}.repaired-{strategy}``: the student after distillation.

Both are :class:`RepairedModelSpec` s (``source: repaired``) whose weights come from the repair
rules' outputs, ``results/repair/{teacher}/{strategy}/{swapped,student}.pt``. This module
imports no torch: the workflow reads it while parsing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from pan.capture.models import ModelSpec, ModelSpecError

if TYPE_CHECKING:
    from pan.capture.models import LoadedModel

__all__ = [
    "LABELLED_STRATEGIES",
    "REPAIRED_SOURCE",
    "STRATEGIES",
    "SWAPPING_STRATEGIES",
    "RepairedModelSpec",
    "before_name",
    "derived_specs",
    "repair_dir",
    "repaired_name",
    "swap_spec",
    "swapped_name",
]

STRATEGIES: tuple[str, ...] = ("reflect", "pan_reflect", "zero_line")
"""How a student is built: ``reflect`` (every analysed conv pads with reflect), ``pan_reflect``
(only the teacher's PAN channels do), ``zero_line`` (padding unchanged; training inputs get
random one-pixel zero or black lines, the paper's §5 mitigation)."""
SWAPPING_STRATEGIES: tuple[str, ...] = ("reflect", "pan_reflect")
"""Strategies whose student differs from the teacher before training (a padding swap)."""
LABELLED_STRATEGIES: tuple[str, ...] = ("pan_reflect",)
"""Strategies whose student depends on the teacher's PAN labels (so on theta)."""
REPAIRED_SOURCE = "repaired"
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""The config schema's pattern of model names (file names and wildcards)."""


def repair_dir(teacher: str, strategy: str) -> str:
    """Where the repair of ``teacher`` by ``strategy`` writes its files."""
    return f"results/repair/{teacher}/{strategy}"


def repaired_name(teacher: str, strategy: str) -> str:
    """The derived name of the student after distillation."""
    return f"{teacher}.repaired-{strategy}"


def swapped_name(teacher: str, strategy: str) -> str:
    """The derived name of the plain swap (the student before training)."""
    return f"{teacher}.swapped-{strategy}"


def before_name(teacher: str, strategy: str) -> str:
    """The model that stands for *before* in ``repair.csv``: the plain swap, or the teacher when
    the strategy swaps nothing."""
    return swapped_name(teacher, strategy) if strategy in SWAPPING_STRATEGIES else teacher


@dataclass(frozen=True)
class RepairedModelSpec(ModelSpec):
    """A student of a configured model: the teacher's architecture built by ``strategy``, with the
    weights of ``state_dict`` (a repair rule's output), the teacher's transform and classes."""

    teacher: ModelSpec | None = None
    strategy: str = ""
    trained: bool = True
    """``False`` for the plain swap (``.swapped-``), ``True`` after distillation."""

    def validate(self) -> None:
        if self.teacher is None or self.strategy not in STRATEGIES:
            raise ModelSpecError(
                f"model {self.name!r}: a repaired model needs a teacher and one of {STRATEGIES}"
            )
        if not MODEL_NAME.match(self.name):
            raise ModelSpecError(
                f"model {self.name!r}: the derived name of a repaired model must be a valid model name "
                f"(at most 64 characters, letters, digits, '_', '.', '-'); shorten the teacher's name "
                f"{self.teacher.name!r}"
            )

    def build(self) -> LoadedModel:
        """The student, loaded (called by :func:`pan.models.load_model`)."""
        from .student import load_student

        return load_student(self)


def swap_spec(teacher: ModelSpec, strategy: str) -> RepairedModelSpec:
    """The plain swap of ``teacher`` by ``strategy`` (for ``zero_line``: an unchanged copy)."""
    return RepairedModelSpec(
        name=swapped_name(teacher.name, strategy),
        source=REPAIRED_SOURCE,
        state_dict=f"{repair_dir(teacher.name, strategy)}/swapped.pt",
        teacher=teacher,
        strategy=strategy,
        trained=False,
    )


def derived_specs(
    teachers: dict[str, ModelSpec], strategies: tuple[str, ...]
) -> dict[str, RepairedModelSpec]:
    """Derived name -> spec of every plain swap (strategies that swap) and repaired student."""
    specs: dict[str, RepairedModelSpec] = {}
    for teacher in teachers.values():
        for strategy in strategies:
            swapped = swap_spec(teacher, strategy)
            student = replace(
                swapped,
                name=repaired_name(teacher.name, strategy),
                state_dict=f"{repair_dir(teacher.name, strategy)}/student.pt",
                trained=True,
            )
            for spec in [swapped, student] if strategy in SWAPPING_STRATEGIES else [student]:
                spec.validate()
                specs[spec.name] = spec
    return specs
