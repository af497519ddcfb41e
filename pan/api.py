"""The §3 method on a model in memory, for notebooks: no Snakemake, the workflow's code path.

:func:`find_pans` runs the same three stages as the workflow's rules, through the same
functions: activation dump (:func:`pan.capture.activations.dump_module_activations`), per-layer KS
scoring (:func:`pan.core.scoring.score_layer`) and labelling (:func:`pan.core.labelling.label_pan_files`),
in a temporary folder unless ``out_dir`` keeps the files.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import polars as pl
import torch
from PIL import Image
from torch import nn

from pan.capture.activations import dump_module_activations
from pan.capture.images import ImageRecord, ImageSpec, check_batch, image_records, rgb_image
from pan.capture.inference import DEFAULT_MICRO_BATCH
from pan.capture.models import IMAGENET_MEAN, IMAGENET_STD, eval_transform
from pan.core.bootstrap import DEFAULT_BOOTSTRAP_SEED, DEFAULT_REPLICATES
from pan.core.labelling import DEFAULT_THETA, check_theta, label_pan_files
from pan.core.scoring import score_layer

__all__ = ["Images", "find_pans"]

Images = torch.Tensor | Sequence[Image.Image] | str | Path
"""A preprocessed batch ``(images, channels, H, W)``, a list of PIL images, or a folder."""


def find_pans(
    model: nn.Module,
    images: Images,
    theta: float = DEFAULT_THETA,
    device: str = "auto",
    transform: Callable[[Any], torch.Tensor] | None = None,
    micro_batch: int = DEFAULT_MICRO_BATCH,
    out_dir: str | Path | None = None,
    progress: TextIO | None = None,
) -> pl.DataFrame:
    """Label every neuron of ``model``'s analysed convs: one row per neuron, the columns of
    ``results/pans/{model}.parquet`` (``layer, layer_index, neuron, ks_T..ks_R, edge_T..edge_R,
    pan_T..pan_R, is_edge_detector, is_pan, pan_type, theta``, each rule's strength with its
    image-bootstrap interval and ``confident``/``borderline``, the share rule's columns with a
    ``_share`` suffix; see docs/trust.md), with the workflow's default share and bootstrap.

    ``images`` is a preprocessed tensor batch (used as is), or PIL images or a folder of image
    files (flat or one folder per class), which ``transform`` turns into the model's input
    (default: the ImageNet evaluation transform at 224 pixels). ``out_dir`` keeps the
    activation dump (``activations/``), the KS tables (``ks/``) and the labels
    (``pans.parquet``) in the workflow's formats; by default they live in a temporary folder.
    ``out_dir`` must be empty or new: KS tables left by another model would be mixed into a
    later relabelling of ``out_dir/ks``.

    PIL images of any mode are converted to RGB by the workflow's rule
    (:func:`pan.images.rgb_image`). ``model`` is handed back as it came: its modules' modes, its
    parameters' devices and dtypes and its hooks are those it had (it runs in eval mode on
    ``device`` meanwhile, fed inputs of its own dtype).

    Pass the model's own ``transform`` with PIL images or a folder: EfficientNet-Lite, for
    one, expects inputs in about [-1, 1] (``load_model(spec).transform``), not the ImageNet
    normalisation of the default.

    Example (a conv whose channel 1 copies the row above: zeros on its top row)::

        >>> import torch, pan
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1))
        >>> with torch.no_grad():
        ...     _ = net[0].weight.zero_(), net[0].bias.zero_()
        ...     net[0].weight[0, 0, 1, 1] = 1.0  # channel 0: the pixel itself
        ...     net[0].weight[1, 0, 0, 1] = 1.0  # channel 1: the pixel above it
        >>> images = 1.0 + torch.rand(16, 1, 32, 32, generator=torch.Generator().manual_seed(0))
        >>> labels = pan.find_pans(net, images, theta=0.5, device="cpu")
        >>> labels.select("neuron", "is_pan", "pan_type").rows()
        [(0, False, ''), (1, True, 'T')]
    """
    theta = check_theta(theta)  # before the dump: a bad theta must not cost a forward pass
    _check_out_dir(out_dir)
    records = _records(images)
    if isinstance(images, torch.Tensor):
        transform = transform or (lambda tensor: tensor)
    else:
        transform = transform or eval_transform(224, 256, IMAGENET_MEAN, IMAGENET_STD)
    with tempfile.TemporaryDirectory(prefix="pan-") as scratch:
        root = Path(out_dir) if out_dir is not None else Path(scratch)
        dump_dir, ks_dir = root / "activations", root / "ks"
        ks_dir.mkdir(parents=True, exist_ok=True)
        name = type(model).__name__
        dumps = dump_module_activations(
            model, transform, records, dump_dir, name, micro_batch, device, progress
        )
        ks_files = [ks_dir / dump.file for dump in dumps]
        for dump, ks_file in zip(dumps, ks_files, strict=True):
            score_layer(
                dump_dir / dump.file, ks_file, replicates=DEFAULT_REPLICATES, seed=DEFAULT_BOOTSTRAP_SEED
            )
        return label_pan_files(ks_files, root / "pans.parquet", theta)


def _check_out_dir(out_dir: str | Path | None) -> None:
    """Refuse an ``out_dir`` that holds anything: pan's files of an earlier call (another
    model's KS tables) would be mixed with this call's by a relabelling of ``out_dir/ks``."""
    if out_dir is not None and Path(out_dir).exists():
        if not Path(out_dir).is_dir():
            raise ValueError(f"out_dir {out_dir} is a file, not a folder")
        if any(Path(out_dir).iterdir()):
            raise ValueError(
                f"out_dir {out_dir} is not empty; give each find_pans call a new or empty folder "
                "(files of an earlier model there would be mixed into this one's KS tables)"
            )


def _item(item: Any, position: int) -> Any:
    """A PIL image as RGB by the workflow's rule; anything else (a tensor) as is."""
    return rgb_image(item, f"image #{position}") if isinstance(item, Image.Image) else item


def _records(images: Images) -> list[ImageRecord]:
    """Image records for a tensor batch, PIL images or a folder (every image in it)."""
    if isinstance(images, (str, Path)):
        return list(
            check_batch(image_records(ImageSpec(source="folder", path=str(images), count=None)), None)
        )
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise ValueError(
                f"a tensor batch must be (images, channels, H, W), got shape {tuple(images.shape)}"
            )
        items: Sequence[Any] = list(images)
    else:
        items = list(images)
    if not items:
        raise ValueError("no images given")
    return check_batch(
        [
            ImageRecord(f"{i:05d}", None, lambda item=item, i=i: _item(item, i))
            for i, item in enumerate(items)
        ],
        None,
    )
