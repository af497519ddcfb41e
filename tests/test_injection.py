"""pan.beyond.attack: the zero-line attack on hand-set nets, and the analyses beyond the paper
through the real workflow (origin, reach, lines), with what a theta change reruns."""

from __future__ import annotations

import shutil
from pathlib import Path

import beyond_net
import polars as pl
import pytest
import torch
import yaml
from conftest import tiny_config, write_images
from test_origin import net_labels

from pan.beyond.attack import copy_source, inject, input_line, plan_lines, reached
from pan.beyond.attack_summary import DIFFERENCE_COLUMNS, SUMMARY_COLUMNS
from pan.beyond.firing import centre_groups, firing_statistics
from pan.beyond.firing_pans import pan_firing
from pan.workflow.run import run_workflow, scheduled_jobs


def test_lines_land_where_documented():
    assert [input_line(p, 224) for p in (0.25, 0.5, 0.75)] == [56, 112, 168]
    assert copy_source(112, 224) == 140 and copy_source(30, 32) == 2
    assert reached(56, 224, 112) == [27, 28, 29] and reached(0, 32, 32) == [0, 1]
    assert reached(168, 224, 7) == [4, 5, 6] and reached(31, 32, 32) == [30, 31]
    lines = plan_lines([0.5], ["zero", "copied"], 32, 16)
    assert [(line.orientation, line.kind, line.index, line.source) for line in lines] == [
        ("rows", "zero", 16, -1),
        ("rows", "copied", 16, 20),
        ("columns", "zero", 8, -1),
        ("columns", "copied", 8, 10),
    ]


def test_each_kind_of_line_writes_what_it_says():
    batch = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    black = torch.tensor([-1.0, -2.0, -3.0])
    zero, black_line, copied = plan_lines([0.5], ["zero", "black", "copied"], 8, 8)[3:]
    assert zero.orientation == "columns"
    out = inject(batch, zero, black)
    assert (out[:, :, :, 4] == 0).all() and torch.equal(out[:, :, :, 3], batch[:, :, :, 3])
    assert torch.equal(inject(batch, black_line, black)[0, :, 0, 4], black)
    assert torch.equal(inject(batch, copied, black)[:, :, :, 4], batch[:, :, :, 5])
    assert torch.equal(batch, torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8))


def test_a_planted_l_pan_fires_on_a_zero_column_and_not_on_a_copied_one():
    net, images = beyond_net.build().eval(), beyond_net.batch()
    labels = net_labels(net, images)
    lines = plan_lines([0.25, 0.5, 0.75], ["zero", "black", "copied"], 32, 32)
    firing, predictions = firing_statistics(
        net, [images[:8], images[8:]], lines, torch.zeros(3), [str(i) for i in range(16)]
    )
    fired = pan_firing(pl.from_arrow(firing), labels, 0.5)
    layer, neuron = beyond_net.L_PAN
    l_pan = fired.filter((pl.col("layer") == layer) & (pl.col("neuron") == neuron))
    assert set(l_pan["orientation"]) == {"columns"}  # an L PAN is judged on columns only
    by_kind = {kind: rows["fires"].to_list() for (kind,), rows in l_pan.group_by("kind")}
    assert by_kind == {"zero": [True] * 3, "black": [True] * 3, "copied": [False] * 3}
    assert predictions.height == len(lines) * 16 and set(predictions["variant"]) == {"original"}


@pytest.fixture(scope="module")
def beyond_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("beyond_run")
    shutil.copy(Path(__file__).parent / "beyond_net.py", workdir / "beyond_net.py")
    write_images(workdir / "images", 20)
    config = tiny_config(
        eval_images={"source": "folder", "path": "images", "count": 8, "seed": 1},
        injection={"count": 8},
    )
    config["models"]["tiny"]["builder"] = "beyond_net.py:build"
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    run_workflow(workdir, "beyond_paper")
    return workdir


@pytest.mark.workflow
def test_the_workflow_labels_origin_reach_and_lines(beyond_run):
    labels = pl.read_parquet(beyond_run / "results/pans/tiny.parquet").filter("is_pan")
    assert {
        (r["layer"], r["neuron"]): r["pan_type"] for r in labels.iter_rows(named=True)
    } == beyond_net.EXPECTED_TYPES
    origin = pl.read_csv(beyond_run / "results/tables/pan_origin.csv").filter(pl.col("pan_type") == "all")
    assert origin.select("rule", "pans", "nascent", "downstream", "mixed", "confident").rows() == [
        (rule, 3, 2, 1, 0, 3) for rule in ("paper", "share")
    ]
    flip = pl.read_csv(beyond_run / "results/tables/flip_control.csv").filter(pl.col("pan_type") == "all")
    assert flip.select("rule", "pans", "padding", "content", "unclear").rows() == [
        (rule, 3, 3, 0, 0) for rule in ("paper", "share")
    ]
    reach = pl.read_csv(beyond_run / "results/tables/reach.csv")
    assert reach.filter(pl.col("rule") == "share")["distance"].to_list() == [0, 1, 2, 3]
    reach = reach.filter(pl.col("rule") == "paper")
    assert reach.select("distance", "padding_aware", "not_pan_at_0").rows() == [
        (0, 3, 0),
        (1, 1, 1),
        (2, 0, 0),
        (3, 0, 0),
    ]
    summary = pl.read_csv(beyond_run / "results/tables/injection_summary.csv")
    assert summary.columns == list(SUMMARY_COLUMNS)
    columns = summary.filter((pl.col("orientation") == "columns") & (pl.col("variant") == "original"))
    assert dict(columns.select("kind", "pans_firing_fraction").rows()) == {
        "zero": 1.0,
        "black": 1.0,
        "copied": 0.0,
    }
    assert (summary["top1_change_rate_low"] <= summary["top1_change_rate"]).all()
    assert (summary["top1_change_rate"] <= summary["top1_change_rate_high"]).all()
    differences = pl.read_csv(beyond_run / "results/tables/injection_differences.csv")
    assert differences.columns == list(DIFFERENCE_COLUMNS) and set(differences["images"]) == {8}
    assert {"kind - copied", "variant - original"} == set(differences["comparison"])
    table = pl.read_csv(beyond_run / "results/tables/injection_tiny.csv")
    assert table.height == 8 * 18 * 3 and set(table["variant"]) == {"original", "pan_reflect", "rand_reflect"}
    for figure in ("reach_depth", "injection_map", "origin_2x2", "flip_borders"):
        assert (beyond_run / f"results/figures/tiny/{figure}.png").stat().st_size > 0


@pytest.mark.workflow
def test_theta_reruns_labels_and_tables_never_label_free_passes(beyond_run):
    unchanged = run_workflow(beyond_run, "-n", "beyond_paper")
    assert "Nothing to be done" in unchanged.stdout + unchanged.stderr
    rerun = run_workflow(beyond_run, "-n", "beyond_paper", "--config", "theta=0.4")
    jobs = scheduled_jobs(rerun.stdout + rerun.stderr)
    assert {"activations", "ks_layer", "reach_stats", "injection_firing"}.isdisjoint(jobs)
    assert {"label_pans", "origin", "pan_origin", "flip_control", "reach_table", "injection_summary"} <= set(
        jobs
    )
    # label-dependent forward passes (origin 2x2 and flip control of the PANs, PAN-reflect /
    # RAND-reflect lines, the figure's PAN) may rerun
    assert set(jobs) <= {
        "label_pans",
        "origin",
        "pan_origin",
        "origin_figure",
        "flip_control",
        "flip_table",
        "flip_figure",
        "reach_table",
        "reach_figure",
        "injection_variants",
        "injection_table",
        "injection_summary",
        "injection_figure",
        "beyond_paper",
    }


def test_rows_that_pass_without_any_line_do_not_count_as_firing():
    net, images = beyond_net.build().eval(), beyond_net.batch()
    labels = net_labels(net, images)
    lines = plan_lines([0.0], ["copied"], 32, 32)  # rows 0 and 1 count: row 0 is the T PAN's border
    firing, _ = firing_statistics(net, [images], lines, torch.zeros(3), [str(i) for i in range(16)])
    firing = pl.from_arrow(firing)
    assert set(firing["kind"]) == {"copied", "clean"}
    fired = pan_firing(firing, labels, 0.5)
    t_pan = fired.filter((pl.col("layer") == "conv1") & (pl.col("neuron") == 0)).row(0, named=True)
    assert t_pan["fires_clean"] and not t_pan["fires"]


def test_firing_statistics_do_not_depend_on_the_layer_groups():
    """Each layer in a group of its own (every group but the last in passes stopped after it)
    gives the table of one group of every layer, row for row, and the same predictions; so
    does scoring the rows on two threads."""
    net, images = beyond_net.build().eval(), beyond_net.batch()
    lines = plan_lines([0.0, 0.5, 1.0], ["zero", "copied"], 32, 32)
    batches, ids = [images[:8], images[8:]], [str(i) for i in range(16)]
    single = centre_groups(net, images, 16)
    apart = centre_groups(net, images, 16, budget_mb=1e-9)
    assert len(single) == 1 and len(apart) == len(single[0]) > 1
    together, predictions = firing_statistics(net, batches, lines, torch.zeros(3), ids, groups=single)
    grouped, grouped_predictions = firing_statistics(net, batches, lines, torch.zeros(3), ids, groups=apart)
    assert grouped.equals(together) and grouped_predictions.equals(predictions)
    threaded, _ = firing_statistics(net, batches, lines, torch.zeros(3), ids, groups=apart, threads=2)
    assert threaded.equals(together)  # rows scored on two threads: the same table
    assert set(grouped["kind"].to_pylist()) == {"zero", "copied", "clean"}
