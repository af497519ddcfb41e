"""Run names: the main run's controls (``controls/{condition}``) and image draws
(``stability/draw{n}``), and the images each run sees.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from pan.capture.images import ImageSpec

__all__ = [
    "CONDITIONS",
    "RUN_PATTERN",
    "check_draws_differ",
    "control_run",
    "draw_images",
    "draw_run",
    "draw_seed",
    "parse_run",
    "run_images",
]

CONDITIONS: tuple[str, ...] = ("trained", "reflect", "random_init")
"""The controls, in table order."""


RUN_PATTERN = r"controls/(?:reflect|random_init)|stability/draw[0-9]+"
"""The runs besides the main one (the ``run`` wildcard of the workflow)."""


def control_run(condition: str) -> str:
    """The run name of a control condition other than ``trained`` (the main run)."""
    if condition not in CONDITIONS[1:]:
        raise ValueError(f"no separate run for condition {condition!r}; runs exist for {CONDITIONS[1:]}")
    return f"controls/{condition}"


def draw_run(draw: int) -> str:
    """The run name of stability draw ``draw`` (0, 1, ...)."""
    return f"stability/draw{draw}"


def parse_run(run: str) -> tuple[str, int | None]:
    """``(condition, draw)`` of a run name: ``controls/reflect`` -> ``("reflect", None)``,
    ``stability/draw3`` -> ``("trained", 3)``."""
    kind, _, rest = run.partition("/")
    if kind == "controls" and rest in CONDITIONS[1:]:
        return rest, None
    if kind == "stability" and rest.startswith("draw") and rest[4:].isdigit():
        return "trained", int(rest[4:])
    raise ValueError(f"unknown run {run!r}: use controls/<condition> or stability/draw<k>")


def draw_seed(seed: int, draw: int) -> int:
    """The image seed of draw ``draw``: 32 bits of SHA-256 of the main seed and the draw, so
    draws differ from each other and from the main batch, and any integer seed works."""
    digest = hashlib.sha256(f"pan-stability/{seed}/{draw}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def draw_images(images: ImageSpec, draw: int) -> ImageSpec:
    """The §3 batch of draw ``draw``: same source and size as ``images``, its own seed."""
    return replace(images, seed=draw_seed(images.seed, draw))


def run_images(images: ImageSpec, run: str) -> ImageSpec:
    """The images a run analyses: the main batch for controls, its own draw for stability."""
    _, draw = parse_run(run)
    return images if draw is None else draw_images(images, draw)


def check_draws_differ(images: ImageSpec) -> ImageSpec:
    """``images`` when its draws can differ, else ``ValueError`` saying what to set.

    Draws choose ``count`` images of the source without replacement: from a folder of exactly
    ``count`` images (or with ``count: null``) every draw holds the same images, and the
    stability table would report a Jaccard index of 1 with a zero-width interval, measuring
    nothing. The builtin source has no end (every draw is new crops)."""
    from pan.capture.images import image_records

    if images.source == "builtin":
        return images
    pool = len(image_records(replace(images, count=None)))
    if images.count is None or images.count >= pool:
        raise ValueError(
            f"stability: images.count is {images.count} and the {images.source} source holds {pool} "
            "images, so every draw would hold the same images and the stability table would "
            f"measure nothing: set images.count below {pool} (at most {pool // 2} lets two draws "
            "share half their images or fewer), or give a larger folder"
        )
    return images
