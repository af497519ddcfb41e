"""Knowledge distillation of a student towards its unchanged teacher, on unlabelled images.

Each step takes ``batch`` training images in a seeded shuffled order (a new permutation per
epoch), flips each horizontally with probability 1/2 (the same for teacher and student) and
minimises ``T² · KL(softmax(t/T) ‖ softmax(s/T))`` between the teacher's logits ``t`` and the
student's ``s`` with Adam. No labels are needed. For ``zero_line`` the student's copy of each
image gets ``zero_lines`` random one-pixel rows or columns, zero (0 in input space, what the
first conv pads with) or black (pixel value 0), while the teacher sees the clean image.

The student runs in eval mode (no dropout, BatchNorm statistics frozen as the teacher's);
``freeze_batchnorm: false`` lets BatchNorm layers update their statistics. Every
``eval_every`` steps the held-out images (never trained on) give the mean KL (T = 1) and
top-1 agreement with the teacher, and a checkpoint (student, optimiser, curve) is written
atomically; a rerun with the same inputs resumes from it, and draws the same batches, flips
and lines as an uninterrupted run (each step's randomness derives from ``seed`` and the step).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pan.beyond.attack import black_value
from pan.bias.evaluation import output_logits
from pan.capture.images import ImageRecord
from pan.capture.inference import full_float32, preprocessed_batches
from pan.logs import image_progress

from .settings import DistillSettings

__all__ = [
    "CURVE_COLUMNS",
    "Fidelity",
    "distill",
    "distillation_loss",
    "fidelity",
    "trainable_parameters",
]

CURVE_COLUMNS = ("step", "loss", "images_per_s", "held_out_kl", "held_out_agreement")
"""``curve.parquet``: one row per step (held-out columns null between measurements), plus step 0."""
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)


class _TeacherKL(torch.autograd.Function):
    """``T² · KL(softmax(t/T) ‖ softmax(s/T))`` averaged over the batch, whose gradient with
    respect to ``s`` is computed directly as ``T · (softmax(s/T) - softmax(t/T)) / batch``: the
    analytic gradient, exactly zero for a student whose logits equal the teacher's (autograd
    through ``log_softmax`` leaves float noise there, which Adam would scale up to full steps)."""

    @staticmethod
    def forward(ctx, student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
        log_p = F.log_softmax(teacher / temperature, dim=1)
        log_q = F.log_softmax(student / temperature, dim=1)
        p, q = log_p.exp(), log_q.exp()
        ctx.save_for_backward(p, q)
        ctx.scale = temperature / student.shape[0]
        return (p * (log_p - log_q)).sum(1).mean() * temperature**2

    @staticmethod
    def backward(ctx, grad: Tensor):
        p, q = ctx.saved_tensors
        return grad * (q - p) * ctx.scale, None, None


def distillation_loss(teacher_logits: Tensor, student_logits: Tensor, temperature: float) -> Tensor:
    """``T² · KL(softmax(t/T) ‖ softmax(s/T))``, averaged over the batch (gradient to the
    student's logits only)."""
    return _TeacherKL.apply(student_logits, teacher_logits.detach(), temperature)


class Fidelity(dict):
    """``{"kl": mean KL teacher -> student (nats), "agreement": top-1 agreement (0-1)}``."""


def fidelity(teacher_logits: Tensor, student_logits: Tensor) -> Fidelity:
    """Mean KL divergence (teacher -> student, T = 1) and top-1 agreement over images."""
    kl = distillation_loss(teacher_logits.double(), student_logits.double(), 1.0)
    agreement = (teacher_logits.argmax(1) == student_logits.argmax(1)).double().mean()
    return Fidelity(kl=float(kl), agreement=float(agreement))


def trainable_parameters(student: nn.Module, which: str) -> list[nn.Parameter]:
    """The parameters that train (``all``, ``norm`` or ``convs``); the others are frozen."""
    if which == "all":
        chosen = list(student.parameters())
    else:
        kinds = _NORMS if which == "norm" else (nn.Conv2d,)
        chosen = [p for m in student.modules() if isinstance(m, kinds) for p in m.parameters(recurse=False)]
    keep = {id(p) for p in chosen}
    for parameter in student.parameters():
        parameter.requires_grad_(id(parameter) in keep)
    if not chosen:
        raise ValueError(f"repair.train: {which!r} selects no parameter of this model")
    return chosen


def _training_mode(student: nn.Module, freeze_batchnorm: bool) -> None:
    student.eval()
    if not freeze_batchnorm:
        for module in student.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.train()


def _step_indices(step: int, batch: int, count: int, seed: int) -> np.ndarray:
    """The training images of ``step``: consecutive slices of per-epoch seeded permutations."""
    first = step * batch
    indices = []
    while len(indices) < batch:
        epoch, offset = divmod(first + len(indices), count)
        order = np.random.default_rng([seed, epoch]).permutation(count)
        indices.extend(order[offset : offset + batch - len(indices)].tolist())
    return np.asarray(indices)


def _augmented(
    batch: Tensor, step: int, seed: int, lines: int, black: Tensor | None
) -> tuple[Tensor, Tensor]:
    """(teacher's input, student's input): seeded flips; for ``lines`` > 0 the student's copy gets
    random zero or black one-pixel rows/columns."""
    rng = np.random.default_rng([seed, step, 1])
    flips = torch.as_tensor(rng.random(len(batch)) < 0.5)
    clean = torch.where(flips.view(-1, 1, 1, 1), batch.flip(-1), batch)
    if lines == 0:
        return clean, clean
    drawn = clean.clone()
    height, width = drawn.shape[-2:]
    for image in range(len(drawn)):
        for _ in range(lines):
            value = black if rng.random() < 0.5 else torch.zeros_like(black)
            if rng.random() < 0.5:
                drawn[image, :, int(rng.integers(height)), :] = value.view(-1, 1)
            else:
                drawn[image, :, :, int(rng.integers(width))] = value.view(-1, 1)
    return clean, drawn


def fingerprint(**inputs: Any) -> str:
    """What a checkpoint was made from: a rerun resumes only from a checkpoint of equal inputs."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def _file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _load_checkpoint(path: Path, key: str) -> dict | None:
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a checkpoint cut short: start over
        logging.warning("checkpoint %s unreadable (%s): starting from step 0", path, error)
        return None
    if state.get("fingerprint") != key:
        logging.info("checkpoint %s is from other inputs or settings: starting from step 0", path)
        return None
    return state


def _save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    torch.save(state, tmp)
    tmp.replace(path)


def distill(
    teacher: nn.Module,
    student: nn.Module,
    transform: Callable[[Any], Tensor],
    records: Sequence[ImageRecord],
    settings: DistillSettings,
    *,
    strategy: str,
    output_key: str | None = None,
    device: torch.device | str = "cpu",
    checkpoint: str | Path | None = None,
    checkpoint_inputs: dict[str, Any] | None = None,
    progress: TextIO | None = None,
) -> tuple[pl.DataFrame, float]:
    """Train ``student`` in place towards ``teacher`` on ``records``, the last
    ``settings.held_out`` of which only measure fidelity. Returns the curve
    (:data:`CURVE_COLUMNS`) and the training seconds (over resumed runs too).

    Both models move to ``device`` in channels-last layout and the teacher to eval mode; its values
    and flags are left as they are (its forward passes run without gradients).
    ``checkpoint``: a file to resume from and write to (removed by the caller once the
    outputs exist); ``checkpoint_inputs`` identify what it was made from beyond ``settings``.
    """
    device = torch.device(device)
    # channels-last: on the CPU, depthwise convs train about twice as fast in it
    layout = torch.channels_last
    teacher = teacher.to(device, memory_format=layout).eval()
    student = student.to(device, memory_format=layout)
    params = trainable_parameters(student, settings.train)
    optimiser = torch.optim.Adam(params, lr=settings.lr)
    held = list(records[len(records) - settings.held_out :]) if settings.held_out else []
    train = list(records[: len(records) - settings.held_out])
    lines = settings.zero_lines if strategy == "zero_line" else 0
    black = black_value(transform).to(device) if lines else None

    def logits(net: nn.Module, batch: Tensor) -> Tensor:
        return output_logits(net(batch), output_key).float()

    with torch.no_grad(), full_float32():
        held_batches = [
            b.to(device, memory_format=layout) for b in preprocessed_batches(held, transform, settings.batch)
        ]
        held_teacher = [logits(teacher, b) for b in held_batches]

    def measure() -> Fidelity:
        student.eval()
        with torch.no_grad(), full_float32():
            out = [logits(student, b) for b in held_batches]
        _training_mode(student, settings.freeze_batchnorm)
        return (
            fidelity(torch.cat(held_teacher), torch.cat(out)) if held else Fidelity(kl=None, agreement=None)
        )

    key = fingerprint(settings=asdict(settings), strategy=strategy, **(checkpoint_inputs or {}))
    path = Path(checkpoint) if checkpoint else None
    resumed = _load_checkpoint(path, key) if path else None
    if resumed:
        student.load_state_dict(resumed["student"])
        optimiser.load_state_dict(resumed["optimiser"])
        rows, first, seconds = resumed["curve"], resumed["step"], resumed["seconds"]
        logging.info("resuming from step %d of %d (%s)", first, settings.steps, path)
    else:
        start = measure()
        rows = [
            {
                "step": 0,
                "loss": None,
                "images_per_s": None,
                "held_out_kl": start["kl"],
                "held_out_agreement": start["agreement"],
            }
        ]
        first, seconds = 0, 0.0
        logging.info("step 0 (plain swap): held-out KL %.4f, agreement %.3f", start["kl"], start["agreement"])
    _training_mode(student, settings.freeze_batchnorm)
    bar = image_progress(settings.steps * settings.batch, f"repair {strategy}", progress)
    bar.update(first * settings.batch)
    for step in range(first, settings.steps):
        began = time.perf_counter()
        chosen = [train[i] for i in _step_indices(step, settings.batch, len(train), settings.seed)]
        batch = next(iter(preprocessed_batches(chosen, transform, settings.batch, workers=1)))
        batch = batch.to(device, memory_format=layout)
        clean, drawn = _augmented(batch, step, settings.seed, lines, black)
        with full_float32():
            with torch.no_grad():
                target = logits(teacher, clean)
            loss = distillation_loss(target, logits(student, drawn), settings.temperature)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        took = time.perf_counter() - began
        seconds += took
        row = {
            "step": step + 1,
            "loss": loss.item(),
            "images_per_s": settings.batch / took,
            "held_out_kl": None,
            "held_out_agreement": None,
        }
        bar.update(settings.batch)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if (step + 1) % settings.eval_every == 0 or step + 1 == settings.steps:
            measured = measure()
            row.update(held_out_kl=measured["kl"], held_out_agreement=measured["agreement"])
            logging.info(
                "step %d: loss %.4f, held-out KL %.4f, agreement %.3f, %.1f img/s",
                step + 1,
                loss.item(),
                measured["kl"],
                measured["agreement"],
                row["images_per_s"],
            )
        rows.append(row)
        if path and ((step + 1) % settings.eval_every == 0) and step + 1 < settings.steps:
            _save_checkpoint(
                path,
                {
                    "fingerprint": key,
                    "step": step + 1,
                    "seconds": seconds,
                    "curve": rows,
                    "student": student.state_dict(),
                    "optimiser": optimiser.state_dict(),
                },
            )
    bar.close()
    student.eval()
    curve = pl.DataFrame(rows, schema={c: pl.Int64 if c == "step" else pl.Float64 for c in CURVE_COLUMNS})
    return curve, seconds
