"""Real-SLURM tests: Snakemake submits through sbatch to a private one-node cluster.

The cluster comes from ``cluster.slurm.private_slurm``. Where the machine
cannot host it (not root, no apt-get) these tests are skipped, except in CI
(``CI=true``), where they must run and so fail instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster.slurm import (
    SlurmCluster,
    SlurmUnavailable,
    private_slurm,
    run_on_slurm,
    slurm_run_id,
    submitted_job_ids,
)

pytestmark = pytest.mark.slurm

THREE_JOBS = """\
rule all:
    input: "merged.txt"
    localrule: True

rule a:
    output: "a.txt"
    shell: "echo $SLURM_JOB_ID $(hostname) > {output}"

rule b:
    output: "b.txt"
    shell: "echo $SLURM_JOB_ID $(hostname) > {output}"

rule merge:
    input: "a.txt", "b.txt"
    output: "merged.txt"
    run:
        import os
        lines = [open(path).read() for path in input]
        lines.append(f"{os.environ['SLURM_JOB_ID']} {os.uname().nodename}\\n")
        with open(output[0], "w") as merged:
            merged.writelines(lines)
"""

# The first attempt leaves a marker and fails; the retry finds it and succeeds.
FAILS_ONCE = """\
rule flaky:
    output: "flaky.txt"
    shell:
        "if [ ! -e first-attempt ]; then touch first-attempt; exit 1; fi; "
        "echo $SLURM_JOB_ID > {output}"
"""


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A private SLURM cluster shared by the tests of this module."""
    try:
        with private_slurm(tmp_path_factory.mktemp("slurm")) as cluster:
            yield cluster
    except SlurmUnavailable as reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the real-SLURM tests, but: {reason}")
        pytest.skip(str(reason))


def write_workflow(directory: Path, snakefile: str) -> Path:
    """Write ``snakefile`` as ``directory/Snakefile`` and return ``directory``."""
    (directory / "Snakefile").write_text(snakefile)
    return directory


def test_three_jobs_complete_through_sbatch(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    """Each non-local job is one SLURM job that completes on the cluster's node."""
    result = run_on_slurm(slurm_cluster, write_workflow(tmp_path, THREE_JOBS))
    assert result.returncode == 0, result.stdout

    submitted = submitted_job_ids(result.stdout)
    assert len(submitted) == 3, result.stdout
    run_id = slurm_run_id(result.stdout)
    finished = {job.job_id: job for job in slurm_cluster.finished_jobs()}
    for job_id in submitted:
        job = finished[job_id]
        assert (job.name, job.state, job.exit_code) == (run_id, "COMPLETED", 0)

    # Every output line was written inside one of those jobs, on the node.
    lines = (tmp_path / "merged.txt").read_text().splitlines()
    assert sorted(int(line.split()[0]) for line in lines) == sorted(submitted)
    assert {line.split()[1] for line in lines} == {slurm_cluster.node_name}


def test_failed_job_is_retried_by_the_profile(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    """The profile's ``retries`` resubmits a failed job, with more memory."""
    result = run_on_slurm(slurm_cluster, write_workflow(tmp_path, FAILS_ONCE))
    assert result.returncode == 0, result.stdout

    first, second = submitted_job_ids(result.stdout)
    finished = {job.job_id: job for job in slurm_cluster.finished_jobs()}
    assert (finished[first].state, finished[first].exit_code) == ("FAILED", 1)
    assert (finished[second].state, finished[second].exit_code) == ("COMPLETED", 0)
    assert (tmp_path / "flaky.txt").read_text().strip() == str(second)

    # The profile's default mem_mb is 2000 * attempt.
    assert "mem=2000M" in finished[first].fields["Tres"]
    assert "mem=4000M" in finished[second].fields["Tres"]
