"""Memory requests (pan.workflow.resources) against the peaks the jobs really reach."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pan.beyond.origin import CONDITIONS
from pan.capture.models import ModelSpec
from pan.workflow.allocator import JOB_TUNABLES
from pan.workflow.resources import dump_mem_mb, ks_job_mem_mb, layer_shapes, probe_mem_mb

REPO = Path(__file__).resolve().parents[1]
WIDE_NET = """
from torch import nn


def build():  # three wide layers at full resolution: the maps, not the weights, fill memory
    return nn.Sequential(
        nn.Conv2d(3, 48, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(48, 48, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(48, 48, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(48, 2),
    )
"""


def peak_mb(code: str, cwd: Path) -> float:
    """Peak resident memory (MB) of ``code`` run in a fresh interpreter, as a job would be."""
    # VmHWM (the high-water mark of this address space), not ru_maxrss, which keeps the forking
    # parent's peak (pytest's) across exec.
    peak = "[line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')][0]"
    probe = f"{code}\nprint('PEAK', int({peak}) / 1000)"
    env = {"PYTHONPATH": str(REPO), "GLIBC_TUNABLES": JOB_TUNABLES}  # the allocator a job gets
    result = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return float(result.stdout.split("PEAK")[-1])


def test_a_ks_job_asks_for_at_least_its_peak_and_not_much_more(tmp_path):
    from contextlib import ExitStack

    from pan.core.dumps import LayerWriters

    maps = np.random.default_rng(0).normal(size=(64, 24, 96, 96)).astype(np.float32)  # 57 MB
    with ExitStack() as stack:
        LayerWriters(tmp_path, stack).write(0, "conv", (3, 3), maps)
    peak = peak_mb(
        "from pan.core.scoring import score_layer; score_layer('conv.parquet', 'ks.parquet')", tmp_path
    )
    request = ks_job_mem_mb(tmp_path / "conv.parquet")
    assert peak <= request <= 2 * peak + 200, (peak, request)


@pytest.mark.parametrize("micro_batch", [4, 16])
def test_a_dump_asks_for_at_least_its_peak_and_not_much_more(tmp_path, micro_batch):
    (tmp_path / "wide_net.py").write_text(WIDE_NET)
    spec = ModelSpec(
        "wide", "python", builder=str(tmp_path / "wide_net.py:build"), input_size=160, resize_size=160
    )
    request = dump_mem_mb(layer_shapes(spec), micro_batch)
    (tmp_path / "images").mkdir()
    from conftest import write_images

    write_images(tmp_path / "images", 32)
    code = (
        "from pan.capture.activations import dump_activations; from pan.capture.images import ImageSpec; "
        "from pan.capture.models import ModelSpec; import io; "
        f"spec = ModelSpec('wide', 'python', builder={str(tmp_path / 'wide_net.py:build')!r}, "
        "input_size=160, resize_size=160); "
        f"dump_activations(spec, ImageSpec('folder', 'images', 32, 0), 'dump', micro_batch={micro_batch}, "
        "device='cpu', progress=io.StringIO())"
    )
    peak = peak_mb(code, tmp_path)
    assert json.loads((tmp_path / "dump/manifest.json").read_text())["layers"][0]["height"] == 160
    assert peak <= request <= 2 * peak + 300, (peak, request)


ITEM_NET = """
import torch
from torch import nn


class ItemNet(nn.Module):  # a forward the meta device cannot run; a 2x2 map too small to score
    def __init__(self):
        super().__init__()
        self.late = nn.Conv2d(4, 2, 3, padding=1)
        self.early = nn.Conv2d(3, 4, 3, padding=1, stride=16)

    def forward(self, x):
        assert x.abs().max().item() < 1e6
        return self.late(self.early(x)).mean(dim=(2, 3))


def build():
    return ItemNet()
"""


def test_layer_shapes_fall_back_to_a_cpu_pass_and_mark_maps_too_small_to_score(tmp_path, caplog):

    (tmp_path / "item_net.py").write_text(ITEM_NET)
    spec = ModelSpec("item", "python", builder=f"{tmp_path}/item_net.py:build", input_size=32)
    with caplog.at_level("WARNING"):
        shapes = layer_shapes(spec)
    assert [(r["name"], r["height"], r["scoreable"]) for r in shapes["layers"]] == [
        ("early", 2, False),
        ("late", 2, False),
    ]
    assert "cannot run on the meta device" in caplog.text
    assert "layer early: 2x2 maps have no centre" in caplog.text


def test_a_probe_job_asks_for_at_least_its_peak_and_not_much_more(tmp_path):
    """Origin's strengths (the heavy part of its job) with every neuron a PAN: the PANs' maps
    under four conditions and their bootstrap, not the base, fill memory."""
    from conftest import write_images

    (tmp_path / "wide_net.py").write_text(WIDE_NET)
    write_images(tmp_path / "images", 16)
    builder = str(tmp_path / "wide_net.py:build")
    shapes = layer_shapes(ModelSpec("wide", "python", builder=builder, input_size=96, resize_size=96))
    layers = [layer for layer in shapes["layers"] if layer["scoreable"]]
    pans = {layer["name"]: layer["out_channels"] for layer in layers}
    request = probe_mem_mb(shapes, pans, 4, 16, len(CONDITIONS), 2)
    code = (
        "import polars as pl\n"
        "from pan.beyond.origin import origin_strengths\n"
        "from pan.beyond.probe import configured_strengths\n"
        "from pan.capture.images import ImageSpec\n"
        "from pan.capture.models import ModelSpec\n"
        f"labels = pl.DataFrame([{{'layer': l, 'layer_index': i, 'neuron': n, 'is_pan': True}} "
        f"for i, l in enumerate({list(pans)!r}) for n in range(48)])\n"
        f"spec = ModelSpec('wide', 'python', builder={builder!r}, input_size=96, resize_size=96)\n"
        "table = configured_strengths(origin_strengths, spec, "
        "ImageSpec('folder', 'images', 16, 0), labels, 4, 'cpu', 5, 0, q=0.01, threads=2)\n"
        "assert table.height > 0"
    )
    peak = peak_mb(code, tmp_path)
    assert len(layers) == 3
    assert peak > dump_mem_mb(shapes, 4)  # a forward-pass job's request would not cover it
    assert peak <= request <= 2 * peak + 300, (peak, request)
