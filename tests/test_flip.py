"""pan.flip: the flip control on the hand-set net of tests/origin_net.py (a padding PAN stays at
its border, a content neuron moves with the content)."""

from __future__ import annotations

import origin_net
import polars as pl
import pytest
import torch
from test_origin import identity, net_labels

from pan.beyond.flip import FLIP_COLUMNS, border_verdict, flip_counts, flip_strengths, flip_verdicts


@pytest.fixture(scope="module")
def verdicts() -> pl.DataFrame:
    net, images = origin_net.build().eval(), origin_net.batch()
    labels = net_labels(net, images)
    strengths = flip_strengths(net, list(images), identity, labels, 8, "cpu", replicates=40, seed=0)
    assert torch.equal(net(images), origin_net.build().eval()(images))  # hooks only
    return flip_verdicts(strengths, labels, theta=0.5)


def test_each_planted_neuron_gets_its_verdict(verdicts):
    per_pan = verdicts.unique(["layer", "neuron"])
    got = {(r["layer"], r["neuron"]): r["verdict"] for r in per_pan.iter_rows(named=True)}
    assert got == origin_net.EXPECTED_VERDICT


def test_content_moves_to_the_mirrored_border_and_padding_stays(verdicts):
    content = verdicts.filter((pl.col("layer") == "c1") & (pl.col("neuron") == 3)).row(0, named=True)
    assert content["flip"] == "flip_tb" and content["stay_hi"] < 0.1 and content["moved_lo"] > 0.9
    assert content["gap_lo"] > 0.9 and content["flipped_gap_hi"] < -0.9
    padding = verdicts.filter((pl.col("layer") == "c1") & (pl.col("neuron") == 4)).row(0, named=True)
    assert padding["flip"] == "flip_lr" and padding["stay_lo"] > 0.9 and padding["moved_hi"] < 0.1
    assert padding["gap_lo"] > 0.9 and padding["flipped_gap_lo"] > 0.9
    symmetric = verdicts.filter((pl.col("layer") == "c1") & (pl.col("neuron") == 5))
    assert symmetric["symmetric"].all() and not symmetric["informative"].any()
    assert set(symmetric["border_verdict"]) == {"unclear"}


def test_counts_per_model_and_type(verdicts):
    counts = flip_counts({"m": verdicts})
    assert counts.columns == list(FLIP_COLUMNS)
    rows = {r["pan_type"]: r for r in counts.iter_rows(named=True)}
    assert (rows["all"]["pans"], rows["all"]["padding"], rows["all"]["content"], rows["all"]["unclear"]) == (
        10,
        7,
        2,
        1,
    )
    assert rows["LR"]["uninformative"] == 1 and rows["T"]["content"] == 2


def test_border_verdicts_compare_the_gap_to_the_mirror_before_and_after_the_flip():
    assert border_verdict((0.3, 0.6), (0.2, 0.5)) == "padding"
    assert border_verdict((-0.6, -0.3), (-0.5, -0.2)) == "padding"
    assert border_verdict((0.3, 0.6), (-0.5, -0.2)) == "content"
    assert border_verdict((0.3, 0.6), (-0.1, 0.4)) == "unclear"  # part of the response moved
    assert border_verdict((-0.05, 0.1), (0.2, 0.5)) == "unclear"  # border and mirror alike
