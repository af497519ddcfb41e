"""Evaluate the four §4 variants of a model over the same images, in one pass over the images.

Each batch is decoded and preprocessed once, then run through every variant; the logits
of each variant stream to its own file (format: :mod:`pan.bias.logits`). Whatever a model
outputs is stored (:func:`output_tensor`): class logits, or a dense model's maps, flattened
with their shape in the file. A model's output may be
a tensor, a tuple, a namedtuple or a dict; :func:`output_logits` says which part is the logits.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import polars as pl
import torch

from pan.bias.logits import LogitWriter
from pan.bias.variants import VARIANTS, build_variants
from pan.capture.classes import check_eval_labels, class_indices
from pan.capture.images import ImageSpec, image_records
from pan.capture.inference import DEFAULT_MICRO_BATCH, full_float32, pick_device, preprocessed_batches
from pan.capture.models import ModelSpec, load_model
from pan.logs import image_progress

__all__ = [
    "LOGIT_KEYS",
    "check_logits",
    "evaluate_variants",
    "output_logits",
    "output_tensor",
]


def evaluate_variants(
    model: ModelSpec,
    images: ImageSpec,
    pan_labels: str | Path,
    outputs: Mapping[str, str | Path],
    rand_seed: int = 0,
    micro_batch: int = DEFAULT_MICRO_BATCH,
    device: str = "auto",
    progress: TextIO | None = None,
) -> int:
    """Write the logits of every variant in ``outputs`` (variant -> path); returns the image count.

    ``pan_labels`` is the model's PAN label file (``results/pans/{model}.parquet``); it
    selects the channels of ``pan_reflect`` and, with ``rand_seed``, of ``rand_reflect``.
    Progress (images/s) goes to ``progress``, by default the current ``sys.stderr`` (the job's log).
    The model spec's ``output`` picks the logits out of a dict or namedtuple output (see
    :func:`output_logits`).
    """
    unknown = set(outputs) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown variants {sorted(unknown)}; use some of {VARIANTS}")
    loaded = load_model(model)  # first: a missing-weights error comes before any image work
    records = image_records(images)
    check_eval_labels(images, records)
    target = pick_device(device)
    net = loaded.model.to(target)
    variants = build_variants(net, pl.read_parquet(pan_labels), rand_seed)
    variants = {name: variants[name] for name in outputs}
    labels = [r.label for r in records]
    truth: list[int | None] | None = None
    bar = image_progress(len(records), f"evaluate {model.name}", progress)
    on_gpu = target.type == "cuda"
    with ExitStack() as stack, torch.inference_mode(), full_float32():
        writers: dict[str, LogitWriter] = {}
        first = 0
        for batch in preprocessed_batches(records, loaded.transform, micro_batch, pin_memory=on_gpu):
            batch = batch.to(target, non_blocking=on_gpu)
            logits = {
                name: output_tensor(variant(batch), model.output, model=model.name).float().cpu().numpy()
                for name, variant in variants.items()
            }
            shape = next(iter(logits.values())).shape[1:]  # one image's output
            for values in logits.values():  # class logits as output_logits checks them; any map finite
                _check_output(torch.from_numpy(values), len(shape), f"model {model.name!r}")
            logits = {name: values.reshape(len(values), -1) for name, values in logits.items()}
            if truth is None:  # the number of classes is known from the first batch
                num_classes = _num_classes(logits, loaded.categories, model.name, shape)
                truth = class_indices(labels, loaded.categories, num_classes)
                writers = {
                    name: stack.enter_context(
                        LogitWriter(outputs[name], model.name, name, num_classes, loaded.categories, shape)
                    )
                    for name in variants
                }
            rows = slice(first, first + len(batch))
            names = [
                loaded.categories[i] if loaded.categories and i is not None else None for i in truth[rows]
            ]
            ids = [r.id for r in records[rows]]
            for name, values in logits.items():
                writers[name].write(first, ids, labels[rows], truth[rows], names, values)
            first += len(batch)
            bar.update(len(batch))
    bar.close()
    return len(records)


LOGIT_KEYS = ("logits", "out")
"""Keys of a dict output taken as the logits when no ``output_key`` is given, in this order."""


def output_tensor(output: Any, key: str | None = None, *, model: str = "model") -> torch.Tensor:
    """The tensor in a model's ``output`` that the evaluation stores, by :func:`output_logits`'s
    rule but of any shape (a dense model's ``(images, channels, height, width)`` maps too)."""
    where = f"model {model!r}"
    chosen: Any = output
    if isinstance(output, torch.Tensor):
        pass
    elif isinstance(output, Mapping):
        keys = list(output)
        if key is not None:
            if key not in output:
                raise ValueError(
                    f"{where} returns a dict without the output key {key!r}; its keys: {keys}; "
                    "set the model's 'output' to one of them"
                )
            chosen = output[key]
        else:
            found = next((k for k in LOGIT_KEYS if k in output), None)
            if found is None:
                known = " or ".join(map(repr, LOGIT_KEYS))
                raise ValueError(
                    f"{where} returns a dict with keys {keys}, none of them {known}; "
                    "set the model's 'output' to the key that holds the logits"
                )
            chosen = output[found]
    elif isinstance(output, (tuple, list)):
        fields = getattr(output, "_fields", None)
        kind = type(output).__name__
        if key is not None:
            if fields is None:
                raise ValueError(
                    f"{where} returns a {kind}, whose elements have no names; remove the model's "
                    f"'output' ({key!r}): the first tensor element is taken"
                )
            if key not in fields:
                raise ValueError(
                    f"{where} returns a {kind} without the field {key!r}; its fields: {list(fields)}"
                )
            chosen = getattr(output, key)
        else:
            chosen = next((item for item in output if isinstance(item, torch.Tensor)), None)
            if chosen is None:
                raise ValueError(f"{where} returns a {kind} with no tensor in it")
    else:
        raise ValueError(
            f"{where} returns a {type(output).__name__}, not a tensor, tuple, namedtuple or dict of tensors"
        )
    if not isinstance(chosen, torch.Tensor):
        raise ValueError(f"{where}: the chosen output is a {type(chosen).__name__}, not a tensor of logits")
    return chosen


def output_logits(output: Any, key: str | None = None, *, model: str = "model") -> torch.Tensor:
    """The logits ``(images, classes)`` in a model's ``output``, by a fixed rule.

    - a tensor: as is (``key`` is not needed);
    - a dict (any ``Mapping``): the entry ``key`` when given, else the first of
      :data:`LOGIT_KEYS` present (``logits``, then ``out``), else refused, listing the keys;
    - a namedtuple: the field ``key`` when given, else its first tensor field, as for a tuple
      (GoogLeNet's and Inception's training outputs: ``logits``, before the auxiliary logits);
    - a tuple or list: its first element that is a tensor (``key`` is refused: no names).

    The logits must be 2-D; anything else raises ``ValueError`` naming ``model`` and saying
    what to set (the model's ``output`` key in the config).
    """
    where = f"model {model!r}"
    chosen = output_tensor(output, key, model=model)
    if chosen.ndim != 2:
        hint = (
            "pan evaluates classifiers only"
            if chosen is output
            else "set the model's 'output' to the entry that holds the class logits"
        )
        raise ValueError(
            f"{where} outputs logits of shape {tuple(chosen.shape)}, not (images, classes); {hint}"
        )
    check_logits(chosen, where)
    return chosen


def check_logits(logits: torch.Tensor, where: str = "model") -> None:
    """Refuse outputs that are no logits: NaN or infinite values (a head that divides by zero,
    an fp16 overflow) would fill the odds with NaN and still count in accuracy; rows that are
    already probabilities (every value in [0, 1], each row summing to 1: a softmax head) would
    be softmaxed again, leaving odds near 1 and an empty Table 3. Log-probabilities are logits."""
    bad = ~torch.isfinite(logits).all(dim=1)
    if bad.any():
        raise ValueError(
            f"{where} outputs NaN or infinite logits for {int(bad.sum())} of {len(logits)} images "
            "(first: image {} of the batch); section 4's odds need finite logits: fix the head, or "
            "evaluate in float32".format(int(bad.nonzero()[0, 0]))
        )
    values = logits.double()
    if (
        len(values)
        and values.shape[1] > 1
        and bool(
            ((values >= 0) & (values <= 1)).all()
            and torch.allclose(values.sum(dim=1), torch.ones(len(values)).double(), atol=1e-4)
        )
    ):
        raise ValueError(
            f"{where} outputs probabilities (every row in [0, 1], summing to 1), not logits: section "
            "4 applies softmax itself, so a softmax head would leave every odds near 1; give pan the "
            "model without its final softmax (or its log-softmax), or set the model's 'output' to "
            "the logits"
        )


def _check_output(values: torch.Tensor, dims: int, where: str) -> None:
    """:func:`check_logits` for class logits; a dense map (probabilities are fine) must be finite."""
    if dims == 1:
        check_logits(values, where)
    elif not torch.isfinite(values).all():
        raise ValueError(f"{where} outputs NaN or infinite values; section 4 needs finite outputs")


def _num_classes(
    logits: Mapping[str, np.ndarray], categories: list[str] | None, model: str, output_shape=None
) -> int:
    """The number of classes (values per image) from a batch of outputs, checked against the
    model's class names; a model whose image output has ``output_shape`` other than ``(classes,)``
    (a dense map) has no class names."""
    shape = next(iter(logits.values())).shape
    if len(shape) != 2:
        raise ValueError(f"model {model!r} outputs shape {tuple(shape)}, not (images, classes)")
    if output_shape is not None and len(output_shape) == 0:
        raise ValueError(f"model {model!r} outputs one number per image; pan needs (images, ...) outputs")
    if output_shape is not None and len(output_shape) > 1:
        return shape[1]
    if categories and len(categories) != shape[1]:
        raise ValueError(f"model {model!r} has {shape[1]} outputs but {len(categories)} category names")
    return shape[1]
