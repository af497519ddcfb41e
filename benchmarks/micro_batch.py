"""Forward-pass speed against the micro-batch size, and whether the logits stay bit-identical.

``python benchmarks/micro_batch.py [--models lite0 lite1 lite2] [--sizes 16 8 4 2 1]`` runs
each EfficientNet-Lite model (real weights) over the same 64 seeded random inputs in
micro-batches of each size, with the threads torch has (one warm-up batch first), and prints
images/s and whether the logits equal those of the first size (``torch.equal``). It runs
under the allocator settings the workflow gives its jobs (:mod:`pan.workflow.allocator`: it
starts itself again with them); ``--glibc-defaults`` keeps glibc's own.

``--channels-last`` also runs a copy of each model and its inputs in ``torch.channels_last``
at every size, and prints its images/s and its largest logit difference from the contiguous
run of the same size. pan's forward passes stay contiguous: the layout moves the logits.
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import torch

from pan.capture.models import ModelSpec, load_model
from pan.workflow.allocator import restart_with_job_tunables

SIZES = {"lite0": 224, "lite1": 240, "lite2": 260}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--sizes", nargs="+", type=int, default=[16, 8, 4, 2, 1])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--glibc-defaults", action="store_true", help="not the jobs' allocator settings")
    parser.add_argument("--channels-last", action="store_true", help="also time the channels-last layout")
    args = parser.parse_args()
    if not args.glibc_defaults:
        restart_with_job_tunables()
    tunables = os.environ.get("GLIBC_TUNABLES", "(glibc defaults)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, GLIBC_TUNABLES={tunables}")
    for variant in args.models:
        net = load_model(ModelSpec(name=variant, source="efficientnet_lite", variant=variant)).model.eval()
        size = SIZES[variant]
        inputs = torch.randn(args.images, 3, size, size, generator=torch.Generator().manual_seed(0))
        channels_last = last_inputs = None
        if args.channels_last:  # copies: the contiguous model and inputs stay as they are
            channels_last = copy.deepcopy(net).to(memory_format=torch.channels_last)
            last_inputs = inputs.contiguous(memory_format=torch.channels_last)
        reference = None
        for batch in args.sizes:
            seconds, logits = timed(net, inputs, batch)
            reference = logits if reference is None else reference
            same = "reference" if logits is reference else str(torch.equal(logits, reference))
            print(f"{variant}  micro-batch {batch:>3}: {args.images / seconds:7.1f} img/s  identical: {same}")
            if channels_last is not None:
                last_seconds, last_logits = timed(channels_last, last_inputs, batch)
                moved = (last_logits - logits).abs().max().item()
                print(
                    f"{variant}  micro-batch {batch:>3}: {args.images / last_seconds:7.1f} img/s  "
                    f"channels-last, logits moved by up to {moved:.1e}"
                )


def timed(net: torch.nn.Module, inputs: torch.Tensor, batch: int) -> tuple[float, torch.Tensor]:
    """Seconds for every micro-batch of ``inputs`` (after one warm-up batch), and the logits."""
    with torch.inference_mode():
        net(inputs[:batch])  # warm-up
        start = time.perf_counter()
        logits = torch.cat([net(inputs[i : i + batch]) for i in range(0, len(inputs), batch)])
        return time.perf_counter() - start, logits


if __name__ == "__main__":
    main()
