"""PAN labelling (pan.core.labelling): the theta rule, the 15 types, PAN strength and the theta sweep."""

from __future__ import annotations

import polars as pl
import pytest
from conftest import ks_table

from pan.core.borders import BORDERS
from pan.core.labelling import (
    PAN_TYPES,
    SWEEP_THETAS,
    check_theta,
    label_pan_files,
    label_pans,
    pan_strength,
    read_labels,
    theta_sweep,
)


def ks_rows(stats: dict[tuple[int, str], tuple[float, float, float]], neurons: int = 1) -> pl.DataFrame:
    """A KS table of layer 'conv': ``(neuron, border) -> (KS, KS+, KS-)``, zeros elsewhere."""
    records = [
        {
            "layer": "conv",
            "layer_index": 0,
            "neuron": n,
            "border": b,
            **dict(zip(("ks", "ks_plus", "ks_minus"), stats.get((n, b), (0.0, 0.0, 0.0)), strict=True)),
        }
        for n in range(neurons)
        for b in BORDERS
    ]
    return pl.DataFrame(records).with_columns(pl.col("layer_index", "neuron").cast(pl.Int32))


def test_the_fifteen_types_in_the_papers_order():
    assert PAN_TYPES == (
        "T", "B", "L", "R", "TB", "TL", "TR", "BL", "BR", "LR", "TBL", "TBR", "TLR", "BLR", "TBLR"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("stats", "edge", "pan"),
    [
        ((0.6, 0.6, 0.0), True, True),  # KS and KS+ above theta
        ((0.6, 0.0, 0.6), True, True),  # KS and KS- above theta
        ((0.6, 0.5, 0.5), True, False),  # edge detector: truncated tests at theta do not pass (strict)
        ((0.5, 0.9, 0.9), False, False),  # KS at theta is no edge
        ((float("nan"),) * 3, False, False),  # maps below 3x3
    ],
)
def test_the_theta_rule_is_strict_on_every_statistic(stats, edge, pan):
    labels = label_pans(ks_rows({(0, "L"): stats}), 0.5).row(0, named=True)
    assert (labels["edge_L"], labels["pan_L"], labels["is_pan"]) == (edge, pan, pan)
    assert labels["pan_type"] == ("L" if pan else "") and labels["theta"] == 0.5


def test_every_combination_of_borders_gets_its_type():
    for neuron, kind in enumerate(PAN_TYPES):
        stats = {(neuron, b): (0.9, 0.9, 0.0) for b in kind}
        row = label_pans(ks_rows(stats, neurons=len(PAN_TYPES)), 0.5).row(neuron, named=True)
        assert row["pan_type"] == kind and [row[f"pan_{b}"] for b in BORDERS] == [b in kind for b in BORDERS]


def test_labels_are_one_row_per_neuron_in_depth_order(tmp_path):
    ks = ks_rows({(1, "T"): (0.9, 0.0, 0.8)}, neurons=3)
    ks.write_parquet(tmp_path / "conv.parquet")
    labels = label_pan_files([tmp_path / "conv.parquet"], tmp_path / "pans.parquet", 0.5)
    assert labels.columns == [
        "layer", "layer_index", "neuron",
        *[f"{kind}_{b}" for kind in ("ks", "edge", "pan") for b in BORDERS],
        "is_edge_detector", "is_pan", "pan_type", "theta",
        "strength", "strength_lo", "strength_hi", "confidence", "layer_padding",
    ]  # fmt: skip
    assert labels["neuron"].to_list() == [0, 1, 2] and labels["pan_type"].to_list() == ["", "T", ""]
    assert read_labels(tmp_path / "pans.parquet").equals(labels)


@pytest.mark.parametrize("theta", [0, 1, -0.1, 1.5])
def test_theta_outside_zero_one_is_refused(theta):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        check_theta(theta)
    with pytest.raises(ValueError, match="theta"):
        label_pans(ks_rows({}), theta)


def test_pan_strength_is_a_pan_exactly_above_theta():
    ks = ks_rows(
        {(0, "T"): (0.9, 0.8, 0.0), (1, "B"): (0.95, 0.0, 0.6), (2, "R"): (0.99, 0.1, 0.3)}, neurons=3
    )
    strength = pan_strength(ks).sort("neuron")
    assert strength["strength"].to_list() == pytest.approx([0.8, 0.6, 0.3])
    for theta in (0.2, 0.5, 0.7, 0.85):
        assert label_pans(ks, theta)["is_pan"].to_list() == [s > theta for s in strength["strength"]]


def test_theta_sweep_counts_shrink_with_theta_and_match_the_labels():
    ks = ks_table()
    sweep = theta_sweep(ks)
    for kind in ("PANs", "edge detectors"):
        counts = sweep.filter(pl.col("kind") == kind).sort("theta")["neurons"].to_list()
        assert counts == sorted(counts, reverse=True) and len(counts) == len(SWEEP_THETAS)
    at_half = sweep.filter(pl.col("theta") == 0.5)
    assert at_half.filter(pl.col("kind") == "PANs")["neurons"][0] == label_pans(ks, 0.5)["is_pan"].sum()


def test_duplicate_ks_rows_are_refused_naming_one():
    ks = ks_table()
    with pytest.raises(ValueError, match="on more than one row"):
        label_pans(pl.concat([ks, ks.head(1)]))
