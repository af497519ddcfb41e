"""The schema table of docs/outputs.md lists each file's columns in the order the code writes them."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from conftest import ks_table, runs_from

from pan.beyond.flip import FLIPS, flip_counts, flip_verdicts
from pan.beyond.origin import CONDITIONS, label_origin, origin_counts
from pan.beyond.probe import STRENGTH_SCHEMA
from pan.bias.influence import influence_summary, sample_influence
from pan.core.labelling import RULES, label_pans
from pan.core.tables import table1
from pan.workflow.shape_checks import unscoreable_layers

OUTPUTS = Path(__file__).resolve().parents[1] / "docs/outputs.md"
BORDERS = "TBLR"


def documented_columns(path: str) -> list[str]:
    """The columns docs/outputs.md gives for ``path``: the backticked names of its row's third
    cell, outside parentheses (which explain values), ``x_T..x_R`` spelled out per border."""
    rows = [line for line in OUTPUTS.read_text().splitlines() if line.startswith(f"| `{path}` |")]
    assert len(rows) == 1, f"{path}: {len(rows)} rows in docs/outputs.md"
    cell = rows[0].split(" | ")[2]
    while re.search(r"\([^()]*\)", cell):  # innermost first
        cell = re.sub(r"\([^()]*\)", "", cell)
    columns = []
    for span in re.findall(r"`([^`]*)`", cell):
        for name in (part.strip() for part in span.split(",")):
            ranged = re.fullmatch(r"(\w+)_T\.\.\1_R", name)
            columns += [f"{ranged[1]}_{b}" for b in BORDERS] if ranged else [name]
    return columns


def test_the_parser_spells_out_ranges_and_skips_explanations():
    assert documented_columns("results/pans/{model}.parquet")[:5] == [
        "layer",
        "layer_index",
        "neuron",
        "ks_T",
        "ks_B",
    ]


@pytest.fixture(scope="module")
def labels() -> pl.DataFrame:
    return label_pans(ks_table(0), 0.5)


def influence_tables() -> pl.DataFrame:
    logits = {
        "original": [[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [1.0, 0.0, 2.0], [2.0, 2.5, 0.0]],
        "pan_reflect": [[0.0, 1.0, 3.0], [0.0, 2.1, 1.0], [1.0, 0.0, 2.0], [2.0, 2.4, 0.0]],
        "rand_reflect": [[3.0, 1.1, 0.0], [0.0, 2.0, 1.2], [1.0, 0.3, 2.0], [2.0, 2.5, 0.1]],
    }
    return sample_influence(runs_from(logits, truth=[0, 1, 2, 1]))


def strengths(labels: pl.DataFrame, conditions: tuple[str, ...]) -> pl.DataFrame:
    """Made-up strengths (:data:`pan.beyond.probe.STRENGTH_SCHEMA`) of every PAN of ``labels``
    under either rule, for both rules."""
    pans = labels.filter(pl.col("is_pan") | pl.col("is_pan_share")).select("layer", "layer_index", "neuron")
    rows = [
        {"rule": rule, **pan, "border": b, "condition": c, **dict.fromkeys(STRENGTH_SCHEMA_VALUES, 0.6)}
        for rule in RULES
        for pan in pans.iter_rows(named=True)
        for b in BORDERS
        for c in conditions
    ]
    return pl.DataFrame(rows, schema=STRENGTH_SCHEMA)


STRENGTH_SCHEMA_VALUES = ("strength", "lo", "hi", "change", "change_lo", "change_hi")
STRENGTH_SCHEMA_VALUES += ("mirror_gap", "mirror_gap_lo", "mirror_gap_hi")


def test_origin_and_flip_columns_follow_the_schema_table(labels):
    origin = label_origin(strengths(labels, CONDITIONS), labels, 0.5)
    assert set(origin["rule"]) == set(RULES)
    assert origin.columns == documented_columns("results/origin/{model}.parquet")
    assert list(STRENGTH_SCHEMA) == documented_columns("results/origin/{model}_strengths.parquet")
    assert origin_counts({"m": origin}).columns == documented_columns("results/tables/pan_origin.csv")
    flip = flip_verdicts(strengths(labels, ("original", *FLIPS)), labels, 0.5)
    assert set(flip["rule"]) == set(RULES)
    assert flip.columns == documented_columns("results/flip/{model}.parquet")
    assert flip_counts({"m": flip}).columns == documented_columns("results/tables/flip_control.csv")


def test_sample_influence_columns_follow_the_schema_table():
    table = influence_tables()
    assert table.columns == documented_columns("results/tables/sample_influence_{model}.csv")
    summary = influence_summary({"m": table})
    assert summary.columns == documented_columns("results/tables/sample_influence_summary.csv")


def test_labels_and_table1_and_unscoreable_follow_the_schema_table(labels):
    assert labels.columns == documented_columns("results/pans/{model}.parquet")
    assert table1({"m": labels}).columns == documented_columns("results/tables/table1.csv")
    shapes = {
        "input_size": 8,
        "layers": [{"name": "c", "out_channels": 2, "height": 2, "width": 2, "scoreable": False}],
    }
    unscoreable = unscoreable_layers({"m": shapes})
    assert unscoreable.height == 1
    assert unscoreable.columns == documented_columns("results/tables/unscoreable.csv")
