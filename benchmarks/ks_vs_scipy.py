"""Time pan's vectorised KS scoring against a per-neuron scipy.stats.ks_2samp loop.

Both score the same activation dumps (EfficientNet-Lite0 on the default 64 builtin images,
made first if missing) and must agree to 1e-12. The scipy loop is the paper's stack: for each
neuron and border, KS(border, centre), KS+(border, top-k centre, 'less') and
KS-(border, bottom-k centre, 'greater').

    python benchmarks/ks_vs_scipy.py                  # every neuron (several minutes)
    python benchmarks/ks_vs_scipy.py --neurons 16     # the first 16 neurons of each layer
    python benchmarks/ks_vs_scipy.py --threads 1      # pan on one thread (default: all CPUs)
    python benchmarks/ks_vs_scipy.py --scipy-every 8  # scipy on every 8th neuron, scaled up

``--scipy-every K`` runs the scipy loop on every K-th neuron of each layer only (checked
against pan on those neurons) and scales its time by the layer's neurons over those sampled:
scipy's time per neuron is the same for every neuron of a layer (same sample sizes), so this
estimates the full loop in 1/K of its time, for a loaded machine. pan always scores and reads
every neuron. "KS job" below is what one KS job does per layer: read the dump and score it.

pan scores each layer in one process with a small thread pool (``--threads``, default
:func:`pan.core.scoring.default_threads`); the scipy loop is single-threaded. The read of the dump
is timed apart (it is the same for both). Then the KS job itself runs three times,
:func:`pan.core.scoring.score_dump` into a temporary folder, timed end to end (the median): it
reads the next layer while it scores one, checks the maps are finite and writes the tables.
Every timed read is of a dump in the page cache (each file is read once just before), so it
measures decoding, not the disk: on a machine that evicts files idle for a minute (DAMON), a
dump read from the disk costs several times more. The machine's load average is
printed with the result: timings on a shared machine are noisy, so rerun when it is idle.

It runs under the allocator settings the workflow gives its jobs
(:data:`pan.workflow.allocator.JOB_TUNABLES`: it starts itself again with them), as a KS job
does; ``--glibc-defaults`` keeps glibc's own.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

from pan.core.borders import border_samples, centre_samples
from pan.core.dumps import read_feature_maps, read_manifest
from pan.core.scoring import default_threads, score_dump, score_maps
from pan.workflow.allocator import restart_with_job_tunables

JOB_RUNS = 3
"""Runs of the end-to-end KS job; the median is reported."""


def scipy_loop(maps: np.ndarray) -> dict[str, np.ndarray]:
    """KS, KS+ and KS- per neuron and border, one ks_2samp call at a time."""
    borders, centre = border_samples(maps), centre_samples(maps)
    out = {name: np.empty((len(borders), maps.shape[1])) for name in ("ks", "ks_plus", "ks_minus")}
    for b, values in enumerate(borders.values()):
        for neuron in range(maps.shape[1]):
            x, y = values[neuron], centre[neuron]
            k = min(len(x), len(y))
            ordered = np.sort(y)
            out["ks"][b, neuron] = stats.ks_2samp(x, y).statistic
            out["ks_plus"][b, neuron] = stats.ks_2samp(x, ordered[-k:], alternative="less").statistic
            out["ks_minus"][b, neuron] = stats.ks_2samp(x, ordered[:k], alternative="greater").statistic
    return out


def ensure_dump(dump_dir: Path) -> None:
    if (dump_dir / "manifest.json").exists():
        return
    from pan.capture.activations import dump_activations
    from pan.capture.images import ImageSpec
    from pan.capture.models import ModelSpec

    spec = ModelSpec.from_config("efficientnet_lite0", {"source": "efficientnet_lite", "variant": "lite0"})
    dump_activations(spec, ImageSpec(source="builtin", count=64, seed=0), dump_dir)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dump", type=Path, default=Path("results/activations/efficientnet_lite0"))
    parser.add_argument("--neurons", type=int, default=None, help="neurons per layer (default: all)")
    parser.add_argument("--threads", type=int, default=default_threads(), help="pan's threads")
    parser.add_argument("--scipy-every", type=int, default=1, help="scipy on every K-th neuron, scaled")
    parser.add_argument("--glibc-defaults", action="store_true", help="not the jobs' allocator settings")
    args = parser.parse_args()
    if not args.glibc_defaults:
        restart_with_job_tunables()
    print(f"allocator: GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(glibc defaults)')}")
    ensure_dump(args.dump)
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # scipy's exact p-value notes

    pan_seconds = scipy_seconds = read_seconds = 0.0
    neurons = worst = 0
    load_before = os.getloadavg()
    print(f"{'layer':<28} {'neurons':>7} {'pan s':>8} {'scipy s':>8} {'ratio':>7}")
    for layer in read_manifest(args.dump)["layers"]:
        (args.dump / layer["file"]).read_bytes()  # in the page cache: the read measures decoding
        start = time.perf_counter()
        maps = read_feature_maps(args.dump / layer["file"])
        read_seconds += time.perf_counter() - start
        if args.neurons:
            maps = np.ascontiguousarray(maps[:, : args.neurons])
        start = time.perf_counter()
        table = score_maps(maps, layer["name"], layer["index"], threads=args.threads)
        pan_time = time.perf_counter() - start
        sampled = np.arange(0, maps.shape[1], args.scipy_every)
        start = time.perf_counter()
        reference = scipy_loop(np.ascontiguousarray(maps[:, sampled]))
        scipy_time = (time.perf_counter() - start) * maps.shape[1] / len(sampled)
        for name, expected in reference.items():
            got = table.column(name).to_numpy().reshape(maps.shape[1], 4).T  # rows: neuron, then T B L R
            worst = max(worst, float(np.nanmax(np.abs(got[:, sampled] - expected))))
        pan_seconds, scipy_seconds, neurons = (
            pan_seconds + pan_time,
            scipy_seconds + scipy_time,
            neurons + maps.shape[1],
        )
        ratio = scipy_time / pan_time
        print(f"{layer['name']:<28} {maps.shape[1]:>7} {pan_time:>8.2f} {scipy_time:>8.2f} {ratio:>6.1f}x")
    job_runs = []
    for _ in range(JOB_RUNS):
        for layer in read_manifest(args.dump)["layers"]:
            (args.dump / layer["file"]).read_bytes()
        with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(io.StringIO()):
            start = time.perf_counter()
            score_dump(args.dump, out, threads=args.threads)
            job_runs.append(time.perf_counter() - start)
    job_seconds = float(np.median(job_runs))
    images = read_manifest(args.dump)["images"]
    print(f"\n{neurons} neurons, {len(read_manifest(args.dump)['layers'])} layers, {len(images)} images")
    scaled = f" (every {args.scipy_every}th neuron, scaled)" if args.scipy_every > 1 else ""
    print(
        f"pan ({args.threads} threads): {pan_seconds:.2f} s   scipy loop{scaled}: {scipy_seconds:.1f} s   "
        f"speed-up: {scipy_seconds / pan_seconds:.0f}x\nKS job (read {read_seconds:.2f} s + score): "
        f"{pan_seconds + read_seconds:.2f} s, "
        f"{scipy_seconds / (pan_seconds + read_seconds):.0f}x the scipy loop\n"
        f"KS job run end to end (score_dump: read ahead, finite check, tables written; median of "
        f"{JOB_RUNS}: {', '.join(f'{t:.2f}' for t in job_runs)} s): {job_seconds:.2f} s, "
        f"{scipy_seconds / job_seconds:.0f}x the scipy loop"
    )
    loads = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(load_before, os.getloadavg(), strict=True))
    print(f"load average before/after (1, 5, 15 min): {loads} on {os.cpu_count()} CPUs")
    print(f"largest difference from scipy: {worst:.1e} ({'OK' if worst <= 1e-12 else 'MISMATCH'})")
    if worst > 1e-12:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
