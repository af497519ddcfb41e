"""Activation dumps (pan.capture.activations): one map per image and layer, or a clear refusal."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pan.core.dumps import MANIFEST, read_feature_maps, read_manifest

REUSED_CONV_NETS = """
import torch
from torch import nn
import torch.nn.functional as F


class SameScale(nn.Module):  # one conv applied twice in a row (weight sharing, a recurrent block)
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.edge = nn.Conv2d(3, 2, 3, padding=1)
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        self.edge(x)
        return self.head(self.conv(torch.relu(self.conv(x))).mean(dim=(2, 3)))


class TwoScales(nn.Module):  # one conv on the input and on a downsampled input
    def __init__(self):
        super().__init__()
        self.edge = nn.Conv2d(3, 2, 3, padding=1)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        self.edge(x)
        full, half = self.conv(x), self.conv(F.avg_pool2d(x, 2))
        return self.head(torch.cat([full.mean(dim=(2, 3)), half.mean(dim=(2, 3))], dim=1))


class Once(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.conv(x).mean(dim=(2, 3)))


def same_scale():
    return SameScale()


def two_scales():
    return TwoScales()


def once():
    return Once()
"""


def _dump(tmp_path: Path, builder: str, out: Path):
    import torch
    from conftest import write_images

    from pan.capture.activations import dump_activations
    from pan.capture.images import ImageSpec
    from pan.capture.models import ModelSpec

    torch.manual_seed(0)
    net_file = tmp_path / "reused_nets.py"
    net_file.write_text(REUSED_CONV_NETS)
    if not (tmp_path / "images").is_dir():
        write_images(tmp_path / "images", 10)
    spec = ModelSpec(
        name="reused",
        source="python",
        builder=f"{net_file}:{builder}",
        input_size=32,
        resize_size=32,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
    )
    images = ImageSpec(source="folder", path=str(tmp_path / "images"), count=10, seed=0)
    return dump_activations(spec, images, out, micro_batch=4, device="cpu", progress=io.StringIO())


@pytest.mark.parametrize("builder", ["same_scale", "two_scales"])
def test_a_conv_run_twice_per_forward_pass_is_refused_and_leaves_no_dump(tmp_path, builder):
    out = tmp_path / "activations" / "reused"
    with pytest.raises(ValueError) as error:
        _dump(tmp_path, builder, out)
    assert str(error.value) == (
        "model 'reused': analysed layer(s) 'conv' (2 calls) ran more than once per forward pass "
        "(weight sharing, a recurrent block or one conv at several scales); pan needs one map per "
        "image and layer, so it cannot analyse such a layer: give each use of the conv its own module"
    )
    assert list(out.iterdir()) == []  # no manifest, no half-written layer files


def test_a_conv_run_once_dumps_one_row_per_image_and_neuron(tmp_path):
    out = tmp_path / "activations" / "once"
    out.mkdir(parents=True)
    (out / MANIFEST).write_text("{}")  # a stale manifest of an earlier run is replaced
    dumps = _dump(tmp_path, "once", out)
    assert [d.name for d in dumps] == ["conv"]
    assert read_feature_maps(out / "conv.parquet").shape == (10, 4, 32, 32)
    assert read_manifest(out)["model"] == "reused"


def test_check_single_calls_lists_every_repeated_layer():
    from pan.capture.activations import check_single_calls

    check_single_calls("m", {"a": 1, "b": 1})
    with pytest.raises(
        ValueError, match=r"^model 'm': analysed layer\(s\) 'b' \(3 calls\), 'c' \(2 calls\) ran"
    ):
        check_single_calls("m", {"a": 1, "b": 3, "c": 2})


class _Branchy(nn.Module):
    """``late`` is registered first but runs last; ``gated`` runs only on images whose mean is
    above 0.5 (a branch taken for some inputs only)."""

    def __init__(self, gate: str = ""):
        super().__init__()
        self.late = nn.Conv2d(4, 2, 3, padding=1)
        self.early = nn.Conv2d(3, 4, 3, padding=1)
        self.gated = nn.Conv2d(4, 4, 3, padding=1)
        self.gate = gate

    def forward(self, x):
        y = self.early(x)
        if self.gate == "batch" and x.mean() > 0.5:  # for some micro-batches only
            y = self.gated(y)
        elif self.gate == "part":
            keep = x.mean(dim=(1, 2, 3)) > 0.5
            y = y.clone()
            y[keep] = self.gated(y[keep])
        return self.late(y).mean(dim=(2, 3))


def _records(values):
    from pan.capture.images import ImageRecord

    return [ImageRecord(f"{i}", None, lambda v=v: torch.full((3, 8, 8), v)) for i, v in enumerate(values)]


def test_layer_index_follows_the_forward_pass_not_registration(tmp_path):
    from pan.capture.activations import dump_module_activations

    dumps = dump_module_activations(_Branchy(), lambda t: t, _records([0.1] * 8), tmp_path, "b", device="cpu")
    assert [(d.index, d.name) for d in dumps] == [(0, "early"), (1, "late")]
    assert [(layer["index"], layer["name"]) for layer in read_manifest(tmp_path)["layers"]] == [
        (0, "early"),
        (1, "late"),
    ]


def test_a_conv_run_on_part_of_the_batch_is_refused_and_leaves_no_dump(tmp_path):
    from pan.capture.activations import dump_module_activations

    images = _records([0.1, 0.9] * 4)
    with pytest.raises(ValueError, match="'gated' ran on 4 of the 8 images"):
        dump_module_activations(_Branchy(gate="part"), lambda t: t, images, tmp_path, "b", 8, "cpu")
    with pytest.raises(ValueError, match=r"'gated' \(4 of 8 images\) did not run for every image"):
        dump_module_activations(
            _Branchy(gate="batch"),
            lambda t: t,
            sorted(images, key=lambda r: r.load()[0, 0, 0]),
            tmp_path,
            "b",
            4,
            "cpu",
        )
    assert not list(tmp_path.glob("*.parquet"))


def test_a_slash_in_a_module_name_is_refused_before_any_image(tmp_path):
    from pan.capture.activations import dump_module_activations

    net = nn.Sequential()
    net.add_module("stem/conv", nn.Conv2d(3, 2, 3, padding=1))
    with pytest.raises(ValueError, match=r"\['stem/conv'\] contain '/'"):
        dump_module_activations(net, lambda t: t, _records([0.1] * 8), tmp_path, "s", device="cpu")


def test_a_conv_subclass_with_its_own_forward_pads_unknown():
    from pan.capture.padding import layer_padding

    class MySame(nn.Conv2d):  # pads in forward, as timm's Conv2dSame does; padding attribute 0
        def forward(self, x):
            return super().forward(F.pad(x, (1, 1, 1, 1)))

    net = nn.Sequential(MySame(3, 2, 3), nn.Conv2d(2, 2, 3), nn.Conv2d(2, 2, 3, padding=1))
    assert [layer_padding(net, name) for name in ("0", "1", "2")] == ["unknown", "none", "zeros"]
