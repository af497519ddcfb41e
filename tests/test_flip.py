"""pan.flip: the flip control on the hand-set net of tests/origin_net.py (a padding PAN stays at
its border, a content neuron moves with the content)."""

from __future__ import annotations

import origin_net
import polars as pl
import pytest
import torch
from test_origin import identity, net_labels

from pan.beyond.flip import FLIP_COLUMNS, border_verdict, flip_counts, flip_strengths, flip_verdicts
from pan.core.labelling import RULES


@pytest.fixture(scope="module")
def verdicts() -> pl.DataFrame:
    net, images = origin_net.build().eval(), origin_net.batch()
    labels = net_labels(net, images)
    strengths = flip_strengths(net, list(images), identity, labels, 8, "cpu", replicates=40, seed=0)
    assert torch.equal(net(images), origin_net.build().eval()(images))  # hooks only
    return flip_verdicts(strengths, labels, theta=0.5)


@pytest.mark.parametrize("rule", RULES)
def test_each_planted_neuron_gets_its_verdict_under_both_rules(verdicts, rule):
    assert verdicts["rule"].unique(maintain_order=True).to_list() == list(RULES)  # paper first
    per_pan = verdicts.filter(pl.col("rule") == rule).unique(["layer", "neuron"])
    got = {(r["layer"], r["neuron"]): r["verdict"] for r in per_pan.iter_rows(named=True)}
    assert got == origin_net.EXPECTED_VERDICT


@pytest.mark.parametrize("rule", RULES)
def test_content_moves_to_the_mirrored_border_and_padding_stays(verdicts, rule):
    verdicts = verdicts.filter(pl.col("rule") == rule)
    content = verdicts.filter((pl.col("layer") == "c1") & (pl.col("neuron") == 3)).row(0, named=True)
    assert content["flip"] == "flip_tb" and content["stay_hi"] < 0.1 and content["moved_lo"] > 0.9
    assert content["gap_lo"] > 0.9 and content["flipped_gap_hi"] < -0.9
    padding = verdicts.filter((pl.col("layer") == "c1") & (pl.col("neuron") == 4)).row(0, named=True)
    assert padding["flip"] == "flip_lr" and padding["stay_lo"] > 0.9 and padding["moved_hi"] < 0.1
    assert padding["gap_lo"] > 0.9 and padding["flipped_gap_lo"] > 0.9
    symmetric = verdicts.filter((pl.col("layer") == "c1") & (pl.col("neuron") == 5))
    assert symmetric["symmetric"].all() and not symmetric["informative"].any()
    assert set(symmetric["border_verdict"]) == {"unclear"}


@pytest.mark.parametrize("rule", RULES)
def test_counts_per_model_rule_and_type(verdicts, rule):
    counts = flip_counts({"m": verdicts})
    assert counts.columns == list(FLIP_COLUMNS)
    assert counts["rule"].unique(maintain_order=True).to_list() == list(RULES)
    rows = {r["pan_type"]: r for r in counts.filter(rule=rule).iter_rows(named=True)}
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


def test_each_rule_judges_its_own_pan_types():
    """One neuron, an LR PAN under the paper rule (its L border is symmetric: not judged) and
    an L PAN under the share rule (L is judged: padding)."""
    labels = pl.DataFrame(
        {
            "layer": ["a"],
            "layer_index": [0],
            "neuron": [0],
            "is_pan": [True],
            "pan_type": ["LR"],
            "is_pan_share": [True],
            "pan_type_share": ["L"],
        }
    )
    strong = dict(strength=0.9, lo=0.85, hi=0.95, mirror_gap=0.8, mirror_gap_lo=0.7, mirror_gap_hi=0.9)
    weak = dict(strength=0.1, lo=0.05, hi=0.15, mirror_gap=-0.8, mirror_gap_lo=-0.9, mirror_gap_hi=-0.7)
    rows = [
        {"rule": rule, "layer": "a", "layer_index": 0, "neuron": 0, "border": b, "condition": c}
        | (strong if b in "LT" else weak)
        | {"change": 0.0, "change_lo": 0.0, "change_hi": 0.0}
        for rule in RULES
        for b in "TBLR"
        for c in ("original", "flip_lr", "flip_tb")
    ]
    verdicts = flip_verdicts(pl.DataFrame(rows), labels, 0.5)
    assert verdicts.select("rule", "border", "symmetric", "informative", "verdict").rows() == [
        ("paper", "L", True, False, "unclear"),
        ("paper", "R", True, False, "unclear"),
        ("share", "L", False, True, "padding"),
    ]
    counts = flip_counts({"m": verdicts}).filter(pan_type="all")
    assert counts.select("rule", "pans", "padding", "unclear", "uninformative").rows() == [
        ("paper", 1, 0, 1, 1),
        ("share", 1, 1, 0, 0),
    ]


def test_the_flip_figure_has_a_panel_per_rule(verdicts, tmp_path):
    from test_figures import assert_renders

    from pan.figures.beyond import flip_chart

    chart = flip_chart(verdicts, "planted", 0.5)
    titles = [panel["title"] for panel in chart.to_dict()["hconcat"]]
    assert titles == ["paper rule: 10 PANs, 12 PAN borders", "share rule: 10 PANs, 12 PAN borders"]
    assert_renders(chart, tmp_path, "flip_borders")
