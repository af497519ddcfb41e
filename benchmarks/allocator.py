"""Forward-pass speed with and without the allocator settings of the workflow's jobs.

``python benchmarks/allocator.py [--models lite0 lite2] [--rounds 2]`` runs each
EfficientNet-Lite model (real weights) over the same 64 seeded random inputs in micro-batches
of 4 (the default), in a fresh process per setting (glibc reads ``GLIBC_TUNABLES`` at start):
glibc's defaults, then :data:`pan.workflow.allocator.JOB_TUNABLES`, alternating for
``--rounds`` rounds. Each process makes one warm-up pass and times ``--passes`` more; the best
pass gives images/s. It prints both and whether the logits are identical (``torch.equal``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from pan.workflow.allocator import JOB_TUNABLES

SIZES = {"lite0": 224, "lite1": 240, "lite2": 260}

PASS = """
import sys, time, torch
from pan.capture.models import ModelSpec, load_model
variant, size, images, batch, passes, out = sys.argv[1], *map(int, sys.argv[2:6]), sys.argv[6]
net = load_model(ModelSpec(name=variant, source="efficientnet_lite", variant=variant)).model.eval()
inputs = torch.randn(images, 3, size, size, generator=torch.Generator().manual_seed(0))
times = []
with torch.inference_mode():
    for _ in range(passes + 1):
        start = time.perf_counter()
        logits = torch.cat([net(inputs[i : i + batch]) for i in range(0, images, batch)])
        times.append(time.perf_counter() - start)
torch.save(logits, out)
print(images / min(times[1:]))
"""


def timed_pass(variant: str, tunables: str | None, args, out: Path) -> float:
    """Images/s of the best timed pass of ``variant`` in a fresh process with ``tunables``."""
    env = {key: value for key, value in os.environ.items() if key != "GLIBC_TUNABLES"}
    if tunables:
        env["GLIBC_TUNABLES"] = tunables
    command = [sys.executable, "-c", PASS, variant, str(SIZES[variant]), str(args.images)]
    command += [str(args.batch), str(args.passes), str(out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return float(result.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["lite0", "lite2"], choices=list(SIZES))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, micro-batch {args.batch}")
    print(f"job settings: GLIBC_TUNABLES={JOB_TUNABLES}")
    with tempfile.TemporaryDirectory() as folder:
        for variant in args.models:
            speeds: dict[str, list[float]] = {"glibc defaults": [], "job settings": []}
            outputs = []
            for round_ in range(args.rounds):
                for name, tunables in (("glibc defaults", None), ("job settings", JOB_TUNABLES)):
                    out = Path(folder) / f"{variant}-{name[0]}-{round_}.pt"
                    speeds[name].append(timed_pass(variant, tunables, args, out))
                    outputs.append(torch.load(out))
            same = all(torch.equal(outputs[0], logits) for logits in outputs[1:])
            cells = "  ".join(
                f"{name}: {' '.join(f'{s:6.1f}' for s in runs)} img/s" for name, runs in speeds.items()
            )
            print(f"{variant}  {cells}  logits identical: {same}")


if __name__ == "__main__":
    main()
