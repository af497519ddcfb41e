"""pan.trust.controls: the reflect and random-init controls and label stability across image draws."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
import torch
import yaml
from conftest import tiny_config, write_images
from PIL import Image
from tiny_net import EXPECTED_TYPES, TinyNet
from torch import nn

from pan.capture.images import ImageSpec
from pan.capture.models import ModelSpec
from pan.core.labelling import PAN_TYPES
from pan.core.scoring import score_dump
from pan.figures.render import save_chart
from pan.figures.trust import controls_depth_chart, stability_chart
from pan.trust.controls import (
    control_model,
    controls_table,
    depth_by_condition,
    dump_run,
    label_run_files,
    reinitialise,
)
from pan.trust.runs import draw_seed, parse_run
from pan.trust.stability import (
    frequency_counts,
    jaccard,
    stability,
    stability_by_rule,
    stability_summary,
    t_interval,
)
from pan.workflow.config import load_settings
from pan.workflow.run import run_workflow, scheduled_jobs
from pan.workflow.sections import ConfigError

TESTS = Path(__file__).resolve().parent
PLANTED = {key for key, kind in EXPECTED_TYPES.items() if kind}
BLIND = {key for key, kind in EXPECTED_TYPES.items() if not kind}


def labels(rows: list[tuple[str, int, bool, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "layer": [r[0] for r in rows],
            "layer_index": [0 if r[0] == "a" else 1 for r in rows],
            "neuron": [r[1] for r in rows],
            "is_pan": [r[2] for r in rows],
            "pan_type": [r[3] for r in rows],
        }
    )


def with_share(frame: pl.DataFrame, pans: set[tuple[str, int]]) -> pl.DataFrame:
    """``frame`` with the share rule's columns: PANs ``pans`` (layer, neuron), all of type T."""
    is_pan = [(r["layer"], r["neuron"]) in pans for r in frame.iter_rows(named=True)]
    return frame.with_columns(
        is_pan_share=pl.Series(is_pan), pan_type_share=pl.Series(["T" if p else "" for p in is_pan])
    )


def test_depth_and_stability_figures_show_both_rules_from_the_same_labels(tmp_path):
    from test_figures import assert_renders

    trained = labels([("a", 0, True, "T"), ("a", 1, True, "B"), ("b", 0, True, "L")])
    reflect = labels([("a", 0, False, ""), ("a", 1, False, ""), ("b", 0, False, "")])
    frames = {"trained": with_share(trained, {("a", 0)}), "reflect": with_share(reflect, set())}
    rows = depth_by_condition(frames)
    assert rows.select("rule", "condition", "layer_index", "pans").rows() == [
        ("paper", "reflect", 0, 0),
        ("paper", "trained", 0, 2),
        ("paper", "reflect", 1, 0),
        ("paper", "trained", 1, 1),
        ("share", "reflect", 0, 0),
        ("share", "trained", 0, 1),
        ("share", "reflect", 1, 0),
        ("share", "trained", 1, 0),
    ]
    assert set(depth_by_condition({"trained": trained})["rule"]) == {"paper"}  # no share columns
    chart = controls_depth_chart(rows, "m")
    assert chart.to_dict()["facet"]["row"]["field"] == "rule"
    assert_renders(chart, tmp_path, "controls_depth")

    draws = [with_share(trained, {("a", 0)}), with_share(trained, {("a", 0), ("b", 0)})]
    table = stability_by_rule(draws, frames["trained"])
    assert table.columns[0] == "rule"
    assert table.filter(rule="paper").drop("rule").equals(stability([trained, trained], trained))
    share = {
        (r["layer"], r["neuron"]): r["pan_frequency"]
        for r in table.filter(rule="share").iter_rows(named=True)
    }
    assert share == {("a", 0): 1.0, ("a", 1): 0.0, ("b", 0): 0.5}
    assert frequency_counts(table).rows() == [
        ("paper", 1.0, True, 3),
        ("share", 0.5, False, 1),
        ("share", 1.0, True, 1),
    ]
    chart = stability_chart(table, "m", 2)
    assert chart.to_dict()["facet"]["column"]["field"] == "rule"
    save_chart(chart, tmp_path / "stability.html", tmp_path / "stability.png")
    with Image.open(tmp_path / "stability.png") as image:
        assert image.width > 600 and image.height > 200  # two panels side by side


def test_runs_and_draw_seeds():
    assert parse_run("controls/reflect") == ("reflect", None)
    assert parse_run("stability/draw12") == ("trained", 12)
    with pytest.raises(ValueError, match="unknown run"):
        parse_run("controls/trained")
    seeds = {draw_seed(0, k) for k in range(5)} | {draw_seed(1, k) for k in range(5)}
    assert len(seeds) == 10 and 0 not in seeds and draw_seed(-3, 0) >= 0
    assert draw_seed(0, 2) == draw_seed(0, 2)


def test_stability_counts_frequency_modal_type_and_main_batch():
    draws = [
        labels([("a", 0, True, "T"), ("a", 1, False, ""), ("b", 0, True, "L")]),
        labels([("a", 0, True, "T"), ("a", 1, True, "B"), ("b", 0, True, "TB")]),
        labels([("a", 0, True, "B"), ("a", 1, False, ""), ("b", 0, True, "TB")]),
        labels([("a", 0, True, "T"), ("a", 1, False, ""), ("b", 0, False, "")]),
    ]
    main = labels([("a", 0, True, "T"), ("a", 1, False, ""), ("b", 0, False, "")])
    table = stability(draws, main)
    assert table.columns == [
        "layer",
        "layer_index",
        "neuron",
        "pan_frequency",
        "modal_type",
        "pan_in_main_batch",
    ]
    assert table.rows() == [
        ("a", 0, 0, 1.0, "T", True),
        ("a", 0, 1, 0.25, "B", False),
        ("b", 1, 0, 0.75, "TB", False),
    ]
    row = stability_summary("m", draws)
    shares = [200 / 3, 100, 200 / 3, 100 / 3]
    mean, low, high = t_interval(shares)
    assert row["pan_pct_mean"] == round(mean, 3) and row["pan_pct_low"] == round(low, 3) < mean < high
    assert round(high - mean, 6) == round(mean - low, 6)
    # t(0.975, 3) = 3.182446
    sd = (sum((s - mean) ** 2 for s in shares) / 3) ** 0.5
    assert row["pan_pct_high"] == pytest.approx(mean + 3.182446 * sd / 2, abs=1e-3)
    sets = [{("a", 0), ("b", 0)}, {("a", 0), ("a", 1), ("b", 0)}, {("a", 0), ("b", 0)}, {("a", 0)}]
    pairs = [jaccard(sets[i], sets[j]) for i in range(4) for j in range(i + 1, 4)]
    assert row["jaccard_mean"] == round(sum(pairs) / 6, 4)
    assert (row["pans_every_draw"], row["pans_any_draw"], row["draws"]) == (1, 3, 4)
    assert jaccard(set(), set()) == 1.0


def test_random_init_of_a_python_model_resets_even_hand_set_weights():
    spec = ModelSpec("tiny", "python", builder=str(TESTS / "tiny_net.py:build"))
    first, note = control_model(spec, "random_init", seed=0)
    again, _ = control_model(spec, "random_init", seed=0)
    other, _ = control_model(spec, "random_init", seed=1)
    planted = TinyNet().conv1.weight
    assert note == "" and not torch.equal(first.model.conv1.weight, planted)
    assert torch.equal(first.model.conv1.weight, again.model.conv1.weight)
    assert not torch.equal(first.model.conv1.weight, other.model.conv1.weight)


class Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return x * self.scale


def test_a_module_without_reset_parameters_makes_random_init_unavailable_not_a_failure(tmp_path):
    net = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), Scaled())
    assert reinitialise(net, 0) == ["1"]
    (tmp_path / "scaled.py").write_text(
        "from torch import nn\nfrom test_controls import Scaled\n"
        "def build():\n    return nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), Scaled())\n"
    )
    write_images(tmp_path / "images", 8)
    spec = ModelSpec(
        "scaled", "python", builder=str(tmp_path / "scaled.py:build"), input_size=32, resize_size=32
    )
    images = ImageSpec("folder", str(tmp_path / "images"), 8, 0)
    record = dump_run(spec, images, tmp_path / "dump", tmp_path / "record.json", condition="random_init")
    assert not record["available"] and "not re-initialisable: modules 1" in record["note"]
    assert json.loads((tmp_path / "record.json").read_text()) == record
    assert score_dump(tmp_path / "dump", tmp_path / "ks") == []  # no layer: nothing to score
    empty = label_run_files(tmp_path / "ks", tmp_path / "labels.parquet", theta=0.5)
    assert empty.is_empty() and "pan_type" in empty.columns
    table = controls_table({("scaled", "random_init"): empty}, {("scaled", "random_init"): record["note"]})
    row = table.row(0, named=True)
    assert (row["neurons"], row["pans"], row["pan_pct"]) == (0, 0, 0.0) and row["note"] == record["note"]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"stability": {"draws": 1}}, "draws"),
        ({"stability": {"draws": 2.5}}, "draws"),
        ({"stability": {"draws": "five"}}, "draws"),
        ({"controls": {"conditions": ["trained", "mirror"]}}, "mirror"),
        ({"controls": {"seeds": 1}}, "did you mean 'seed'"),
    ],
)
def test_bad_controls_and_stability_settings_fail_before_any_job(tiny_workdir, section, message):
    (tiny_workdir / "config.yaml").write_text(yaml.safe_dump(tiny_config(**section)))
    result = run_workflow(tiny_workdir, "-n", "results/tables/stability.csv", check=False)
    assert result.returncode != 0 and message in result.stdout + result.stderr
    assert not (tiny_workdir / "results").exists()


def test_a_folder_with_fewer_images_than_the_batch_fails_for_the_draws_too(tiny_workdir, monkeypatch):
    monkeypatch.chdir(tiny_workdir)  # draws share the source and size of images: one check holds for all
    config = tiny_config(stability={"draws": 3})
    config["images"]["count"] = 30
    with pytest.raises(ConfigError, match="only 20 images but 30"):
        load_settings(config)


@pytest.fixture(scope="module")
def trust_run(tmp_path_factory) -> Path:
    """The tiny net through controls and 3 stability draws."""
    workdir = tmp_path_factory.mktemp("trust_run")
    shutil.copy(TESTS / "tiny_net.py", workdir / "tiny_net.py")
    write_images(workdir / "images", 20)
    (workdir / "config.yaml").write_text(yaml.safe_dump(tiny_config(stability={"draws": 3})))
    run_workflow(workdir, "trust", "results/tables/table2.csv")
    return workdir


@pytest.mark.workflow
def test_planted_pans_survive_training_and_vanish_under_reflect(trust_run):
    table = pl.read_csv(trust_run / "results/tables/controls.csv", schema_overrides={"note": pl.String})
    assert table.columns == [
        "model",
        "condition",
        "rule",
        *PAN_TYPES,
        "pans",
        "edge_detectors",
        "neurons",
        "pan_pct",
        "scoreable_neurons",
        "pan_pct_scoreable",
        "borderline",
        "note",
    ]
    assert table["condition"].to_list() == ["trained"] * 2 + ["reflect"] * 2 + ["random_init"] * 2
    assert table["rule"].to_list() == ["paper", "share"] * 3
    trained = pl.read_csv(trust_run / "results/tables/table2.csv")
    assert table.row(0)[2:-1] == trained.row(0)[1:]
    got = {}
    for condition, path in [("trained", "results/pans"), ("reflect", "results/controls/reflect/pans")]:
        frame = pl.read_parquet(trust_run / path / "tiny.parquet").filter("is_pan")
        got[condition] = set(frame.select("layer", "neuron").iter_rows())
    assert got["trained"] == PLANTED
    assert not got["reflect"]  # asymmetric.1's ZeroPad2d is reflected too (pan.capture.padding)
    assert all(n > 0 for n in table["neurons"]) and table["note"].fill_null("").to_list() == [""] * 6
    assert table.filter(condition="reflect")["pans"].to_list() == [0, 0]  # under both rules


@pytest.mark.workflow
def test_planted_pans_are_pans_in_every_draw_and_blind_neurons_in_none(trust_run):
    both = pl.read_parquet(trust_run / "results/stability/tiny.parquet")
    assert both["rule"].unique(maintain_order=True).to_list() == ["paper", "share"]
    table = both.filter(rule="paper")
    assert table.drop("rule").equals(both.filter(rule="share").drop("rule"))  # the planted net: same labels
    frequency = {(r["layer"], r["neuron"]): r["pan_frequency"] for r in table.iter_rows(named=True)}
    assert {k for k, f in frequency.items() if f == 1.0} == PLANTED
    assert {k for k, f in frequency.items() if f == 0.0} == BLIND
    assert table.filter("pan_in_main_batch").height == len(PLANTED)
    modal = {(r["layer"], r["neuron"]): r["modal_type"] for r in table.iter_rows(named=True)}
    assert modal == EXPECTED_TYPES
    summaries = pl.read_csv(trust_run / "results/tables/stability.csv")
    assert summaries["rule"].to_list() == ["paper", "share"]
    for summary in summaries.iter_rows(named=True):
        assert summary["draws"] == 3 and summary["jaccard_mean"] == 1.0
        assert summary["pans_every_draw"] == summary["pans_any_draw"] == len(PLANTED)
    assert not list((trust_run / "results/stability").glob("draw*/activations"))  # scored in memory, no dump
    for figure in ("controls_depth", "stability_histogram"):
        assert (trust_run / f"results/figures/tiny/{figure}.png").stat().st_size > 0


@pytest.mark.workflow
def test_a_theta_change_reruns_labels_and_tables_of_every_run_and_no_dump_or_ks(trust_run):
    unchanged = run_workflow(trust_run, "-n", "trust")
    assert "Nothing to be done" in unchanged.stdout + unchanged.stderr
    rerun = run_workflow(trust_run, "-n", "trust", "--config", "theta=0.4")
    assert scheduled_jobs(rerun.stdout + rerun.stderr) == {
        "label_pans": 6,  # the main run, reflect, random_init and 3 draws
        "controls_table": 1,
        "stability": 1,
        "stability_table": 1,
        "controls_depth": 1,
        "stability_histogram": 1,
        "trust": 1,
    }


def test_stability_from_a_folder_of_exactly_count_images_is_refused_before_any_job(tmp_path):
    """Every draw would hold the same 16 images: Jaccard 1.0 with a zero-width interval."""
    from pan.workflow.run import run_workflow

    write_images(tmp_path / "images", 16)
    shutil.copy(TESTS / "tiny_net.py", tmp_path)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tiny_config()))
    refused = run_workflow(tmp_path, "results/tables/stability.csv", "-n", check=False)
    assert refused.returncode != 0
    assert "every draw would hold the same images" in refused.stdout + refused.stderr
    assert run_workflow(tmp_path, "results/tables/table2.csv", "-n").returncode == 0
