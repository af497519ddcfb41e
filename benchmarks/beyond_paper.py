"""Time a cold run of the analyses beyond the paper and print their tables.

Runs ``snakemake --cores 2 beyond_paper`` (origin 2x2, flip control, padding reach, the
zero-line attack, their figures) on the default ``config.yaml`` in a fresh directory, so the
dumps, KS tables and labels they need are computed too; then reads Snakemake's per-job
benchmark files for the peak memory of each job.

    python benchmarks/beyond_paper.py [--cores 2] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from pan.workflow.run import job_peaks, run_workflow

REPO = Path(__file__).resolve().parents[1]
TABLES = ("pan_origin.csv", "flip_control.csv", "reach.csv", "reach_skipped.csv", "injection_summary.csv")
NEW_RULES = ("origin", "flip", "reach", "injection", "figures")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="pan-beyond-"))
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    load = os.getloadavg()
    start = time.perf_counter()
    run_workflow(workdir, "beyond_paper", "--quiet", "all", cores=args.cores)
    wall = time.perf_counter() - start

    peaks = job_peaks(workdir)
    print(
        f"cold run of beyond_paper on {args.cores} cores: {wall:.0f} s wall "
        f"(load average before: {load[0]:.2f})"
    )
    new = [p for p in peaks if p[2].parts[0] in NEW_RULES]
    print("jobs of the new rules (peak memory, seconds):")
    for rss, seconds, name in sorted(new, key=lambda p: str(p[2])):
        print(f"  {rss:7.0f} MB  {seconds:6.1f} s  {name}")
    print(f"largest peak memory of any job: {peaks[0][0]:.0f} MB ({peaks[0][2]})")
    print(f"seconds in the new rules' benchmarked jobs: {sum(p[1] for p in new):.0f}")
    for table in TABLES:
        print(f"\n== results/tables/{table}")
        print((workdir / "results/tables" / table).read_text())
    if args.keep:
        print(f"run directory kept: {workdir}")
    else:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
