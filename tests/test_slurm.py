"""Real-SLURM tests: the real pan workflow, submitted by Snakemake through sbatch.

Each run goes through ``workflow/profiles/slurm`` to a private one-node cluster
(``cluster.slurm.private_slurm``) and computes Tables 1 and 2 for the tiny
hand-set CNN of ``tests/tiny_net.py``; a plain local run is the reference.
Where the machine cannot host the cluster (not root, no apt-get, no SLURM
executor plugin) these tests are skipped, except in CI (``CI=true``), where
they must run and so fail.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cluster.slurm import (
    SlurmCluster,
    SlurmUnavailable,
    ensure_slurm_plugin,
    private_slurm,
    run_on_slurm,
    slurm_run_id,
    submitted_job_ids,
)
from conftest import REPO, TESTS, tiny_config, write_images

from pan.workflow.run import run_workflow as run_locally

pytestmark = pytest.mark.slurm

TARGETS = ("results/tables/table1.csv", "results/tables/table2.csv")
TABLES = ("table1.csv", "table2.csv")

# Appended to the workdir's copy of tiny_net.py: a builder whose first activation dump dies
# in its second micro-batch, once the first is on disk, as a job killed mid-run would.
# attempts.txt records what each attempt found of the dump when it started, and what the
# failing attempt had written when it died.
BUILD_FAILING_ONCE = """

def build_failing_once():
    import os
    from pathlib import Path

    import torch

    if torch.empty(0).device.type == "meta":  # the shape-only pass of layer_shapes, not a dump
        return build()

    dump, attempts = Path("results/activations/tiny"), Path("attempts.txt")
    first = not attempts.exists()
    with attempts.open("a") as out:
        out.write(f"start: {sorted(os.listdir(dump)) if dump.exists() else 'no dump'}\\n")
    net = build()
    if first:
        batches = []

        def die_in_second_batch(module, inputs):
            batches.append(len(inputs[0]))
            if len(batches) == 2:
                with attempts.open("a") as out:
                    out.write(f"died: {sorted(os.listdir(dump))}\\n")
                raise RuntimeError("planted failure in the second micro-batch")

        net.register_forward_pre_hook(die_in_second_batch)
    return net
"""


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A private SLURM cluster shared by the tests of this module."""
    try:
        ensure_slurm_plugin()
        with private_slurm(tmp_path_factory.mktemp("slurm")) as cluster:
            yield cluster
    except SlurmUnavailable as reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the real-SLURM tests, but: {reason}")
        pytest.skip(str(reason))


def pan_workdir(directory: Path, builder: str = "build", gpus: int = 0) -> Path:
    """A workdir for the real workflow: tiny_net.py, 20 images and a config.

    ``device: auto`` everywhere, so that a GPU request changes where jobs run, not what
    they compute (this cluster's GPU is a stand-in: CUDA stays unavailable).
    """
    shutil.copy(TESTS / "tiny_net.py", directory / "tiny_net.py")
    with (directory / "tiny_net.py").open("a") as net:
        net.write(BUILD_FAILING_ONCE)
    write_images(directory / "images", 20)
    config = tiny_config(device="auto", gpus=gpus)
    config["models"]["tiny"]["builder"] = f"tiny_net.py:{builder}"
    (directory / "config.yaml").write_text(yaml.safe_dump(config))
    return directory


@pytest.fixture(scope="module")
def local_tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Tables 1 and 2 of a plain local run: what every SLURM run must reproduce."""
    workdir = pan_workdir(tmp_path_factory.mktemp("local_run"))
    run_locally(workdir, *TARGETS)
    return {table: (workdir / "results/tables" / table).read_bytes() for table in TABLES}


def run_pan_on_slurm(cluster: SlurmCluster, workdir: Path) -> subprocess.CompletedProcess[str]:
    """The real workflow to Tables 1 and 2 through the slurm profile, run from ``workdir``."""
    return run_on_slurm(cluster, workdir, ["--snakefile", str(REPO / "Snakefile"), *TARGETS])


def jobs_run(log: str) -> int:
    """How many jobs a Snakemake run finished, from its last 'n of n steps (100%) done'."""
    done, total = map(int, re.findall(r"(\d+) of (\d+) steps", log)[-1])
    assert done == total, log
    return total


def test_pan_workflow_runs_every_job_on_slurm(
    slurm_cluster: SlurmCluster, local_tables: dict[str, bytes], tmp_path: Path
) -> None:
    """Each job is one completed SLURM job, the dump on a GPU; the tables equal a local run's."""
    workdir = pan_workdir(tmp_path, gpus=1)
    result = run_pan_on_slurm(slurm_cluster, workdir)
    assert result.returncode == 0, result.stdout

    submitted = submitted_job_ids(result.stdout)
    jobs = [job for job in slurm_cluster.finished_jobs() if job.name == slurm_run_id(result.stdout)]
    assert sorted(job.job_id for job in jobs) == sorted(submitted)
    assert all((job.state, job.exit_code) == ("COMPLETED", 0) for job in jobs), jobs
    # layer_shapes, activations, ks_scores, label_pans, table1, table2: each wrote its own log.
    rule_logs = list((workdir / "results/logs").rglob("*.log"))
    assert len(submitted) == jobs_run(result.stdout) == len(rule_logs) == 6

    gpu_requests = {
        slurm_cluster.job_field(job_id, "Comment"): slurm_cluster.job_field(job_id, "TresPerJob")
        for job_id in submitted
    }
    by_rule = {comment.split("_wildcards")[0]: comment for comment in gpu_requests}  # wildcards: run, model
    assert gpu_requests.pop(by_rule["rule_activations"]) == "gres:gpu:1"
    assert gpu_requests.pop(by_rule["rule_ks_scores"]) == "gres:gpu:1"  # KS on the GPU too
    assert set(gpu_requests.values()) == {None}, gpu_requests  # CPU-only rules ask for no GPU

    for table in TABLES:
        assert (workdir / "results/tables" / table).read_bytes() == local_tables[table]


def test_pan_job_killed_mid_dump_is_retried_from_scratch(
    slurm_cluster: SlurmCluster, local_tables: dict[str, bytes], tmp_path: Path
) -> None:
    """A dump that dies half-written is removed, rerun with more memory, and changes nothing."""
    workdir = pan_workdir(tmp_path, builder="build_failing_once")
    result = run_pan_on_slurm(slurm_cluster, workdir)
    assert result.returncode == 0, result.stdout

    layers = {"conv1.parquet", "valid.parquet", "asymmetric.1.parquet"}
    start, died, retry = (workdir / "attempts.txt").read_text().splitlines()
    assert start == "start: no dump" and died.startswith("died: ")
    written = set(ast.literal_eval(died.removeprefix("died: ")))
    assert written <= layers  # half-written: layer files as far as its writer got, no manifest
    assert retry == "start: no dump"  # the retry found nothing of the dead attempt
    submitted = submitted_job_ids(result.stdout)
    jobs = {job.job_id: job for job in slurm_cluster.finished_jobs()}
    shapes, failed, retried, *rest = (jobs[job_id] for job_id in submitted)
    assert (failed.state, failed.exit_code) == ("FAILED", 1)
    assert all((job.state, job.exit_code) == ("COMPLETED", 0) for job in [shapes, retried, *rest])
    assert len(submitted) == jobs_run(result.stdout) + 1 == 7
    # The dump asks for the memory its layer shapes call for, times the attempt number.
    first, second = (int(re.search(r"mem=(\d+)M", job.fields["Tres"])[1]) for job in (failed, retried))
    assert first > 1000 and second == 2 * first

    for table in TABLES:
        assert (workdir / "results/tables" / table).read_bytes() == local_tables[table]
