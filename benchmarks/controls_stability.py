"""Time a cold run of the controls and stability tables, then render their figures.

Runs ``snakemake --cores 2 results/tables/controls.csv results/tables/stability.csv`` on the
default ``config.yaml`` in a fresh directory (nothing cached: the main dumps, the reflect and
random-init dumps and every draw's dump are all made), prints the wall time, the load
average and both tables, then makes the per-model figures (``trust``, not timed) and, with
``--figures DIR``, copies them there (the README's figures come from this script).

    python benchmarks/controls_stability.py [--cores 2] [--figures docs/figures] [--keep]
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
TARGETS = ("results/tables/controls.csv", "results/tables/stability.csv")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--figures", type=Path, help="copy each model's PNGs into this folder")
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="pan-controls-stability-"))
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    load_before = os.getloadavg()
    start = time.perf_counter()
    run_workflow(workdir, *TARGETS, "--quiet", "all", cores=args.cores)
    wall = time.perf_counter() - start
    load_after = os.getloadavg()
    jobs = len(job_peaks(workdir))
    print(
        f"cold run of {' '.join(TARGETS)} on {args.cores} cores: {wall:.0f} s wall, {jobs} benchmarked jobs"
    )
    print(f"load average (1, 5, 15 min) before: {load_before}, after: {load_after}")
    for target in TARGETS:
        print((workdir / target).read_text())
    run_workflow(workdir, "trust", "--quiet", "all", cores=args.cores)
    if args.figures:
        args.figures.mkdir(parents=True, exist_ok=True)
        for png in sorted((workdir / "results/figures").glob("*/*.png")):
            target = args.figures / f"{png.stem}_{png.parent.name}.png"
            shutil.copy(png, target)
            print(f"figure: {target}")
    if args.keep:
        print(f"run directory kept: {workdir}")
    else:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
