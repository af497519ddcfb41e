"""GPU and scale (issue 13): KS on the GPU against the CPU, PAN labels from CPU and CUDA
activations, dump throughput, and ``evaluate_variants`` throughput against a bare forward pass.

Every part uses a seeded, randomly initialised torchvision ResNet-50 (no weights download) on
the builtin images (``ImageSpec(source="builtin", count=..., seed=0)``):

1. KS: the maps of every analysed layer (Conv2d with a kernel larger than 1x1), built in memory
   (``--images``, default 512) or read from an activation dump directory (``--dump``), scored
   on the CPU (numpy, ``--cpu-threads``) and on the GPU (:mod:`pan.ks_torch`); prints the times,
   the speed-up (target: at least 30x at 512 images) and whether both KS tables are identical
   (they must be, bit for bit).
2. Labels: :func:`pan.find_pans` with ``device="cpu"`` and with ``device="cuda"`` on the same
   model and images (``--label-images``, default 64); the number of neurons whose labels differ
   (target: 0; pan runs float32 convolutions without TF32, :func:`pan.capture.inference.full_float32`)
   and the largest absolute KS difference.
3. Dump: :func:`pan.capture.activations.dump_module_activations` on CUDA into a temporary folder
   (``--dump-images``, default 512; ``--tmp-dir``), in images per second.
4. Evaluation: :func:`pan.bias.evaluation.evaluate_variants` (the four variants, PAN labels of
   part 2) in images per second (images x variants), against a bare forward pass of the same
   four variants (:func:`pan.bias.variants.build_variants`) on the same images, preprocessed and
   preloaded on the GPU (``--eval-images``, default 512); target: at least 50 % of it.

At the end a Markdown table (card, each measure, its target, pass or fail) for the README.

    python benchmarks/gpu_scale.py                      # on a GPU machine: every part
    python benchmarks/gpu_scale.py --parts ks labels    # some parts only
    python benchmarks/gpu_scale.py --dump results/activations/efficientnet_lite0
    python benchmarks/gpu_scale.py --cpu-check          # no GPU needed: every part, small, CPU

Without a CUDA GPU (and without ``--cpu-check``) it says so and exits 0. ``--cpu-check`` runs
small CPU-only versions of every part (8-16 images; KS with the torch path on the CPU against
numpy, labels CPU against CPU, dump and evaluation on the CPU), GPU or not, to check that the
script runs. Exit status: 1 when a measure with a target fails or a part raises, else 0.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import torch
import torchvision
from torch import nn

import pan
from pan.bias.evaluation import evaluate_variants
from pan.bias.variants import VARIANTS, build_variants
from pan.capture.activations import dump_module_activations
from pan.capture.images import ImageSpec, image_records
from pan.capture.inference import full_float32, preprocessed_batches
from pan.capture.models import LoadedModel, ModelSpec, eval_transform, load_model
from pan.core.borders import BORDERS
from pan.core.scoring import default_threads, score_maps

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
RESNET50 = ModelSpec("resnet50", "torchvision", builder="resnet50", pretrained=False)
"""The model of parts 2-4: torchvision's ResNet-50, default initialisation seeded by
:func:`pan.capture.models.load_model` (the same weights as ``torch.manual_seed(0); resnet50()``)."""
KS_SPEEDUP_TARGET = 30.0
EVAL_RATIO_TARGET = 0.5
LABEL_COLUMNS = (
    *[f"edge_{b}" for b in BORDERS],
    *[f"pan_{b}" for b in BORDERS],
    "is_edge_detector",
    "is_pan",
    "pan_type",
)
"""The label columns of :func:`pan.find_pans`: a neuron's labels differ if any of these does."""


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
    records = image_records(ImageSpec(source="builtin", count=images, seed=0))
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
    (the Parquet layout of ``pan.core.dumps``, read here so that this script needs no more of pan)."""
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


# --- PAN labels, dump and evaluation on pan's API ------------------------------------------


def label_agreement(
    cpu_labels: Callable[[], pl.DataFrame],
    cuda_labels: Callable[[], pl.DataFrame],
    devices: tuple[str, str] = ("cpu", "cuda"),
) -> dict[str, object]:
    """Each callable returns the PAN labels (:func:`pan.find_pans`) of the same model and
    images, the first from activations computed on ``devices[0]``, the second on ``devices[1]``.
    Prints and returns how many neurons' labels differ (any of :data:`LABEL_COLUMNS`; a neuron
    in one table only counts as differing) and the largest absolute KS difference (NaN: 0)."""
    results = []
    for device, call in zip(devices, (cpu_labels, cuda_labels), strict=True):
        seconds, labels = time_call(device.startswith("cuda"), call)
        print(
            f"labels from {device} activations: {labels.height} neurons, {int(labels['is_pan'].sum())} "
            f"PANs, {int(labels['is_edge_detector'].sum())} edge detectors ({seconds:.1f} s)"
        )
        results.append(labels)
    first, second = results
    keys = ["layer", "neuron"]
    joined = first.join(second, on=keys, how="inner", suffix="_2")
    unmatched = first.height + second.height - 2 * joined.height
    ks_diff = pl.max_horizontal(
        *[(pl.col(f"ks_{b}").fill_nan(0.0) - pl.col(f"ks_{b}_2").fill_nan(0.0)).abs() for b in BORDERS]
    )
    compared = joined.select(
        differs=pl.any_horizontal(*[pl.col(c) != pl.col(f"{c}_2") for c in LABEL_COLUMNS]),
        ks_diff=ks_diff,
    )
    differing = int(compared["differs"].sum()) + unmatched
    max_ks = float(compared["ks_diff"].max() or 0.0)
    ks_changed = int((compared["ks_diff"] > 0).sum())
    print(
        f"labels: {differing} of {max(first.height, second.height)} neurons differ between {devices[0]} "
        f"and {devices[1]} activations; largest |KS difference| {max_ks:.6f} ({ks_changed} neurons "
        "with any KS changed)"
    )
    return {
        "differing": differing,
        "neurons": max(first.height, second.height),
        "max_ks_diff": max_ks,
        "labels": second,
    }


def dump_throughput(dump: Callable[[int], object], images: int) -> float:
    """``dump(images)`` writes the activation dump of ``images`` images (GPU work finished
    when it returns: the dump is on disk). Prints and returns images per second."""
    seconds, _ = time_call(torch.cuda.is_available(), dump, images)
    rate = images / seconds
    print(f"dump: {rate:.1f} img/s at {images} images ({seconds:.1f} s)")
    return rate


def variant_throughput(
    evaluate: Callable[[], int], variants: dict[str, nn.Module], batches: list[torch.Tensor]
) -> dict[str, float]:
    """``evaluate()`` runs the evaluation of the four variants (:func:`evaluate_variants`) and
    returns the images it scored, summed over variants; the bare forward runs each of
    ``variants`` (:func:`pan.bias.variants.build_variants`) over ``batches``, preloaded on their
    device, as evaluation does (inference mode, full float32). Prints both rates (images x
    variants per second) and their ratio; returns the rates (``eval_rate``, ``bare_rate``) and
    the seconds (``eval_s``, ``bare_s``)."""
    cuda = batches[0].is_cuda
    eval_s, evaluated = time_call(cuda, evaluate)
    eval_rate = evaluated / eval_s

    def bare() -> None:
        with torch.inference_mode(), full_float32():
            for model in variants.values():
                for batch in batches:
                    model(batch)

    bare_s, _ = time_call(cuda, bare)
    bare_rate = len(variants) * sum(len(b) for b in batches) / bare_s
    print(
        f"variants: evaluate_variants {eval_rate:.1f} img/s ({eval_s:.1f} s), bare forward "
        f"{bare_rate:.1f} img/s ({bare_s:.1f} s): {eval_rate / bare_rate:.0%} of it"
    )
    return {"eval_rate": eval_rate, "bare_rate": bare_rate, "eval_s": eval_s, "bare_s": bare_s}


def builtin_records(images: int) -> list:
    return image_records(ImageSpec(source="builtin", count=images, seed=0))


def run_labels(loaded: LoadedModel, images: int, devices: tuple[str, str], micro_batch: int) -> dict:
    """Part 2: :func:`pan.find_pans` on ``devices[0]`` and ``devices[1]``, same model and images."""
    pil = [r.load() for r in builtin_records(images)]

    def labels_on(device: str) -> Callable[[], pl.DataFrame]:
        return lambda: pan.find_pans(
            loaded.model,
            pil,
            device=device,
            transform=loaded.transform,
            micro_batch=micro_batch,
            progress=io.StringIO(),
        )

    print(f"\nPAN labels: ResNet-50 (random init) on {images} builtin images, {devices[0]} vs {devices[1]}")
    return label_agreement(labels_on(devices[0]), labels_on(devices[1]), devices)


def run_dump(loaded: LoadedModel, images: int, device: str, micro_batch: int, tmp_dir: Path | None) -> float:
    """Part 3: :func:`dump_module_activations` of ``images`` builtin images into a temporary folder."""
    records = builtin_records(images)
    print(f"\ndump: ResNet-50 (random init) on {device}, {images} builtin images, micro-batch {micro_batch}")
    with tempfile.TemporaryDirectory(prefix="pan-gpu-scale-", dir=tmp_dir) as scratch:

        def dump(count: int) -> None:
            dump_module_activations(
                loaded.model,
                loaded.transform,
                records[:count],
                Path(scratch) / "activations",
                RESNET50.name,
                micro_batch=micro_batch,
                device=device,
                progress=io.StringIO(),
            )

        rate = dump_throughput(dump, images)
        written = sum(f.stat().st_size for f in Path(scratch).rglob("*") if f.is_file())
        print(f"dump: {written / 2**30:.2f} GiB written to {scratch}")
    return rate


def run_eval(
    loaded: LoadedModel,
    labels: pl.DataFrame,
    images: int,
    device: str,
    micro_batch: int,
    tmp_dir: Path | None,
    warm_up: bool,
) -> dict[str, float]:
    """Part 4: :func:`evaluate_variants` against a bare forward of the four variants on
    preloaded tensors (see :func:`variant_throughput`). With ``warm_up`` each side first runs one
    untimed micro-batch (CUDA kernels, allocator). ``evaluate_variants`` builds its model itself
    and its time includes that; ``load_s`` (returned too) is what one :func:`load_model` takes."""
    spec = ImageSpec(source="builtin", count=images, seed=0)
    cuda = device.startswith("cuda")
    print(
        f"\nevaluation: ResNet-50 (random init) on {device}, {images} builtin images x {len(VARIANTS)} "
        f"variants, micro-batch {micro_batch}"
    )
    with tempfile.TemporaryDirectory(prefix="pan-gpu-scale-", dir=tmp_dir) as scratch:
        root = Path(scratch)
        pans = root / "pans.parquet"
        labels.write_parquet(pans)
        print(f"PAN labels: {int(labels['is_pan'].sum())} PANs of {labels.height} neurons")

        def evaluate(count: int = images, tag: str = "timed") -> int:
            outputs = {name: root / f"{tag}-{name}.parquet" for name in VARIANTS}
            scored = evaluate_variants(
                RESNET50,
                ImageSpec(source="builtin", count=count, seed=0),
                pans,
                outputs,
                rand_seed=0,
                micro_batch=micro_batch,
                device=device,
                progress=io.StringIO(),
            )
            return scored * len(outputs)

        load_s, _ = time_call(False, load_model, RESNET50)
        print(f"evaluate_variants builds its model: load_model takes {load_s:.1f} s (on the CPU)")
        model = loaded.model.to(device).eval()
        variants = build_variants(model, labels, 0)
        batches = [
            batch.to(device)
            for batch in preprocessed_batches(image_records(spec), loaded.transform, micro_batch)
        ]
        if warm_up:
            evaluate(min(micro_batch, images), "warm-up")
            with torch.inference_mode(), full_float32():
                for variant in variants.values():
                    variant(batches[0])
            if cuda:
                torch.cuda.synchronize()
        return variant_throughput(evaluate, variants, batches) | {"load_s": load_s}


# --- summary ------------------------------------------------------------------------------


@dataclass
class Measure:
    name: str
    value: str
    target: str = "—"
    ok: bool | None = None
    """``None``: no target (for information)."""

    def row(self) -> str:
        result = "info" if self.ok is None else ("pass" if self.ok else "**FAIL**")
        return f"| {self.name} | {self.value} | {self.target} | {result} |"


def summary(card: str, measures: list[Measure]) -> str:
    lines = [
        "## gpu_scale.py (issue 13)",
        "",
        f"Card: {card}; torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"pan {pan.__version__}",
        "",
        "| measure | value | target | result |",
        "|---|---|---|---|",
        *[m.row() for m in measures],
    ]
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------

PARTS = ("ks", "labels", "dump", "eval")
GPU_SIZES = {"images": 512, "layers": None, "label_images": 64, "dump_images": 512, "eval_images": 512}
CHECK_SIZES = {"images": 8, "layers": 4, "label_images": 16, "dump_images": 8, "eval_images": 8}
"""Sizes on a GPU machine and with ``--cpu-check``; any flag given overrides them."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sizes = "(default {} on a GPU, {} with --cpu-check)"
    parser.add_argument("--images", type=int, help="KS: builtin images " + sizes.format(512, 8))
    parser.add_argument("--dump", type=Path, default=None, help="KS: score this dump directory instead")
    parser.add_argument("--layers", type=int, help="KS: first layers only " + sizes.format("all", 4))
    parser.add_argument("--cpu-threads", type=int, default=default_threads(), help="KS: numpy threads")
    parser.add_argument("--memory-bytes", type=int, default=None, help="KS: GPU budget of one chunk")
    parser.add_argument("--label-images", type=int, help="labels: builtin images " + sizes.format(64, 16))
    parser.add_argument("--dump-images", type=int, help="dump: builtin images " + sizes.format(512, 8))
    parser.add_argument("--eval-images", type=int, help="evaluation: builtin images " + sizes.format(512, 8))
    parser.add_argument("--micro-batch", type=int, help="labels, dump, evaluation " + sizes.format(64, 8))
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where dumps and logits go (temporary)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="parts to run")
    parser.add_argument(
        "--torch-threads",
        type=int,
        help="torch CPU threads (default: torch's own on a GPU, 1 with --cpu-check: on a shared, "
        "loaded machine two spinning OpenMP threads ran ResNet-50 three times slower than one)",
    )
    parser.add_argument("--cpu-check", action="store_true", help="every part, small, on the CPU only")
    args = parser.parse_args()
    defaults = CHECK_SIZES if args.cpu_check else GPU_SIZES
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.micro_batch is None:
        args.micro_batch = 8 if args.cpu_check else 64
    if args.torch_threads is None and args.cpu_check:
        args.torch_threads = 1
    return args


def run_ks(args: argparse.Namespace, device: str) -> list[Measure]:
    """Part 1: KS on ``device`` (``torch-cpu`` for the check) against numpy."""
    cuda = device.startswith("cuda")
    if args.dump is not None:
        layers = dump_maps(args.dump, args.layers)
        where = f"dump {args.dump}"
        print(f"\nKS maps: {where}")
    else:
        start = time.perf_counter()
        maps = resnet50_maps(args.images, torch.device("cuda" if cuda else "cpu"), min(64, args.images))
        where = f"{args.images} images"
        print(
            f"\nKS maps: ResNet-50 (torch.manual_seed(0), random init) on {args.images} builtin images, "
            f"{len(maps)} layers, {sum(m.nbytes for m in maps.values()) / 2**30:.2f} GiB, built in "
            f"{time.perf_counter() - start:.1f} s"
        )
        layers = iter(list(maps.items())[: args.layers])
        del maps
    result = ks_gpu_vs_cpu(layers, device, args.cpu_threads, args.memory_bytes)
    totals = result["totals"]
    host, resident = totals["cpu"] / totals["device"], totals["cpu"] / totals["resident"]
    layers_scored = len(result["tables"])
    return [
        Measure(
            f"KS speed-up, {device} vs numpy ({args.cpu_threads} threads), maps in host memory "
            f"({where}, {layers_scored} layers)",
            f"{host:.1f}x",
            f"≥ {KS_SPEEDUP_TARGET:.0f}x" if cuda else "— (CPU check)",
            host >= KS_SPEEDUP_TARGET if cuda else None,
        ),
        Measure(f"KS speed-up, maps already on {device}", f"{resident:.1f}x"),
        Measure(
            f"KS tables, {device} vs numpy",
            "identical" if result["identical"] else "differ",
            "identical",
            bool(result["identical"]),
        ),
    ]


def main() -> int:
    args = parse_args()
    cuda = torch.cuda.is_available() and not args.cpu_check
    if not cuda and not args.cpu_check:
        print("no CUDA GPU here: nothing measured (--cpu-check runs every part, small, on the CPU)")
        return 0
    device = "cuda" if cuda else "cpu"
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    card = (
        torch.cuda.get_device_name()
        if cuda
        else f"none (--cpu-check on {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads)"
    )
    print(f"card: {card}; CPU threads for numpy KS: {args.cpu_threads}; parts: {', '.join(args.parts)}")

    measures: list[Measure] = []
    loaded: LoadedModel | None = None
    labels: pl.DataFrame | None = None

    def model() -> LoadedModel:
        nonlocal loaded
        loaded = loaded or load_model(RESNET50)
        return loaded

    def part(name: str, run: Callable[[], list[Measure]]) -> None:
        if name not in args.parts:
            return
        try:
            measures.extend(run())
        except Exception as error:  # the other parts still run; the summary says which failed
            traceback.print_exc()
            measures.append(
                Measure(f"{name}: raised", f"{type(error).__name__}: {error}"[:200], "no error", False)
            )

    def ks() -> list[Measure]:
        return run_ks(args, device if cuda else "torch-cpu")

    def agreement() -> list[Measure]:
        nonlocal labels
        devices = ("cpu", "cuda") if cuda else ("cpu", "cpu")
        found = run_labels(model(), args.label_images, devices, args.micro_batch)
        labels = found["labels"]
        where = f"{args.label_images} images, {found['neurons']} neurons"
        return [
            Measure(
                f"PAN labels that differ, {devices[0]} vs {devices[1]} activations ({where})",
                str(found["differing"]),
                "0",
                found["differing"] == 0,
            ),
            Measure(
                f"largest abs KS difference, {devices[0]} vs {devices[1]}", f"{found['max_ks_diff']:.6f}"
            ),
        ]

    def dump() -> list[Measure]:
        rate = run_dump(model(), args.dump_images, device, args.micro_batch, args.tmp_dir)
        where = f"{args.dump_images} images, micro-batch {args.micro_batch}"
        return [Measure(f"dump_module_activations on {device} ({where})", f"{rate:.1f} img/s")]

    def evaluation() -> list[Measure]:
        nonlocal labels
        if labels is None:  # the labels part did not run: label on the evaluation device
            print(f"\nPAN labels for the variants: find_pans on {device}, {args.label_images} images")
            labels = pan.find_pans(
                model().model,
                [r.load() for r in builtin_records(args.label_images)],
                device=device,
                transform=model().transform,
                micro_batch=args.micro_batch,
                progress=io.StringIO(),
            )
        rates = run_eval(
            model(), labels, args.eval_images, device, args.micro_batch, args.tmp_dir, warm_up=cuda
        )
        where = f"{args.eval_images} images x {len(VARIANTS)} variants"
        ratio = rates["eval_rate"] / rates["bare_rate"]
        # evaluate_variants' own model load is a fixed cost: its rate without it, for information
        unloaded_s = max(rates["eval_s"] - rates["load_s"], 1e-9)
        unloaded = rates["eval_rate"] * rates["eval_s"] / unloaded_s / rates["bare_rate"]
        return [
            Measure(f"evaluate_variants on {device} ({where})", f"{rates['eval_rate']:.1f} img/s"),
            Measure(
                f"bare forward of the variants, preloaded tensors ({where})",
                f"{rates['bare_rate']:.1f} img/s",
            ),
            Measure(
                "evaluate_variants / bare forward",
                f"{ratio:.0%}",
                f"≥ {EVAL_RATIO_TARGET:.0%}",
                ratio >= EVAL_RATIO_TARGET if cuda else None,
            ),
            Measure(
                f"same, less one load_model ({rates['load_s']:.1f} s) from evaluate_variants' time",
                f"{unloaded:.0%}",
            ),
        ]

    for name, run in (("ks", ks), ("labels", agreement), ("dump", dump), ("eval", evaluation)):
        part(name, run)
    print("\n" + summary(card, measures))
    return 1 if any(m.ok is False for m in measures) else 0


if __name__ == "__main__":
    sys.exit(main())
