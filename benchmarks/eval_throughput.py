"""Throughput of the §4 evaluation: each variant's forward pass against a bare forward pass.

Decodes and preprocesses the images once, then times, batch by batch and interleaved (so
that machine load hits every variant alike), a bare forward pass of the original model and
the forward pass of each of the four variants. Reports images per second per variant, the
ratio to the bare pass (the target: at least 0.8), and the end-to-end rate of
:func:`pan.bias.evaluation.evaluate_variants` (decode once, four forwards, write four files).

    python benchmarks/eval_throughput.py                      # efficientnet_lite0, 64 images
    python benchmarks/eval_throughput.py --model efficientnet_lite2 --images 128 --repeats 5

PAN labels come from ``results/pans/{model}.parquet`` (run the workflow first).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch

from pan.bias.evaluation import evaluate_variants
from pan.bias.variants import VARIANTS, build_variants
from pan.capture.images import ImageSpec, image_records
from pan.capture.inference import preprocessed_batches
from pan.capture.models import ModelSpec, load_model

TARGET_RATIO = 0.8


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model",
        default="efficientnet_lite0",
        choices=["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"],
    )
    parser.add_argument("--images", type=int, default=64, help="builtin images (seed 1, as eval_images)")
    parser.add_argument("--batch", type=int, default=16, help="images per forward pass")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the images; the best counts")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--pans", type=Path, help="PAN labels (default results/pans/{model}.parquet)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    spec = ModelSpec.from_config(args.model, {"source": "efficientnet_lite", "variant": args.model[-5:]})
    pans = args.pans or Path(f"results/pans/{args.model}.parquet")
    labels = pl.read_parquet(pans)
    images = ImageSpec("builtin", None, args.images, 1)
    loaded = load_model(spec)
    records = image_records(images)
    start = time.perf_counter()
    batches = list(preprocessed_batches(records, loaded.transform, args.batch))
    decode_rate = len(records) / (time.perf_counter() - start)
    models = {"bare": loaded.model, **build_variants(loaded.model, labels, seed=0)}

    # [repeat, batch] wall and CPU seconds; per batch the fastest repeat counts, so load spikes
    # from other processes drop out. CPU time (all threads) is the cross-check on a busy machine.
    wall = {name: np.zeros((args.repeats, len(batches))) for name in models}
    cpu = {name: np.zeros((args.repeats, len(batches))) for name in models}
    with torch.inference_mode():
        for model in models.values():  # warm-up
            model(batches[0])
        for repeat in range(args.repeats):
            for b, batch in enumerate(batches):
                for name, model in models.items():
                    tick, cpu_tick = time.perf_counter(), time.process_time()
                    model(batch)
                    wall[name][repeat, b] = time.perf_counter() - tick
                    cpu[name][repeat, b] = time.process_time() - cpu_tick

    with tempfile.TemporaryDirectory() as tmp:
        outputs = {v: Path(tmp) / f"{v}.parquet" for v in VARIANTS}
        start = time.perf_counter()
        evaluate_variants(
            spec, images, pans, outputs, micro_batch=args.batch, device="cpu", progress=io.StringIO()
        )
        end_to_end = len(records) / (time.perf_counter() - start)

    rates = {name: len(records) / times.min(axis=0).sum() for name, times in wall.items()}
    cpu_rates = {name: len(records) / times.min(axis=0).sum() for name, times in cpu.items()}
    four = 1 / sum(1 / rates[v] for v in VARIANTS)
    print(
        f"{args.model}: {len(records)} images of {tuple(batches[0].shape[1:])}, batch {args.batch}, "
        f"{args.threads} threads, {int(labels['is_pan'].sum())} PANs; per batch the best of "
        f"{args.repeats} passes"
    )
    print(f"decode + preprocess once: {decode_rate:8.1f} img/s")
    print(f"{'forward':>14}  {'img/s':>8}  {'x bare':>6}  {'img/CPU-s':>9}  {'x bare':>6}")
    slow = []
    for name in models:
        ratio = rates[name] / rates["bare"]
        print(
            f"{name:>14}  {rates[name]:8.1f}  {ratio:6.2f}  {cpu_rates[name]:9.1f}  "
            f"{cpu_rates[name] / cpu_rates['bare']:6.2f}"
        )
        if ratio < TARGET_RATIO:
            slow.append(name)
    print(f"four variants, forward passes only:                       {four:8.1f} img/s")
    print(f"evaluate_variants end to end (decode once, 4 forwards, 4 files): {end_to_end:8.1f} img/s")
    if slow:
        print(f"below {TARGET_RATIO}x the bare forward pass: {slow}", file=sys.stderr)
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
