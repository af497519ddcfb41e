"""The four §4 variants: which channels pad with reflect in each (pan.bias.variants)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch import nn

from pan.bias.reflect import ChannelPaddedConv2d, with_reflect_padding
from pan.bias.variants import VARIANTS, build_variants, pan_channels, random_control_channels

TESTS = Path(__file__).parent


# --- variants -------------------------------------------------------------------------------


def make_labels(layers: dict[str, tuple[int, list[int]]]) -> pl.DataFrame:
    """A PAN label table (the columns variants need): layer -> (neurons, PAN neurons)."""
    rows = [
        {"layer": name, "layer_index": index, "neuron": n, "is_pan": n in pans}
        for index, (name, (neurons, pans)) in enumerate(layers.items())
        for n in range(neurons)
    ]
    return pl.DataFrame(
        rows, schema={"layer": pl.String, "layer_index": pl.Int32, "neuron": pl.Int32, "is_pan": pl.Boolean}
    )


LABELS = make_labels({"a": (64, [0, 5, 9]), "b": (32, []), "c": (128, list(range(0, 128, 16)))})


def test_pan_channels_are_the_labelled_pans():
    assert {k: v.tolist() for k, v in pan_channels(LABELS).items()} == {
        "a": [0, 5, 9],
        "c": list(range(0, 128, 16)),
    }


def test_random_control_matches_pan_counts_avoids_pans_and_follows_the_seed():
    pans = pan_channels(LABELS)
    control = random_control_channels(LABELS, seed=0)
    assert {k: len(v) for k, v in control.items()} == {k: len(v) for k, v in pans.items()}
    for layer, channels in control.items():
        assert not set(channels.tolist()) & set(pans[layer].tolist())
        assert len(set(channels.tolist())) == len(channels)
    again = random_control_channels(LABELS, seed=0)
    assert all(np.array_equal(control[k], again[k]) for k in control)
    other = random_control_channels(LABELS, seed=1)
    assert any(not np.array_equal(control[k], other[k]) for k in control)


def test_random_control_of_a_layer_depends_only_on_its_own_labels():
    fewer_layers = LABELS.filter(pl.col("layer") == "c")
    assert np.array_equal(
        random_control_channels(fewer_layers, 3)["c"], random_control_channels(LABELS, 3)["c"]
    )


def test_random_control_shrinks_when_a_layer_has_too_few_non_pans(caplog):
    labels = make_labels({"x": (4, [0, 1, 2])})
    assert random_control_channels(labels, 0)["x"].tolist() == [3]
    assert "only 1 other channels" in caplog.text


class TwoConvs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(3, 64, 3, padding=1)
        self.b = nn.Conv2d(64, 32, 3, padding=1, groups=32)
        self.c = nn.Conv2d(32, 128, 3, padding=1)

    def forward(self, x):
        return self.c(self.b(self.a(x))).mean(dim=(2, 3))


def test_build_variants_selects_the_labelled_channels():
    net = TwoConvs().eval()
    variants = build_variants(net, LABELS, seed=0)
    assert list(variants) == list(VARIANTS) and variants["original"] is net
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        assert torch.equal(variants["reflect"](x), with_reflect_padding(net)(x))
        assert torch.equal(variants["pan_reflect"](x), with_reflect_padding(net, pan_channels(LABELS))(x))
        control = random_control_channels(LABELS, 0)
        assert torch.equal(variants["rand_reflect"](x), with_reflect_padding(net, control)(x))
    pan, rand = variants["pan_reflect"], variants["rand_reflect"]
    assert isinstance(pan.a, ChannelPaddedConv2d) and pan.a.reflect_channels.tolist() == [0, 5, 9]
    assert isinstance(pan.b, nn.Conv2d) and not isinstance(rand.b, ChannelPaddedConv2d)  # no PAN in b
    assert rand.c.reflect_channels.tolist() == control["c"].tolist()


def test_random_sets_of_a_larger_scale_grow_avoid_pans_and_leave_scale_one_alone():
    pans = pan_channels(LABELS)
    double = random_control_channels(LABELS, seed=0, scale=2.0)
    assert {k: len(v) for k, v in double.items()} == {k: 2 * len(v) for k, v in pans.items()}
    assert all(not set(double[k].tolist()) & set(pans[k].tolist()) for k in double)
    once = random_control_channels(LABELS, seed=0)
    assert all(np.array_equal(once[k], random_control_channels(LABELS, 0, scale=1.0)[k]) for k in once)
