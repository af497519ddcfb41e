"""Both PAN rules on the planted networks: the same labels, no interior-line false positive,
and confident bootstrap intervals; the interior null's table by hand."""

from __future__ import annotations

import shutil

import beyond_net
import numpy as np
import polars as pl
import pytest
from conftest import write_images
from tiny_net import EXPECTED_TYPES, build

import pan
from pan.capture.models import eval_transform
from pan.core.interior import interior_ks, interior_lines, interior_null
from pan.core.ks import SortedSamples
from pan.core.labelling import label_pans, rule_view
from pan.core.scoring import read_ks_tables, score_dump
from pan.workflow.run import run_workflow

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
TINY_TRANSFORM = eval_transform(32, 32, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


def types(labels: pl.DataFrame, rule: str) -> dict:
    view = rule_view(labels, rule)
    return {(r["layer"], r["neuron"]): r["pan_type"] for r in view.iter_rows(named=True)}


@pytest.fixture(scope="module")
def tiny_scored(tmp_path_factory, tiny_images):
    """The tiny net's dump, rescored with the bootstrap and the interior null."""
    out = tmp_path_factory.mktemp("tiny")
    pan.find_pans(build(), tiny_images, device="cpu", transform=TINY_TRANSFORM, out_dir=out)
    score_dump(out / "activations", out / "ks_full", replicates=30, interior_out=out / "interior.parquet")
    return label_pans(read_ks_tables(out / "ks_full")), pl.read_parquet(out / "interior.parquet")


@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    write_images(folder, 16)
    return folder


def test_planted_networks_keep_exactly_their_labels_under_both_rules(tiny_scored):
    labels, _ = tiny_scored
    assert types(labels, "paper") == EXPECTED_TYPES and types(labels, "share") == EXPECTED_TYPES
    beyond = pan.find_pans(beyond_net.build(), beyond_net.batch(), device="cpu")
    expected = {(r["layer"], r["neuron"]): "" for r in beyond.iter_rows(named=True)}
    expected |= beyond_net.EXPECTED_TYPES
    assert types(beyond, "paper") == expected and types(beyond, "share") == expected


def test_planted_labels_are_confident_and_no_interior_line_passes(tiny_scored):
    labels, interior = tiny_scored
    for rule in ("paper", "share"):
        view = rule_view(labels, rule)
        assert view["confidence"].to_list() == ["confident"] * view.height, rule
        pans = view.filter("is_pan")
        assert (pans["strength_lo"] > 0.5).all() and (pans["strength"] > 0.5).all()
    assert set(interior["layer"]) == {"conv1", "valid", "asymmetric.1"}
    table = interior_null({"tiny": interior}, {"tiny": labels})
    assert table["fp_neurons"].sum() == 0 and set(table["rule"]) == {"paper", "share"}
    assert table.filter(rule="paper")["border_pans"].sum() == sum(1 for t in EXPECTED_TYPES.values() if t)


def test_an_interior_line_is_scored_against_the_rest_of_the_centre():
    from scipy import stats

    rng = np.random.default_rng(2)
    maps = rng.normal(size=(5, 2, 8, 9)).astype(np.float32)
    maps[:, 1, 4, 1:-1] += 3  # neuron 1 fires on the middle row: a "PAN" there by content
    centre = maps[:, :, 1:-1, 1:-1]
    row, column = interior_ks(maps, SortedSamples(centre.transpose(1, 0, 2, 3).reshape(2, -1)), 0.1)
    lines = interior_lines(maps)
    for neuron in range(2):
        keep = np.ones((6, 7), bool)
        keep[3, :] = False  # row 4 of the map is row 3 of the centre
        rest = centre[:, neuron][:, keep].ravel()
        expected = stats.ks_2samp(lines["row"][neuron], rest).statistic
        assert row.ks[neuron] == pytest.approx(expected, abs=1e-12)
        assert row.n_border == 5 * 7 and row.n_centre == 5 * 6 * 7 - 5 * 7
    assert row.ks[1] > 0.8 and row.ks_plus_q[1] > 0.5 and column.ks[1] < 0.5


@pytest.mark.workflow
def test_the_rule_comparison_target_writes_the_null_table_and_figures(tiny_run, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    run_workflow(workdir, "rule_comparison")
    table = pl.read_csv(workdir / "results/tables/interior_null.csv")
    assert set(table["rule"]) == {"paper", "share"} and {30, 32} <= set(table["height"])
    assert table["fp_neurons"].sum() == 0 and (table["fp_high_pct"] > 0).all()
    for figure in ("share_kept", "interior_null"):
        assert (workdir / f"results/figures/rules/{figure}.png").stat().st_size > 0
