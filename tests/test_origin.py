"""pan.origin: the 2x2 of own x upstream padding on the hand-set nets of tests/origin_net.py and
tests/beyond_net.py, with bootstrap intervals."""

from __future__ import annotations

import beyond_net
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
from pan.beyond.probe import STRENGTH_COLUMNS, plausible
from pan.capture.inference import layer_outputs
from pan.capture.layers import analysed_layers
from pan.core.labelling import label_pans
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


def test_the_planted_net_has_the_pans_it_documents(planted):
    _, _, labels, _ = planted
    found = {(r["layer"], r["neuron"]): r["pan_type"] for r in labels.filter("is_pan").iter_rows(named=True)}
    assert found == origin_net.EXPECTED_TYPES


def test_every_cell_of_the_2x2_is_recovered_with_confidence(planted):
    _, _, labels, strengths = planted
    origin = label_origin(strengths, labels, theta=0.5)
    per_pan = origin.unique(["layer", "neuron"])
    got = {(r["layer"], r["neuron"]): r["origin"] for r in per_pan.iter_rows(named=True)}
    assert got == origin_net.EXPECTED_ORIGIN
    assert per_pan["confident"].all()
    mixed = origin.filter((pl.col("layer") == "c2") & (pl.col("neuron") == 5))
    assert dict(mixed.select("border", "border_origin").rows()) == {"T": "nascent", "L": "downstream"}
    assert mixed["border_confident"].all()  # the borders disagree beyond their intervals


def test_strengths_carry_intervals_and_paired_changes(planted):
    _, _, _, strengths = planted
    assert tuple(strengths.columns) == STRENGTH_COLUMNS
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
    cell = {r["condition"]: r for r in row.iter_rows(named=True)}
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
    origin = label_origin(strengths, labels, theta=0.5).unique(["layer", "neuron"])
    assert {(r["layer"], r["neuron"]): r["origin"] for r in origin.iter_rows(named=True)} == {
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


def _strengths(values: dict[tuple[str, str], tuple[float, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
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
