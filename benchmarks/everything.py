"""Time every target of the default config, cold, in a fresh directory: per target and per rule.

Runs, one after the other in one fresh directory with the default ``config.yaml``,
``all figures table3 trust beyond_paper take_away`` and then the report
(``snakemake --report``), each with ``--cores 2`` (targets before options). While each runs, a
sampler thread follows every job's processes (Snakemake runs a rule's script as a child
process; the job's rule and wildcards are read from the script Snakemake writes for it) and
records per job: wall time, CPU time, peak resident memory (VmHWM, the larger of it and the
benchmark file's ``max_rss`` where the rule has one) and bytes written to storage
(``/proc/<pid>/io`` ``write_bytes``: temporary dumps count although they are deleted later).
The machine's load average is sampled too: the machine may be shared.

    python benchmarks/everything.py [--cores 2] [--targets all figures ...] [--json out.json] [--keep]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import pickle
import shutil
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil

from pan.workflow.run import job_peaks, workflow_command

REPO = Path(__file__).resolve().parents[1]
TARGETS = ["all", "figures", "table3", "trust", "beyond_paper", "take_away"]
REPORT = "report"


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _job_of_script(path: str) -> tuple[str, str]:
    """(rule, wildcards) of the job whose Snakemake-written script is ``path``."""
    try:
        text = Path(path).read_text()
    except OSError:
        return "?", ""
    start = text.find("pickle.loads(")
    if start < 0:
        return "?", ""
    literal = text[start + len("pickle.loads(") :].split(");", 1)[0]
    try:
        snake = pickle.loads(ast.literal_eval(literal))
    except Exception:  # noqa: BLE001 - a script we cannot read is reported as '?'
        return "?", ""
    return snake.rule, ",".join(f"{k}={v}" for k, v in dict(snake.wildcards.items()).items())


class _Sampler(threading.Thread):
    """Follows the processes under one Snakemake process and the machine's load."""

    def __init__(self, root: int, period: float = 0.3):
        super().__init__(daemon=True)
        self.root, self.period, self.stop = root, period, threading.Event()
        self.jobs: dict[int, dict] = {}  # script pid -> job record
        self.loads: list[float] = []

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.period)
        self.sample()

    def sample(self) -> None:
        self.loads.append(os.getloadavg()[0])
        try:
            children = psutil.Process(self.root).children(recursive=True)
        except psutil.Error:
            return
        now = time.time()
        for proc in children:
            try:
                cmdline = proc.cmdline()
            except psutil.Error:
                continue
            script = next((a for a in cmdline if "/.snakemake/scripts/" in a), None)
            if script is None:
                continue
            job = self.jobs.get(proc.pid)
            if job is None:
                rule, wildcards = _job_of_script(script)
                try:
                    created = proc.create_time()
                except psutil.Error:
                    created = now
                job = self.jobs[proc.pid] = dict(
                    rule=rule, wildcards=wildcards, start=created, end=now, peak_mb=0.0, cpu_s=0.0, written=0
                )
            elif job["rule"] == "?":  # first seen while Snakemake was still writing its script
                job["rule"], job["wildcards"] = _job_of_script(script)
            procs = [proc]
            try:
                procs += proc.children(recursive=True)
            except psutil.Error:
                pass
            peak, cpu, written = 0, 0.0, 0
            for p in procs:
                try:
                    peak = max(peak, _status_kb(p.pid, "VmHWM"))
                    times = p.cpu_times()
                    cpu += times.user + times.system + times.children_user + times.children_system
                    written += p.io_counters().write_bytes
                except psutil.Error:
                    continue
            job["end"] = now
            job["peak_mb"] = max(job["peak_mb"], peak / 1024)
            job["cpu_s"] = max(job["cpu_s"], cpu)
            job["written"] = max(job["written"], written)


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def run_target(workdir: Path, target: str, cores: int, targets: list[str]) -> dict:
    """Run one target (or the report of ``targets``) cold and measure it."""
    args = ["--report", "results/report.html", *targets] if target == REPORT else [target]
    command, env = workflow_command(workdir, *args, "--quiet", "all", cores=cores)
    log = workdir / f"everything.{target}.log"
    before = _dir_bytes(workdir / "results")
    start = time.perf_counter()
    with log.open("w") as handle:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=handle, stderr=subprocess.STDOUT)
        sampler = _Sampler(process.pid)
        sampler.start()
        returncode = process.wait()
        sampler.stop.set()
        sampler.join()
    wall = time.perf_counter() - start
    if returncode != 0:
        raise SystemExit(f"{target} failed (exit {returncode}); see {log}:\n{log.read_text()[-3000:]}")
    jobs = list(sampler.jobs.values())
    return dict(
        target=target,
        wall_s=wall,
        jobs=jobs,
        load_mean=sum(sampler.loads) / max(len(sampler.loads), 1),
        load_max=max(sampler.loads, default=0.0),
        results_bytes=_dir_bytes(workdir / "results"),
        results_growth=_dir_bytes(workdir / "results") - before,
    )


def _summary(jobs: list[dict]) -> dict:
    return dict(
        jobs=len(jobs),
        job_s=sum(j["end"] - j["start"] for j in jobs),
        cpu_s=sum(j["cpu_s"] for j in jobs),
        peak_mb=max((j["peak_mb"] for j in jobs), default=0.0),
        written=sum(j["written"] for j in jobs),
    )


def print_tables(runs: list[dict]) -> None:
    """Per target, then per rule over all targets."""
    print(
        f"{'target':<14}{'wall s':>9}{'jobs':>6}{'job s':>9}{'cpu s':>9}{'peak MB':>9}{'written MB':>12}"
        f"{'results MB':>12}{'load mean/max':>15}"
    )
    total_wall = 0.0
    for run in runs:
        s = _summary(run["jobs"])
        total_wall += run["wall_s"]
        print(
            f"{run['target']:<14}{run['wall_s']:>9.1f}{s['jobs']:>6}{s['job_s']:>9.1f}{s['cpu_s']:>9.1f}"
            f"{s['peak_mb']:>9.0f}{s['written'] / 1e6:>12.0f}{run['results_bytes'] / 1e6:>12.0f}"
            f"{run['load_mean']:>8.1f}/{run['load_max']:.1f}"
        )
    every = [job for run in runs for job in run["jobs"]]
    s = _summary(every)
    print(
        f"{'total':<14}{total_wall:>9.1f}{s['jobs']:>6}{s['job_s']:>9.1f}{s['cpu_s']:>9.1f}{s['peak_mb']:>9.0f}"
        f"{s['written'] / 1e6:>12.0f}"
    )
    by_rule = defaultdict(list)
    for job in every:
        by_rule[job["rule"]].append(job)
    print(f"\n{'rule':<26}{'jobs':>6}{'job s':>9}{'cpu s':>9}{'peak MB':>9}{'written MB':>12}")
    for rule, jobs in sorted(by_rule.items(), key=lambda item: -_summary(item[1])["job_s"]):
        s = _summary(jobs)
        print(
            f"{rule:<26}{s['jobs']:>6}{s['job_s']:>9.1f}{s['cpu_s']:>9.1f}{s['peak_mb']:>9.0f}"
            f"{s['written'] / 1e6:>12.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--targets", nargs="+", default=TARGETS)
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--no-report", action="store_true", help="skip the report")
    parser.add_argument("--json", type=Path, help="write every job's measurements here")
    parser.add_argument("--tables", type=Path, help="copy results/tables/* here (to compare runs)")
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="pan-everything-"))
    shutil.copy(args.config, workdir / "config.yaml")
    print(
        f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()}, run directory {workdir}", flush=True
    )
    runs = []
    for target in [*args.targets, *([] if args.no_report else [REPORT])]:
        runs.append(run_target(workdir, target, args.cores, args.targets))
        print(f"  {target}: {runs[-1]['wall_s']:.1f} s", flush=True)
    print_tables(runs)
    peaks = job_peaks(workdir)
    if peaks:
        print(f"largest peak in a benchmark file: {peaks[0][0]:.0f} MB ({peaks[0][2]})")
    if args.tables:
        args.tables.mkdir(parents=True, exist_ok=True)
        for table in (workdir / "results/tables").glob("*"):
            shutil.copy(table, args.tables / table.name)
    report = workdir / "results/report.html"
    if report.exists():
        print(f"report: {report.stat().st_size / 1e6:.1f} MB")
    if args.json:
        args.json.write_text(json.dumps(dict(cores=args.cores, runs=runs), indent=1))
    if args.keep:
        print(f"run directory kept: {workdir}")
    else:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
