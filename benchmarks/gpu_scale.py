"""GPU and scale (issue 13): KS scoring on the GPU against the CPU, on the same feature maps.

The maps come from a seeded, randomly initialised torchvision ResNet-50 (no weights download)
on the builtin images (``ImageSpec(source="builtin", batch_size=512, seed=0)``), built in
memory, or from an activation dump directory (``--dump``). For every analysed layer (Conv2d
with a kernel larger than 1x1) it prints the CPU (numpy, ``--cpu-threads``) and the GPU
(:mod:`pan.ks_torch`) scoring times, the speed-up (target: at least 30x at 512 images), and
whether both KS tables are identical (they must be, bit for bit).

    python benchmarks/gpu_scale.py                      # on a GPU machine: 512 images
    python benchmarks/gpu_scale.py --dump results/activations/efficientnet_lite0
    python benchmarks/gpu_scale.py --cpu-check          # no GPU: the CPU parts, quickly

Without a CUDA GPU it says so and exits 0; with ``--cpu-check`` it first runs the CPU parts
at a small scale (8 images, the torch path on the CPU against numpy).

Placeholders, to be wired to the restructured API (each takes callables, see below):
:func:`label_agreement` (CPU vs CUDA PAN labels), :func:`dump_throughput` (dump img/s at 512
images) and :func:`variant_throughput` (``evaluate_variants`` img/s against a bare forward of
the four variants on preloaded tensors).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
import torchvision
from torch import nn

from pan.images import ImageSpec, image_records
from pan.labelling import label_pans
from pan.models import eval_transform
from pan.scoring import default_threads, score_maps

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


# --- feature maps -------------------------------------------------------------------------


def resnet50_maps(images: int, device: torch.device, micro_batch: int = 64) -> dict[str, np.ndarray]:
    """``{layer: (images, C, H, W) float32}`` of every Conv2d with a kernel above 1x1 of a
    seeded random-init ResNet-50 on ``images`` builtin images (seed 0), kept in host memory."""
    torch.manual_seed(0)
    model = torchvision.models.resnet50().eval().to(device)
    convs = {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d) and tuple(module.kernel_size) != (1, 1)
    }
    transform = eval_transform(224, 256, IMAGENET_MEAN, IMAGENET_STD)
    records = image_records(ImageSpec(source="builtin", batch_size=images, seed=0))
    maps: dict[str, np.ndarray] = {}
    position = [0]

    def keep(name: str) -> Callable:
        def hook(module, inputs, output):
            out = output.detach().float().cpu().numpy()
            if name not in maps:
                maps[name] = np.empty((len(records), *out.shape[1:]), dtype=np.float32)
            maps[name][position[0] : position[0] + len(out)] = out

        return hook

    handles = [module.register_forward_hook(keep(name)) for name, module in convs.items()]
    try:
        with torch.inference_mode():
            for start in range(0, len(records), micro_batch):
                batch = torch.stack([transform(r.load()) for r in records[start : start + micro_batch]])
                model(batch.to(device))
                position[0] += len(batch)
    finally:
        for handle in handles:
            handle.remove()
    return maps


def dump_maps(dump_dir: Path, layers: int | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """``(layer, maps)`` of an activation dump directory, one layer at a time, depth order
    (the Parquet layout of ``pan.dumps``, read here so that this script needs no more of pan)."""
    manifest = json.loads((dump_dir / "manifest.json").read_text())
    for layer in manifest["layers"][:layers]:
        table = pq.read_table(dump_dir / layer["file"], memory_map=True)
        meta = table.schema.metadata
        h, w, c = int(meta[b"height"]), int(meta[b"width"]), int(meta[b"neurons"])
        values = table["activation"].combine_chunks().flatten().to_numpy()
        yield layer["name"], values.reshape(-1, c, h, w)


# --- KS on the GPU against the CPU --------------------------------------------------------


def time_call(cuda: bool, call: Callable, *args, **kwargs) -> tuple[float, object]:
    """Seconds of ``call(*args, **kwargs)`` (GPU work finished) and its result."""
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = call(*args, **kwargs)
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def ks_gpu_vs_cpu(
    layers: Iterator[tuple[str, np.ndarray]], device: str, cpu_threads: int, memory_bytes: int | None
) -> dict[str, object]:
    """Score each layer on the CPU and on ``device`` (from host memory, and with the maps
    already on the device); print the times and check that the tables are identical."""
    cuda = device.startswith("cuda")
    on_device = dict(device=device, memory_bytes=memory_bytes)
    print(
        f"{'layer':<22} {'maps (N,C,H,W)':>22} {'cpu s':>8} {device + ' s':>9} {'resident s':>10} "
        f"{'speed-up':>9} {'resident':>9} same"
    )
    totals = {"cpu": 0.0, "device": 0.0, "resident": 0.0}
    identical, tables = True, []
    for index, (name, maps) in enumerate(layers):
        if index == 0:  # warm-up: CUDA context, kernels, allocator
            score_maps(maps[:, :1], name, index, **on_device)
        cpu_s, cpu_table = time_call(False, score_maps, maps, name, index, threads=cpu_threads)
        dev_s, dev_table = time_call(cuda, score_maps, maps, name, index, **on_device)
        resident = torch.tensor(maps, device="cpu" if device == "torch-cpu" else device)
        res_s, res_table = time_call(cuda, score_maps, resident, name, index, **on_device)
        del resident
        same = cpu_table.equals(dev_table) and cpu_table.equals(res_table)
        identical &= same
        totals["cpu"] += cpu_s
        totals["device"] += dev_s
        totals["resident"] += res_s
        tables.append((cpu_table, dev_table))
        print(
            f"{name:<22} {str(maps.shape):>22} {cpu_s:>8.3f} {dev_s:>9.3f} {res_s:>10.3f} "
            f"{cpu_s / dev_s:>8.1f}x {cpu_s / res_s:>8.1f}x {'yes' if same else 'NO'}"
        )
    print(
        f"\nKS total: cpu {totals['cpu']:.2f} s ({cpu_threads} threads), {device} {totals['device']:.2f} s "
        f"from host memory ({totals['cpu'] / totals['device']:.1f}x), {totals['resident']:.2f} s with the "
        f"maps on the device ({totals['cpu'] / totals['resident']:.1f}x); tables identical: "
        f"{'yes' if identical else 'NO'}"
    )
    return {"totals": totals, "identical": identical, "tables": tables}


# --- placeholders, to be wired to the restructured API ------------------------------------


def label_agreement(cpu_labels: Callable[[], object], cuda_labels: Callable[[], object]) -> float | None:
    """PLACEHOLDER (CPU vs CUDA label agreement): each callable returns a PAN label table (a
    polars DataFrame as from :func:`pan.labelling.label_pans`) of the same model and images,
    the first with activations computed on the CPU, the second on CUDA. Prints and returns
    the fraction of neurons with the same ``pan_type``."""
    cpu, cuda = cpu_labels(), cuda_labels()
    keys = ["layer", "neuron"]
    joined = cpu.select(*keys, "pan_type").join(cuda.select(*keys, "pan_type"), on=keys, suffix="_cuda")
    agree = float((joined["pan_type"] == joined["pan_type_cuda"]).mean()) if len(joined) else float("nan")
    print(f"labels: {agree:.4%} of {len(joined)} neurons agree between CPU and CUDA activations")
    return agree


def dump_throughput(dump: Callable[[int], object], images: int = 512) -> float:
    """PLACEHOLDER (dump img/s at 512 images): ``dump(images)`` writes the activation dump
    of ``images`` images (e.g. ``pan.activations.dump_activations`` on CUDA). Prints img/s."""
    start = time.perf_counter()
    dump(images)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    rate = images / (time.perf_counter() - start)
    print(f"dump: {rate:.1f} img/s at {images} images")
    return rate


def variant_throughput(
    evaluate: Callable[[], int], variants: dict[str, nn.Module], batches: list[torch.Tensor]
) -> tuple[float, float]:
    """PLACEHOLDER (evaluate_variants img/s vs a bare forward): ``evaluate()`` runs the
    evaluation of the four variants (e.g. ``pan.evaluation.evaluate_variants``) and returns
    the images it scored (summed over variants); the bare forward runs each of ``variants``
    (see :func:`pan.variants.build_variants`) over ``batches``, preloaded on the device.
    Prints both rates and their ratio."""
    start = time.perf_counter()
    evaluated = evaluate()
    eval_rate = evaluated / (time.perf_counter() - start)
    cuda = torch.cuda.is_available()
    with torch.inference_mode():
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        for model in variants.values():
            for batch in batches:
                model(batch)
        if cuda:
            torch.cuda.synchronize()
    bare_rate = len(variants) * sum(len(b) for b in batches) / (time.perf_counter() - start)
    print(
        f"variants: evaluate {eval_rate:.1f} img/s, bare forward {bare_rate:.1f} img/s "
        f"({eval_rate / bare_rate:.0%} of it)"
    )
    return eval_rate, bare_rate


PLACEHOLDERS: dict[str, Callable[[], object] | None] = {
    "label agreement (CPU vs CUDA)": None,
    "dump img/s at 512 images": None,
    "evaluate_variants img/s vs bare forward": None,
}
"""Zero-argument runners of the placeholders above, set once wired; ``None``: not wired."""


# --- main ---------------------------------------------------------------------------------


def cpu_check(images: int, layers: int, cpu_threads: int) -> bool:
    """The CPU parts at a small scale: the torch path, run on the CPU, against numpy."""
    print(f"CPU check: ResNet-50 (random init) on {images} builtin images, first {layers} layers")
    maps = resnet50_maps(images, torch.device("cpu"), micro_batch=images)
    selected = list(maps.items())[:layers]
    result = ks_gpu_vs_cpu(iter(selected), "torch-cpu", cpu_threads, None)
    frames = [label_pans(_polars(cpu)) for cpu, _ in result["tables"]]
    print(f"labelled {sum(len(f) for f in frames)} neurons from the CPU tables")
    return bool(result["identical"])


def _polars(table):
    import polars as pl

    return pl.from_arrow(table)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=512, help="builtin images for ResNet-50 maps")
    parser.add_argument("--dump", type=Path, default=None, help="score this dump directory instead")
    parser.add_argument("--layers", type=int, default=None, help="first layers only (default: all)")
    parser.add_argument("--cpu-threads", type=int, default=default_threads())
    parser.add_argument("--memory-bytes", type=int, default=None, help="GPU budget of one chunk")
    parser.add_argument("--cpu-check", action="store_true", help="without a GPU: CPU parts, quickly")
    args = parser.parse_args()

    if not torch.cuda.is_available():
        ok = True
        if args.cpu_check:
            ok = cpu_check(8, args.layers or 4, args.cpu_threads)
        print("no CUDA GPU here: GPU timings skipped")
        return 0 if ok else 1

    device = "cuda"
    print(f"GPU: {torch.cuda.get_device_name()}; CPU threads for numpy: {args.cpu_threads}")
    if args.dump is not None:
        layers = dump_maps(args.dump, args.layers)
        print(f"maps: dump {args.dump}")
    else:
        start = time.perf_counter()
        maps = resnet50_maps(args.images, torch.device(device))
        print(
            f"maps: ResNet-50 (torch.manual_seed(0), random init) on {args.images} builtin images, "
            f"{len(maps)} layers, {sum(m.nbytes for m in maps.values()) / 2**30:.1f} GiB, built in "
            f"{time.perf_counter() - start:.1f} s"
        )
        layers = iter(list(maps.items())[: args.layers])
    result = ks_gpu_vs_cpu(layers, device, args.cpu_threads, args.memory_bytes)

    for name, run in PLACEHOLDERS.items():
        if run is None:
            print(f"{name}: placeholder, not wired yet")
        else:
            run()
    return 0 if result["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
