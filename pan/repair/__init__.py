"""Repair: padding-robust students that keep their teacher's predictions, measured before and after.

A *student* is built from a configured model (the *teacher*) by a strategy, then fine-tuned by
knowledge distillation towards the unchanged teacher on unlabelled images of its own set:

- :mod:`pan.repair.names`     strategies, derived model names, the spec that loads a student
- :mod:`pan.repair.settings`  the ``repair:`` and ``compare:`` settings, the image overlap check
- :mod:`pan.repair.student`   building a student by strategy, saving and loading it
- :mod:`pan.repair.distill`   the distillation loop (checkpoints, held-out fidelity, tqdm)
- :mod:`pan.repair.outputs`   the repair job, provenance and the ``.pt2`` export
- :mod:`pan.repair.table`     ``results/tables/repair.csv``: before and after
- :mod:`pan.repair.compare`   PAN inheritance between two models of one architecture

docs/repair.md describes the workflow side. Only :mod:`~pan.repair.student`,
:mod:`~pan.repair.distill` and :mod:`~pan.repair.outputs` import torch.
"""

from .names import STRATEGIES, RepairedModelSpec, repaired_name, swapped_name
from .settings import CompareSettings, RepairSettings

__all__ = [
    "STRATEGIES",
    "CompareSettings",
    "RepairSettings",
    "RepairedModelSpec",
    "repaired_name",
    "swapped_name",
]
