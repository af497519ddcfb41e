"""Expected cost per model of the zoo run (config.zoo.yaml), measured without weights.

For each zoo model (built with its own default initialisation: costs do not depend on the
weights): analysed layers and neurons, the activation dump's size at the §3 batch size
(4 bytes per activation, from one forward pass of one image), and the CPU time of a forward
pass per image on this machine (``--images`` images, after one warm-up).

    python benchmarks/zoo_cost.py [--images 4] [--batch 64] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch
import yaml

from pan.capture.inference import recording
from pan.capture.layers import analysed_layers
from pan.capture.models import load_model
from pan.workflow.config import Settings

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--batch", type=int, default=64, help="images of the §3 batch")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = Settings.from_config(yaml.safe_load((REPO / "config.zoo.yaml").read_text()))
    print(f"model | input | analysed layers | neurons | dump at {args.batch} images | CPU forward s/img")
    print("---|---|---|---|---|---")
    for name, spec in settings.models.items():
        loaded = load_model(replace(spec, pretrained=False))
        layers = analysed_layers(loaded.model)
        size = loaded.input_size
        values: list[int] = []
        count = lambda layer, maps, values=values: values.append(maps[0].numel())
        with torch.inference_mode(), recording(layers, count):
            loaded.model(torch.rand(1, 3, size, size))
        batch = torch.rand(args.images, 3, size, size)
        with torch.inference_mode():
            loaded.model(batch[:1])
            start = time.perf_counter()
            loaded.model(batch)
            seconds = (time.perf_counter() - start) / args.images
        neurons = sum(layer.out_channels for layer in layers)
        gigabytes = 4 * sum(values) * args.batch / 1e9
        print(f"{name} | {size} | {len(layers)} | {neurons:,} | {gigabytes:.1f} GB | {seconds:.3f}")


if __name__ == "__main__":
    main()
