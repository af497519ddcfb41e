"""The real workflow, end to end, on the tiny hand-set CNN of tests/tiny_net.py."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import tiny_config
from tiny_net import EDGE_DETECTORS, EXPECTED_TYPES

from pan.core.labelling import PAN_TYPES
from pan.workflow.run import run_workflow, scheduled_jobs, workflow_command

pytestmark = pytest.mark.workflow


def test_every_planted_neuron_gets_its_expected_label(tiny_run):
    labels = pl.read_parquet(tiny_run / "results/pans/tiny.parquet")
    got = {(row["layer"], row["neuron"]): row["pan_type"] for row in labels.iter_rows(named=True)}
    assert got == EXPECTED_TYPES  # also: the 1x1 conv 'mix' is not analysed
    edge = {
        (row["layer"], row["neuron"])
        for row in labels.filter(pl.col("is_edge_detector")).iter_rows(named=True)
    }
    assert edge == EDGE_DETECTORS
    ks = pl.read_parquet(tiny_run / "results/ks/tiny/conv1.parquet")
    edge_only = ks.filter((pl.col("neuron") == 9) & (pl.col("border") == "T")).row(0, named=True)
    assert edge_only["ks"] > 0.9 and edge_only["ks_plus"] < 0.1 and edge_only["ks_minus"] == 0.0
    assert edge_only["n_border"] == 16 * 32 and edge_only["n_centre"] == 16 * 30 * 30
    assert "img/s" in (tiny_run / "results/logs/activations/tiny.log").read_text()  # progress in the log


def test_tables_count_the_planted_types(tiny_run):
    table2 = pl.read_csv(tiny_run / "results/tables/table2.csv")
    assert table2.columns == [
        "model", "rule", *PAN_TYPES, "pans", "edge_detectors", "neurons", "pan_pct",
        "scoreable_neurons", "pan_pct_scoreable", "borderline",
    ]  # fmt: skip
    assert table2["rule"].to_list() == ["paper", "share"]
    expected = {t: sum(kind == t for kind in EXPECTED_TYPES.values()) for t in PAN_TYPES}
    for row in table2.iter_rows(named=True):  # both rules find exactly the planted PANs
        assert {t: row[t] for t in PAN_TYPES} == expected
        assert row["pans"] == 10 and row["neurons"] == 17 and row["pan_pct"] == round(1000 / 17, 2)
        assert row["borderline"] == 0  # every label's bootstrap interval lies on its side of theta
    table1 = pl.read_csv(tiny_run / "results/tables/table1.csv")
    for rule in ("paper", "share"):
        columns = ("layer", "neurons", "pans", "pan_pct", "edge_detectors")
        assert table1.filter(rule=rule).select(columns).rows() == [
            ("conv1", 12, 8, 66, 9),
            ("valid", 2, 0, 0, 0),
            ("asymmetric.1", 3, 2, 66, 2),
        ]


def test_changing_theta_reruns_only_labelling_and_tables(tiny_run):
    unchanged = run_workflow(tiny_run, "-n", "results/tables/table2.csv")
    assert "Nothing to be done" in unchanged.stdout + unchanged.stderr
    rerun = run_workflow(tiny_run, "-n", "results/tables/table2.csv", "--config", "theta=0.4")
    assert scheduled_jobs(rerun.stdout + rerun.stderr) == {"label_pans": 1, "table2": 1}


def test_two_runs_with_the_same_seed_give_identical_tables(tiny_run, tiny_workdir):
    run_workflow(tiny_workdir, "results/tables/table1.csv", "results/tables/table2.csv")
    for table in ("table1.csv", "table2.csv"):
        assert (tiny_workdir / "results/tables" / table).read_bytes() == (
            tiny_run / "results/tables" / table
        ).read_bytes()
    assert pl.read_parquet(tiny_workdir / "results/ks/tiny/conv1.parquet").equals(
        pl.read_parquet(tiny_run / "results/ks/tiny/conv1.parquet")
    )


def configure(workdir: Path, **changes) -> None:
    config = tiny_config()
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            config[section] = {**config[section], field: value}
        else:
            config[section] = value
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"models": {"tiny": {"source": "onnx", "builder": "x"}}}, "source"),
        ({"theta": 1.5}, "theta"),
        ({"theta": 0}, "theta"),
        ({"images__count": 0}, "count"),
        ({"images__path": "no_such_folder"}, "no_such_folder does not exist"),
        ({"images__path": "empty"}, "no image files"),
        (
            {
                "models": {
                    "tiny": {"source": "python", "builder": "tiny_net.py:build", "state_dict": "nope.pt"}
                }
            },
            "state_dict file nope.pt does not exist",
        ),
        (
            {"models": {"tiny": {"source": "python", "builder": "missing.py:build"}}},
            "missing.py does not exist",
        ),
    ],
)
def test_bad_config_fails_before_any_job_with_a_clear_message(tiny_workdir, changes, message):
    (tiny_workdir / "empty").mkdir()
    configure(tiny_workdir, **changes)
    result = run_workflow(tiny_workdir, "results/tables/table2.csv", check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (tiny_workdir / "results").exists()


def test_missing_torchvision_weights_name_the_file_and_where_to_put_it(tiny_workdir, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # no download, even with internet
    configure(
        tiny_workdir,
        models={"r18": {"source": "torchvision", "builder": "resnet18", "weights": "IMAGENET1K_V1"}},
    )
    result = run_workflow(tiny_workdir, "results/tables/table2.csv", check=False)
    log = (tiny_workdir / "results/logs/activations/r18.log").read_text()
    assert result.returncode != 0
    expected = tmp_path / "empty_torch_home/hub/checkpoints/resnet18-f37072fd.pth"
    assert "Put the file resnet18-f37072fd.pth" in log and str(expected) in log
    assert not (tiny_workdir / "results/activations/r18").exists()  # nothing half-written


SLOW_NET = """
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from tiny_net import TinyNet  # noqa: E402


class SlowNet(TinyNet):  # the tiny net, slow enough to be killed in the middle of its dump
    def forward(self, x):
        time.sleep(0.4)
        return super().forward(x)


def build():
    return SlowNet()
"""


def test_a_dump_killed_mid_way_is_recomputed_and_gives_the_same_tables(tiny_run, tiny_workdir):
    """SIGKILL to Snakemake and its job while the dump has written some layers but no manifest
    (a node crash): Snakemake's lock and incomplete markers stop a plain rerun from trusting
    anything; after --unlock, --rerun-incomplete (set by both profiles) redoes the dump."""
    (tiny_workdir / "slow_net.py").write_text(SLOW_NET)
    configure(
        tiny_workdir, models={"tiny": {**tiny_config()["models"]["tiny"], "builder": "slow_net.py:build"}}
    )
    configure_micro_batch = yaml.safe_load((tiny_workdir / "config.yaml").read_text()) | {"micro_batch": 2}
    (tiny_workdir / "config.yaml").write_text(yaml.safe_dump(configure_micro_batch))
    command, env = workflow_command(tiny_workdir, "results/tables/table2.csv")
    process = subprocess.Popen(
        command,
        cwd=tiny_workdir,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    dump = tiny_workdir / "results/activations/tiny"
    deadline = time.monotonic() + 120
    while not (dump / "conv1.parquet").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # a few micro-batches in: layer files half-written
    assert process.poll() is None and not (dump / "manifest.json").exists()
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    run_workflow(tiny_workdir, "--unlock")  # a killed Snakemake may leave its lock behind
    plain = run_workflow(tiny_workdir, "results/tables/table2.csv", check=False)
    assert plain.returncode != 0 and "incomplete" in plain.stdout + plain.stderr  # never trusted
    run_workflow(tiny_workdir, "results/tables/table2.csv", "--rerun-incomplete")
    assert (tiny_workdir / "results/tables/table2.csv").read_bytes() == (
        tiny_run / "results/tables/table2.csv"
    ).read_bytes()
