"""pan.origin: the 2x2 of own x upstream padding on the hand-set nets of tests/origin_net.py and
tests/beyond_net.py, with bootstrap intervals."""

from __future__ import annotations

import beyond_net
import numpy as np
import origin_net
import polars as pl
import pytest
import torch

from pan.beyond.origin import (
    CONDITIONS,
    ORIGIN_COLUMNS,
    border_origin,
    label_origin,
    origin_counts,
    origin_strengths,
)
from pan.beyond.probe import STRENGTH_COLUMNS, border_strengths, pan_channels, plausible, strength_table
from pan.capture.inference import layer_outputs
from pan.capture.layers import analysed_layers
from pan.core.labelling import RULES, label_pans
from pan.core.scoring import score_maps


def net_labels(net, images) -> pl.DataFrame:
    tables = [
        pl.from_arrow(
            score_maps(
                layer_outputs(net, layer, iter([images]), torch.device("cpu")).numpy(),
                layer.name,
                layer.index,
            )
        )
        for layer in analysed_layers(net)
    ]
    return label_pans(pl.concat(tables))


def identity(tensor):
    return tensor


@pytest.fixture(scope="module")
def planted():
    net, images = origin_net.build().eval(), origin_net.batch()
    labels = net_labels(net, images)
    strengths = origin_strengths(net, list(images), identity, labels, 8, "cpu", replicates=40, seed=0)
    return net, images, labels, strengths


def test_the_planted_net_has_the_pans_it_documents_under_both_rules(planted):
    _, _, labels, _ = planted
    for suffix in ("", "_share"):
        pans = labels.filter(f"is_pan{suffix}").iter_rows(named=True)
        assert {(r["layer"], r["neuron"]): r[f"pan_type{suffix}"] for r in pans} == origin_net.EXPECTED_TYPES


@pytest.mark.parametrize("rule", RULES)
def test_every_cell_of_the_2x2_is_recovered_with_confidence_under_both_rules(planted, rule):
    _, _, labels, strengths = planted
    origin = label_origin(strengths, labels, theta=0.5)
    assert origin["rule"].unique(maintain_order=True).to_list() == list(RULES)  # paper first
    origin = origin.filter(pl.col("rule") == rule)
    per_pan = origin.unique(["layer", "neuron"])
    got = {(r["layer"], r["neuron"]): r["origin"] for r in per_pan.iter_rows(named=True)}
    assert got == origin_net.EXPECTED_ORIGIN
    assert per_pan["confident"].all()
    mixed = origin.filter((pl.col("layer") == "c2") & (pl.col("neuron") == 5))
    assert dict(mixed.select("border", "border_origin").rows()) == {"T": "nascent", "L": "downstream"}
    assert mixed["border_confident"].all()  # the borders disagree beyond their intervals
    counts = origin_counts({"m": origin}).filter(rule=rule, pan_type="all")
    assert counts.select("pans", "nascent", "needs_both", "no_padding", "mixed").row(0) == (10, 4, 1, 2, 1)


@pytest.mark.parametrize("rule", RULES)
def test_strengths_carry_intervals_and_paired_changes(planted, rule):
    _, _, _, strengths = planted
    assert tuple(strengths.columns) == STRENGTH_COLUMNS
    strengths = strengths.filter(pl.col("rule") == rule)
    assert set(strengths["condition"]) == set(CONDITIONS)
    assert (strengths["lo"] <= strengths["strength"] + 1e-12).all()
    assert (strengths["strength"] <= strengths["hi"] + 1e-12).all()
    original = strengths.filter(pl.col("condition") == "original")
    assert (original["change"] == 0).all() and (original["change_hi"] == 0).all()
    # the needs-both neuron: each padding alone takes part of the strength, both switch it off
    row = strengths.filter((pl.col("layer") == "c2") & (pl.col("neuron") == 2) & (pl.col("border") == "T"))
    cell = {r["condition"]: r for r in row.iter_rows(named=True)}
    assert cell["original"]["lo"] > 0.5
    for condition in ("own_reflect", "up_reflect"):
        assert 0.15 < cell[condition]["strength"] < 0.5 and cell[condition]["hi"] < 0.5
        assert cell[condition]["change_hi"] < -0.15
    assert cell["all_reflect"]["strength"] < 0.1


def test_a_nascent_pan_of_the_first_layer_is_not_changed_by_upstream_padding(planted):
    _, _, _, strengths = planted
    row = strengths.filter((pl.col("layer") == "c1") & (pl.col("neuron") == 1) & (pl.col("border") == "T"))
    for rule in RULES:
        cell = {r["condition"]: r for r in row.filter(pl.col("rule") == rule).iter_rows(named=True)}
        assert cell["up_reflect"]["strength"] == cell["original"]["strength"] == 1.0
        assert cell["own_reflect"]["hi"] < 0.2


def test_the_model_is_left_unchanged(planted):
    net, images, _, _ = planted
    assert torch.equal(net(images), origin_net.build().eval()(images))
    assert all(type(layer.module) is torch.nn.Conv2d for layer in analysed_layers(net))


def test_beyond_nets_nascent_and_downstream_pans_keep_their_origin():
    net, images = beyond_net.build().eval(), beyond_net.batch()
    labels = net_labels(net, images)
    strengths = origin_strengths(net, list(images), identity, labels, 8, "cpu", replicates=20)
    origin = label_origin(strengths, labels, theta=0.5)
    for rule in RULES:
        per_pan = origin.filter(pl.col("rule") == rule).unique(["layer", "neuron"])
        assert {(r["layer"], r["neuron"]): r["origin"] for r in per_pan.iter_rows(named=True)} == {
            ("conv1", 0): "nascent",
            ("conv1", 1): "nascent",
            ("conv2", 0): "downstream",
        }


def test_border_categories_and_plausible_decisions():
    assert border_origin(True, False, False) == "nascent"
    assert border_origin(False, True, False) == "downstream"
    assert border_origin(True, True, False) == "either"
    assert border_origin(False, False, False) == "needs_both"
    assert border_origin(True, True, True) == "no_padding"
    assert plausible(0.7, 0.6, 0.8, 0.5) == {True}
    assert plausible(0.3, 0.2, 0.4, 0.5) == {False}
    assert plausible(0.52, 0.45, 0.6, 0.5) == {True, False}


def _strengths(
    values: dict[tuple[str, str], tuple[float, float, float]], rule: str = "paper"
) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "rule": rule,
                "layer": "a",
                "layer_index": 0,
                "neuron": 0,
                "border": border,
                "condition": condition,
                "strength": s,
                "lo": lo,
                "hi": hi,
                "change": 0.0,
                "change_lo": 0.0,
                "change_hi": 0.0,
            }
            for (border, condition), (s, lo, hi) in values.items()
        ]
    )


LABELS = pl.DataFrame(
    {"layer": ["a"], "layer_index": [0], "neuron": [0], "pan_type": ["TB"], "is_pan": [True]}
)


def test_borders_that_differ_only_within_their_intervals_are_not_mixed():
    """T is nascent for sure; B's own-reflect strength sits at theta (its interval crosses it),
    so B may be nascent too: the PAN is nascent, not mixed, and not confident."""
    values = {(b, "original"): (0.9, 0.85, 0.95) for b in "TB"}
    values |= {(b, "up_reflect"): (0.9, 0.85, 0.95) for b in "TB"}
    values |= {(b, "all_reflect"): (0.1, 0.05, 0.15) for b in "TB"}
    values |= {("T", "own_reflect"): (0.1, 0.05, 0.15), ("B", "own_reflect"): (0.52, 0.46, 0.58)}
    origin = label_origin(_strengths(values), LABELS, 0.5)
    assert dict(origin.select("border", "border_origin").rows()) == {"T": "nascent", "B": "either"}
    assert set(origin["origin"]) == {"nascent"} and not origin["confident"].any()
    values[("B", "own_reflect")] = (0.7, 0.62, 0.78)  # now beyond its interval: mixed
    origin = label_origin(_strengths(values), LABELS, 0.5)
    assert set(origin["origin"]) == {"mixed"} and origin["confident"].all()
    counts = origin_counts({"m": origin})
    assert counts.columns == list(ORIGIN_COLUMNS)
    assert counts.filter(pl.col("pan_type") == "all").select("pans", "mixed", "confident").row(0) == (1, 1, 1)


def test_each_rule_labels_its_own_pans_from_the_probe_of_their_union():
    """Neuron 0 is a TB PAN under the paper rule only, neuron 1 a T PAN under the share rule only:
    both are probed, and each rule labels its own PAN with its own strengths."""
    labels = pl.DataFrame(
        {
            "layer": ["a", "a", "a"],
            "layer_index": [0, 0, 0],
            "neuron": [0, 1, 2],
            "is_pan": [True, False, False],
            "pan_type": ["TB", "", ""],
            "is_pan_share": [False, True, False],
            "pan_type_share": ["", "T", ""],
        }
    )
    assert pan_channels(labels) == {"a": (0, [0, 1])}
    nascent = {("original",): (0.9, 0.85, 0.95), ("up_reflect",): (0.9, 0.85, 0.95)}
    nascent |= {("own_reflect",): (0.1, 0.05, 0.15), ("all_reflect",): (0.1, 0.05, 0.15)}
    downstream = nascent | {("own_reflect",): (0.9, 0.85, 0.95), ("up_reflect",): (0.1, 0.05, 0.15)}
    frames = []
    for rule, cells in (("paper", nascent), ("share", downstream)):
        for neuron in (0, 1):
            values = {(b, c): v for b in "TBLR" for (c,), v in cells.items()}
            frames.append(_strengths(values, rule).with_columns(neuron=pl.lit(neuron)))
    origin = label_origin(pl.concat(frames), labels, 0.5)
    assert origin.select("rule", "neuron", "pan_type", "border", "origin").rows() == [
        ("paper", 0, "TB", "T", "nascent"),
        ("paper", 0, "TB", "B", "nascent"),
        ("share", 1, "T", "T", "downstream"),
    ]
    counts = origin_counts({"m": origin}).filter(pan_type="all")
    assert counts.select("rule", "pans", "nascent", "downstream").rows() == [
        ("paper", 1, 1, 0),
        ("share", 1, 0, 1),
    ]
    # a rule without PANs still gets its row (0 PANs), and labels without the share rule's
    # columns give the paper rule only
    paper_only = label_origin(pl.concat(frames), labels.drop("is_pan_share", "pan_type_share"), 0.5)
    assert set(paper_only["rule"]) == {"paper"}
    assert origin_counts({"m": paper_only}).filter(pan_type="all").select("rule", "pans").rows() == [
        ("paper", 1),
        ("share", 0),
    ]


def test_the_origin_figure_has_a_panel_per_rule(planted, tmp_path):
    from test_figures import assert_renders

    from pan.figures.beyond import origin_chart

    _, _, labels, strengths = planted
    origin = label_origin(strengths, labels, theta=0.5)
    chart = origin_chart(origin, "planted", 0.5)
    titles = [panel["title"] for panel in chart.to_dict()["hconcat"]]
    assert titles == ["paper rule: 10 PANs, 12 PAN borders", "share rule: 10 PANs, 12 PAN borders"]
    assert_renders(chart, tmp_path, "origin_2x2")
    one_rule = origin_chart(origin.filter(rule="paper"), "planted", 0.5).to_dict()["hconcat"]
    assert one_rule[1]["title"] == "share rule: 0 PANs, 0 PAN borders" and "mark" in one_rule[1]


def test_interval_replicates_equal_scoring_the_resampled_images():
    """strength_table weights each image by its count in a draw (as the KS job's bootstrap);
    its intervals equal those of scoring physically resampled maps, draw by draw."""
    rng = np.random.default_rng(3)
    maps = rng.normal(size=(16, 3, 9, 9)).astype(np.float32)
    maps[:, 0, 0, :] += 1.5  # a top-border response
    maps[:, 2] = np.round(maps[:, 2])  # ties
    shifted = maps + np.float32(0.25) * (np.arange(9) == 8)  # a second condition
    table = strength_table("l", 0, [0, 1, 2], {"a": maps, "b": shifted}, 30, 7, "a", q=0.05)
    draws = np.random.default_rng(7).integers(0, 16, size=(30, 16))
    for condition, values in (("a", maps), ("b", shifted)):
        boot = np.stack([border_strengths(values[d], 0.05) for d in draws], axis=1)
        for r, rule in enumerate(RULES):
            rows = table.filter(rule=rule, condition=condition)
            lo, hi = np.quantile(boot[r], (0.025, 0.975), axis=0)
            np.testing.assert_allclose(rows["lo"].to_numpy(), lo.ravel(), atol=1e-12)
            np.testing.assert_allclose(rows["hi"].to_numpy(), hi.ravel(), atol=1e-12)
