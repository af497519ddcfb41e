"""Sample influence (§4.2) by hand (pan.bias.influence)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from conftest import runs_from

from pan.bias.influence import (
    INFLUENCE_SCHEMA,
    influence_summary,
    sample_influence,
    write_influence_summary,
    write_sample_influence,
)
from pan.bias.logits import LogitWriter

TESTS = Path(__file__).parent


# --- sample influence, by hand ----------------------------------------------------------------

INFLUENCE_RUNS = {
    "original": [[1, 0, 0], [0, 2, 0], [0, 0, 3], [1, 0, 0]],
    # L1 to original: 0, |2-0| + |0-2.5| = 4.5, 0.5, 0.25; argmax 0, 2, 2, 0
    "pan_reflect": [[1, 0, 0], [0, 0, 2.5], [0, 0, 3.5], [1.25, 0, 0]],
    # L1 to original: 3, 0, 1, 7; argmax 1, 1, 2, 1
    "rand_reflect": [[1, 3, 0], [0, 2, 0], [0, 0, 2], [0, 5, 1]],
    "reflect": [[0, 0, 0]] * 4,
}


def test_sample_influence_ranks_by_l1_distance_by_hand():
    table = sample_influence(runs_from(INFLUENCE_RUNS, truth=[0, 2, 2, 1]))
    assert table.columns == list(INFLUENCE_SCHEMA)
    pan = table.filter(variant="pan_reflect")
    assert pan["sample"].to_list() == [1, 2, 3, 0] and pan["rank"].to_list() == [1, 2, 3, 4]
    np.testing.assert_allclose(pan["distance"], [4.5, 0.5, 0.25, 0.0])
    assert pan["pred_original"].to_list() == [1, 2, 0, 0] and pan["pred_variant"].to_list() == [2, 2, 0, 0]
    assert pan["pred_variant_name"].to_list() == ["z", "z", "x", "x"]
    assert pan["disagree"].to_list() == [True, False, False, False]
    assert pan["correct_original"].to_list() == [False, True, False, True]
    assert pan["correct_variant"].to_list() == [True, True, False, True]
    rand = table.filter(variant="rand_reflect")
    assert rand["sample"].to_list() == [3, 0, 2, 1]
    np.testing.assert_allclose(rand["distance"], [7, 3, 1, 0])


def test_influence_summary_by_hand(tmp_path):
    files = {}
    for model, truth in (("labelled", [0, 2, 2, 1]), ("unlabelled", None)):
        runs = runs_from(INFLUENCE_RUNS, truth=truth)
        for run in runs.values():
            object.__setattr__(run, "model", model)
        files[model] = tmp_path / f"sample_influence_{model}.csv"
        sample_influence(runs).write_csv(files[model])
    summary = write_influence_summary(files, tmp_path / "summary.csv")
    assert pl.read_csv(tmp_path / "summary.csv").columns == summary.columns
    labelled, unlabelled = summary.rows(named=True)
    # 4 images: top 10% is ceil(0.4) = 1 image, pan distance 4.5; rand reaches 4.5 once (7).
    assert labelled == {
        "model": "labelled",
        "images": 4,
        "labelled": True,
        "top_fraction": 0.1,
        "top_images": 1,
        "cut_distance": 4.5,
        "disagreements_pan_reflect": 1,
        "disagreements_rand_reflect": 1,
        "rand_reflect_reaching_cut": 1,
        "top_wrong_both": 0,
        "accuracy_original": 0.5,  # predictions 0, 1, 2, 0 against labels 0, 2, 2, 1
        "accuracy_pan_reflect": 0.75,  # 0, 2, 2, 0
        "accuracy_rand_reflect": 0.5,  # 1, 1, 2, 1
    }
    assert not unlabelled["labelled"] and unlabelled["top_wrong_both"] is None
    assert unlabelled["accuracy_original"] is None and unlabelled["rand_reflect_reaching_cut"] == 1
    wider = influence_summary({"m": sample_influence(runs_from(INFLUENCE_RUNS))}, top_fraction=0.5)
    # top 2 under pan (4.5, 0.5): cut 0.5; rand distances 7, 3, 1 reach it
    assert wider.select("top_images", "cut_distance", "rand_reflect_reaching_cut").row(0) == (2, 0.5, 3)


def test_write_sample_influence_reads_logit_files(tmp_path):
    files = []
    for variant, values in INFLUENCE_RUNS.items():
        files.append(tmp_path / f"{variant}.parquet")
        with LogitWriter(files[-1], "m", variant, 3, None) as writer:
            writer.write(
                0, ["a", "b", "c", "d"], [None] * 4, [None] * 4, [None] * 4, np.array(values, np.float32)
            )
    table = write_sample_influence(files, tmp_path / "out.csv")
    assert pl.read_csv(tmp_path / "out.csv", schema=INFLUENCE_SCHEMA).equals(table)
    assert table["correct_original"].null_count() == table.height
