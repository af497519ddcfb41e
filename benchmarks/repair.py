"""Time the default repair of EfficientNet-Lite0 on the CPU and check the issue's goals.

Runs ``snakemake --cores 2 repair`` in a fresh directory on the default ``config.yaml``
with ``repair.models: [efficientnet_lite0]`` (every strategy, every other repair setting at
its default) and ``--resources mem_mb=4000`` (a training job asks for 4 GB, so it runs alone),
so the plain swaps and students also get their §3 labels, §4 evaluation and zero-line attack.
Then prints each training job's wall time and peak memory (Snakemake's benchmark files), the
held-out curve, ``results/tables/repair.csv``, the teacher's RAND-reflect fidelity, and the
goals, met or not:

- the repaired ``reflect`` student's mean KL is at most a tenth of the plain swap's, its
  top-1 agreement at least RAND-reflect's, its PAN count at the reflect control's level;
- the ``zero_line`` student's top-1 change rate under the zero-line attack (zero lines) is at
  most half the teacher's;
- each repair fits in 15 minutes and 4 GB;

with 95 % image-bootstrap intervals (1,000 resamples of the images, paired where two models
are compared on the same images) for the agreement difference and the change rates.

    python benchmarks/repair.py [--cores 2] [--strategies reflect zero_line] [--dir DIR] [--keep]

``--dir`` reuses (or creates) a run directory: a rerun after a kill resumes the repair from
its checkpoint and skips finished jobs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from pan.beyond.attack_summary import rate_intervals
from pan.bias.logits import read_logits
from pan.repair.table import logit_fidelity
from pan.workflow.run import job_peaks, run_workflow

REPO = Path(__file__).resolve().parents[1]
MODEL = "efficientnet_lite0"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--strategies", nargs="+", default=None, help="default: every strategy")
    parser.add_argument(
        "--dir", type=Path, default=None, help="run directory (default: a fresh temporary one)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    args = parser.parse_args()
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="pan-repair-"))
    workdir.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["repair"] = {"models": [MODEL], **({"strategies": args.strategies} if args.strategies else {})}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    load = os.getloadavg()
    start = time.perf_counter()
    run_workflow(workdir, "repair", "--resources", "mem_mb=4000", cores=args.cores)
    wall = time.perf_counter() - start
    print(f"repair of {MODEL} on {args.cores} cores: {wall:.0f} s wall (load average before: {load[0]:.2f})")

    peaks = job_peaks(workdir)
    print("repair jobs (peak memory, seconds):")
    for rss, seconds, name in sorted(p for p in peaks if p[2].parts[0] == "repair"):
        print(f"  {rss:7.0f} MB  {seconds:7.1f} s  {name}")
    print(f"largest peak memory of any job: {peaks[0][0]:.0f} MB ({peaks[0][2]})")
    table = pl.read_csv(workdir / "results/tables/repair.csv")
    print("\n== results/tables/repair.csv")
    print((workdir / "results/tables/repair.csv").read_text())
    for curve in sorted((workdir / f"results/repair/{MODEL}").glob("*/curve.parquet")):
        held = pl.read_parquet(curve).filter(pl.col("held_out_kl").is_not_null())
        print(f"== held-out curve, {curve.parent.name}")
        print(held.select("step", "held_out_kl", "held_out_agreement"))
    _goals(workdir, table, peaks)
    if args.keep or args.dir:
        print(f"run directory kept: {workdir}")
    else:
        shutil.rmtree(workdir)


def _goals(workdir: Path, table: pl.DataFrame, peaks) -> None:
    rows = {(r["strategy"], r["stage"]): r for r in table.iter_rows(named=True)}
    teacher = read_logits(workdir / f"results/eval/{MODEL}/original.parquet").logits
    rand = read_logits(workdir / f"results/eval/{MODEL}/rand_reflect.parquet").logits
    rand_agreement, rand_kl = logit_fidelity(teacher, rand)
    print(f"\nteacher's RAND-reflect on the §4 images: agreement {rand_agreement:.1%}, mean KL {rand_kl:.3f}")
    print("goals:")
    if ("reflect", "after") in rows:
        before, after = rows["reflect", "before"], rows["reflect", "after"]
        ratio = after["mean_kl"] / before["mean_kl"]
        kl = f"{before['mean_kl']:.3f} -> {after['mean_kl']:.3f}"
        print(f"  reflect KL {kl} ({ratio:.3f} of the swap; goal <= 0.1): {ratio <= 0.1}")
        met = after["agreement"] >= rand_agreement
        print(
            f"  reflect agreement {after['agreement']:.1%} (goal >= RAND-reflect {rand_agreement:.1%}): {met}"
        )
        print(f"  reflect PANs: plain swap (the reflect control) {before['pans']}, after {after['pans']}")
        student = read_logits(workdir / f"results/eval/{MODEL}.repaired-reflect/original.parquet").logits
        same = (teacher.argmax(1) == student.argmax(1)).astype(float)
        same_rand = (teacher.argmax(1) == rand.argmax(1)).astype(float)
        low, high = _paired_interval(same - same_rand)
        print(
            f"    agreement student - RAND-reflect: {(same - same_rand).mean():+.1%} "
            f"(95 % interval {low:+.1%} to {high:+.1%}, {len(same)} images)"
        )
    if ("zero_line", "after") in rows:
        before, after = rows["zero_line", "before"], rows["zero_line", "after"]
        zero = after["zero_line_change_zero"] / before["zero_line_change_zero"]
        print(
            f"  zero_line change rate (zero lines) {before['zero_line_change_zero']:.1%} -> "
            f"{after['zero_line_change_zero']:.1%} ({zero:.2f} of the original's; goal <= 0.5): {zero <= 0.5}"
        )
        _line_intervals(workdir)
    for rss, seconds, name in peaks:
        if name.parts[0] == "repair":
            fits = seconds <= 900 and rss <= 4096
            print(f"  {name}: {seconds / 60:.1f} min, {rss / 1024:.2f} GB (goal: 15 min, 4 GB): {fits}")


def _paired_interval(values: np.ndarray, bootstrap: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % image-bootstrap interval of the mean of per-image values."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(bootstrap, len(values)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _line_intervals(workdir: Path) -> None:
    """Change rates (all orientations) of the teacher and the zero_line student with intervals,
    and the paired student - teacher difference per kind of line."""
    tables = {
        name: pl.read_parquet(workdir / f"results/injection/{name}/original.parquet")
        for name in (MODEL, f"{MODEL}.repaired-zero_line")
    }
    for name, table in tables.items():
        rates = rate_intervals(table).filter(pl.col("orientation") == "all").sort("kind")
        for row in rates.iter_rows(named=True):
            print(
                f"    {name} {row['kind']}: {row['top1_change_rate']:.1%} "
                f"({row['top1_change_rate_low']:.1%}-{row['top1_change_rate_high']:.1%})"
            )
    per_image = {
        name: table.group_by("sample", "kind").agg(pl.col("changed").cast(pl.Float64).mean()).sort("sample")
        for name, table in tables.items()
    }
    teacher, student = per_image.values()
    for kind in ("zero", "black", "copied"):
        t = teacher.filter(pl.col("kind") == kind)["changed"].to_numpy()
        s = student.filter(pl.col("kind") == kind)["changed"].to_numpy()
        low, high = _paired_interval(s - t)
        print(f"    student - teacher, {kind} lines: {(s - t).mean():+.1%} ({low:+.1%} to {high:+.1%})")
    for name, rates in per_image.items():
        zero = rates.filter(pl.col("kind") == "zero")["changed"].to_numpy()
        copied = rates.filter(pl.col("kind") == "copied")["changed"].to_numpy()
        low, high = _paired_interval(zero - copied)
        print(f"    {name}, zero - copied lines: {(zero - copied).mean():+.1%} ({low:+.1%} to {high:+.1%})")


if __name__ == "__main__":
    main()
