"""Run the pan Snakemake workflow from Python: the one entry shared by tests and benchmarks.

The workflow lives beside the package in a source checkout (``pip install -e .``); targets
go before ``--config`` and other options that take several values.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

__all__ = ["REPO", "SNAKEFILE", "job_peaks", "run_workflow", "scheduled_jobs", "workflow_command"]

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "Snakefile"


def workflow_command(workdir: str | Path, *args: str, cores: int = 2) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run ``snakemake`` with ``args`` in ``workdir``."""
    if not SNAKEFILE.is_file():
        raise FileNotFoundError(f"no Snakefile at {SNAKEFILE}: run from a source checkout (pip install -e .)")
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(SNAKEFILE),
        "--directory",
        str(workdir),
        "--cores",
        str(cores),
        *args,
    ]
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return command, {**os.environ, "PYTHONPATH": path}


def run_workflow(
    workdir: str | Path, *args: str, cores: int = 2, check: bool = True
) -> subprocess.CompletedProcess:
    """Run ``snakemake`` with ``args`` on the workflow in ``workdir``; output captured, an
    ``AssertionError`` with it on failure when ``check``."""
    command, env = workflow_command(workdir, *args, cores=cores)
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def scheduled_jobs(dry_run_output: str) -> dict[str, int]:
    """Job counts per rule from the 'Job stats' table of a dry run (empty when nothing is to do)."""
    if "Job stats:" not in dry_run_output:
        return {}
    stats = dry_run_output.split("Job stats:")[1].split("\n\n")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M) if m[1] != "total"}


def job_peaks(workdir: str | Path) -> list[tuple[float, float, Path]]:
    """``(peak memory MB, seconds, job)`` of every benchmarked job of a run in ``workdir``, from
    Snakemake's benchmark files under ``results/benchmarks``, the largest peak first."""
    import csv

    root = Path(workdir) / "results/benchmarks"
    peaks = []
    for tsv in root.rglob("*.tsv"):
        with tsv.open() as handle:
            row = next(csv.DictReader(handle, delimiter="\t"))
        peaks.append((float(row["max_rss"]), float(row["s"]), tsv.relative_to(root)))
    return sorted(peaks, reverse=True)
