"""Intervals of the zero-line attack (pan.beyond.attack_summary) on injection tables built here."""

from __future__ import annotations

import numpy as np
import polars as pl

from pan.beyond.attack_summary import (
    DIFFERENCE_COLUMNS,
    firing_intervals,
    injection_differences,
    rate_intervals,
)


def injection_table(images: int, rates: dict[tuple[str, str], float], seed: int = 0) -> pl.DataFrame:
    """Rows as ``injection_{model}.csv``: 3 positions x 2 orientations per image, kind and
    variant; a line changes the top-1 class with probability ``rates[(variant, kind)]``."""
    rng = np.random.default_rng(seed)
    rows = [
        {
            "sample": i,
            "variant": variant,
            "kind": kind,
            "orientation": orientation,
            "position": position,
            "changed": bool(rng.random() < rate),
            "l1": float(rng.exponential(100 * (1 + rate))),
        }
        for (variant, kind), rate in rates.items()
        for i in range(images)
        for orientation in ("rows", "columns")
        for position in (0.25, 0.5, 0.75)
    ]
    return pl.DataFrame(rows)


RATES = {
    ("original", "zero"): 0.3,
    ("original", "copied"): 0.3,
    ("pan_reflect", "zero"): 0.6,
    ("pan_reflect", "copied"): 0.3,
}


def test_rates_carry_intervals_that_hold_the_rate():
    table = injection_table(200, RATES)
    rates = rate_intervals(table, bootstrap=300)
    assert rates.height == 4 * 3  # rows, columns and all
    for row in rates.iter_rows(named=True):
        assert row["top1_change_rate_low"] <= row["top1_change_rate"] <= row["top1_change_rate_high"]
        assert row["mean_l1_low"] <= row["mean_l1"] <= row["mean_l1_high"]
    pooled = rates.filter((pl.col("orientation") == "all") & (pl.col("kind") == "zero"))
    truth = {"original": 0.3, "pan_reflect": 0.6}
    for row in pooled.iter_rows(named=True):
        assert abs(row["top1_change_rate"] - truth[row["variant"]]) < 0.05
        assert row["top1_change_rate_high"] - row["top1_change_rate_low"] < 0.1


def test_differences_find_a_planted_gap_and_none_where_there_is_none():
    differences = injection_differences({"m": injection_table(200, RATES, seed=1)}, bootstrap=300)
    assert differences.columns == list(DIFFERENCE_COLUMNS)
    pooled = {
        (r["comparison"], r["variant"], r["kind"]): r
        for r in differences.filter(pl.col("orientation") == "all").iter_rows(named=True)
    }
    gap = pooled[("kind - copied", "pan_reflect", "zero")]
    assert gap["difference_low"] > 0.2 and gap["difference_high"] < 0.4 and gap["images"] == 200
    none = pooled[("kind - copied", "original", "zero")]
    assert none["difference_low"] < 0 < none["difference_high"]
    variant = pooled[("variant - original", "pan_reflect", "zero")]
    assert variant["difference_low"] > 0.2
    assert pooled[("variant - original", "pan_reflect", "copied")]["difference_low"] < 0


def test_a_difference_of_identical_sides_is_exactly_zero():
    table = injection_table(30, {("original", "zero"): 0.5, ("original", "copied"): 0.5})
    same = table.filter(pl.col("kind") == "zero")
    table = pl.concat([same, same.with_columns(kind=pl.lit("copied"))])
    row = (
        injection_differences({"m": table}, bootstrap=50)
        .filter(pl.col("orientation") == "all")
        .row(0, named=True)
    )
    assert (row["difference"], row["difference_low"], row["difference_high"]) == (0.0, 0.0, 0.0)


def test_firing_shares_resample_pans():
    fired = pl.DataFrame(
        {
            "layer_index": [0] * 6 + [1] * 6,
            "neuron": [0] * 6 + [1] * 6,
            "kind": ["zero"] * 12,
            "orientation": (["rows"] * 3 + ["columns"] * 3) * 2,
            "fires": [True] * 6 + [False] * 6,
        }
    )
    shares = firing_intervals(fired, bootstrap=200)
    row = shares.filter(pl.col("orientation") == "all").row(0, named=True)
    assert row["pans_firing_low"] == 0.0 and row["pans_firing_high"] == 1.0
    assert set(shares["orientation"]) == {"rows", "columns", "all"}


def test_firing_intervals_do_not_depend_on_the_order_of_the_rows():
    """The PAN bootstrap weighs PANs by position: a shuffled firing table (as a parallel group-by
    hands it over) gives the same intervals."""
    rng = np.random.default_rng(3)
    fired = pl.DataFrame(
        {
            "layer_index": np.repeat(np.arange(10), 12),
            "neuron": np.tile(np.repeat(np.arange(4), 3), 10),
            "kind": "zero",
            "orientation": np.where(np.arange(120) % 2, "rows", "columns"),
            "position": np.tile([0.25, 0.5, 0.75], 40),
            "fires": rng.random(120) < 0.2,
        }
    )
    expected = firing_intervals(fired, bootstrap=200).sort("kind", "orientation")
    assert expected.height == 3 and (expected["pans_firing_high"] > expected["pans_firing_low"]).all()
    for seed in range(5):
        shuffled = fired.sample(fraction=1.0, shuffle=True, seed=seed)
        assert firing_intervals(shuffled, bootstrap=200).sort("kind", "orientation").equals(expected)
