"""Ground-truth class indices of images, from the labels their folder layout gives.

An image label is the name of the folder the image sits in (see :mod:`pan.capture.images`). It maps
to a model's class index when it is one of the model's category names, or, for 1000-class
models, an ILSVRC2012 synset id (``n01440764`` ... ``n15075141``, standard index = sorted
order, shipped in ``pan/data/imagenet_wnids.txt``). Labels are all-or-nothing: if any
label of a set of images maps to no class, none is used, so a partly matching folder (as
Caltech101 against ImageNet names) never yields a misleading accuracy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cache
from importlib import resources

from pan.capture.images import ImageRecord, ImageSpec

__all__ = ["IMAGENET_CLASSES", "LabelError", "check_eval_labels", "class_indices", "imagenet_wnids"]

IMAGENET_CLASSES = 1000


class LabelError(ValueError):
    """Image labels that must map to classes do not; the message names the first offenders."""


@cache
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ILSVRC2012 synset ids in class-index order (index 0: tench, 999: toilet tissue)."""
    text = resources.files("pan").joinpath("data/imagenet_wnids.txt").read_text()
    return tuple(text.split())


def check_eval_labels(images: ImageSpec, records: Sequence[ImageRecord]) -> None:
    """ILSVRC2012 images in class folders must sit in synset-id folders; raise :class:`LabelError` if not."""
    if images.source != "imagenet":
        return
    wnids = set(imagenet_wnids())
    unknown = sorted({r.label for r in records if r.label is not None and r.label not in wnids})
    if unknown:
        raise LabelError(
            f"eval_images: ILSVRC2012 folders must be synset ids (n01440764 ...), found {unknown[:5]}"
        )


def class_indices(
    labels: Sequence[str | None], categories: Sequence[str] | None, num_classes: int
) -> list[int | None]:
    """Class index of each label, or ``None`` for every label when they do not all map.

    ``categories`` are the model's class names in index order (when known) and
    ``num_classes`` its number of outputs.
    """
    lookup = {name: i for i, name in enumerate(categories or ())}
    if num_classes == IMAGENET_CLASSES:
        lookup |= {wnid: i for i, wnid in enumerate(imagenet_wnids())}
    unknown = sorted({label for label in labels if label not in lookup}, key=str)
    if not unknown:
        return [lookup[label] for label in labels]
    if any(label is not None for label in labels):
        logging.warning(
            "labels %s name no class of the model: outputs that need labels are left empty", unknown[:5]
        )
    return [None] * len(labels)
