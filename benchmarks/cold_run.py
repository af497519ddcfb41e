"""Time a cold run of the default workflow and report each job's peak memory.

Runs ``snakemake --cores 2 results/tables/table2.csv`` on the default ``config.yaml`` in a
fresh directory (nothing cached), then reads Snakemake's per-job benchmark files.

    python benchmarks/cold_run.py [--cores 2] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from pan.workflow.run import job_peaks, run_workflow

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--target", default="results/tables/table2.csv")
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="pan-cold-run-"))
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    start = time.perf_counter()
    run_workflow(workdir, args.target, "--quiet", "all", cores=args.cores)
    wall = time.perf_counter() - start

    peaks = job_peaks(workdir)
    print(
        f"cold run of {args.target} on {args.cores} cores: {wall:.0f} s wall, {len(peaks)} benchmarked jobs"
    )
    for rss, seconds, name in peaks[:5]:
        print(f"  {rss:7.0f} MB peak  {seconds:6.1f} s  {name}")
    print(f"largest peak memory of a job: {peaks[0][0]:.0f} MB")
    print((workdir / args.target).read_text())
    if args.keep:
        print(f"run directory kept: {workdir}")
    else:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
