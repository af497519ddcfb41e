"""Exported variants load and run without pan, and give pan's outputs; provenance travels along."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from efficientnet_lite_pytorch import EfficientNet
from torch import nn

import pan
from pan.bias.export import (
    PROVENANCE_FILE,
    export_labelled_variant,
    export_variant,
    read_provenance,
    sidecar_path,
)
from pan.bias.reflect import with_reflect_padding
from pan.capture.layers import analysed_layers

# Loads every artefact listed in argv[1] (JSON) with pan unimportable, runs the saved inputs and
# saves outputs and embedded provenance.
LOADER = r"""
import importlib.abc, json, sys

class NoPan(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("pan", "timm", "efficientnet_lite_pytorch"):
            raise ImportError(f"the artefact must load without pan and the model's library: {name}")

sys.meta_path.insert(0, NoPan())
import torch

jobs = json.load(open(sys.argv[1]))
for job in jobs:
    extra = {"pan_provenance.json": ""}
    model = torch.export.load(job["artefact"], extra_files=extra).module()
    inputs = torch.load(job["inputs"])
    with torch.no_grad():
        outputs = [model(x) for x in inputs]
    torch.save(outputs, job["outputs"])
    open(job["provenance"], "w").write(extra["pan_provenance.json"])
assert not [m for m in sys.modules if m == "pan" or m.startswith("pan.")], "pan was imported"
print("loaded", len(jobs))
"""


class TinyZeroPadded(nn.Module):
    """Plain, strided, depthwise and pad-module convs, BatchNorm and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.asym = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(8, 6, 3, stride=2))
        self.head = nn.Linear(6, 4)

    def forward(self, x):
        x = torch.relu(self.bn(self.stem(x)))
        x = self.asym(torch.relu(self.dw(x)))
        return self.head(x.mean(dim=(2, 3)))


def tiny() -> nn.Module:
    torch.manual_seed(0)
    model = TinyZeroPadded()
    nn.init.normal_(model.bn.running_mean)
    return model.eval()


def lite0() -> nn.Module:
    torch.manual_seed(0)
    return EfficientNet.from_name("efficientnet-lite0", num_classes=10).eval()


def tiny_timm() -> nn.Module:
    """timm's TF-"SAME" convs (Conv2dSame where strided) and a MixedConv2d."""
    from timm.layers import create_conv2d

    torch.manual_seed(0)
    return nn.Sequential(
        create_conv2d(3, 8, 3, stride=2, padding="same", bias=True),  # Conv2dSame
        nn.ReLU(),
        create_conv2d(8, 8, [3, 5], stride=1, padding="same", depthwise=True),  # MixedConv2d
        create_conv2d(8, 4, 5, stride=2, padding="same"),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ).eval()


# Reflect padding needs maps larger than their padding: at 64x64 EfficientNet-Lite0's last 5x5
# convs (padding 2) see 2x2 maps, so it is exported at 96x96 (3x3 maps).
MODELS = {"tiny": (tiny, 32), "lite0": (lite0, 96), "timm": (tiny_timm, 24)}


def some_channels(model: nn.Module) -> dict[str, list[int]]:
    """Two channels in every other analysed layer."""
    return {layer.name: [1, layer.out_channels - 2] for layer in analysed_layers(model)[::2]}


def test_exported_variants_run_without_pan(tmp_path: Path) -> None:
    jobs, expected = [], {}
    for name, (build, size) in MODELS.items():
        model = build()
        torch.manual_seed(1)
        example = torch.randn(2, 3, size, size)
        inputs = [torch.randn(3, 3, size, size), torch.randn(1, 3, size, size)]  # other batch sizes
        torch.save(inputs, tmp_path / f"{name}_inputs.pt")
        for variant, channels in (("reflect", None), ("pan_reflect", some_channels(model))):
            artefact = tmp_path / "models" / f"{name}_{variant}.pt2"
            metadata = {"source_model": name, "variant": variant, "theta": 0.5, "pan_count": 7}
            provenance = export_variant(model, channels, example, artefact, metadata)
            assert provenance["dynamic_batch"] and provenance["check_max_abs_diff"] == 0.0
            reference = with_reflect_padding(model, channels).eval()
            with torch.no_grad():
                expected[artefact] = [reference(x) for x in inputs]
                assert not torch.equal(expected[artefact][0], model(inputs[0]))
            jobs.append(
                {
                    "artefact": str(artefact),
                    "inputs": str(tmp_path / f"{name}_inputs.pt"),
                    "outputs": str(tmp_path / f"{name}_{variant}_outputs.pt"),
                    "provenance": str(tmp_path / f"{name}_{variant}_provenance.json"),
                }
            )
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", LOADER, str(tmp_path / "jobs.json")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    for job in jobs:
        artefact = Path(job["artefact"])
        outputs = torch.load(job["outputs"])
        for got, want in zip(outputs, expected[artefact], strict=True):
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)  # exact on one machine
        embedded = json.loads(Path(job["provenance"]).read_text())
        sidecar = json.loads(sidecar_path(artefact).read_text())
        assert embedded == sidecar == read_provenance(artefact)
        name, variant = artefact.stem.split("_", 1)
        size = MODELS[name][1]
        assert {k: sidecar[k] for k in ("source_model", "variant", "theta", "pan_count", "input_size")} == {
            "source_model": name,
            "variant": variant,
            "theta": 0.5,
            "pan_count": 7,
            "input_size": [size, size],
        }
        assert sidecar["pan_version"] == pan.__version__
        assert (sidecar["batch_size"], sidecar["static_batch_reason"]) == (None, None)
        assert (sidecar["reflect_channels"] == "all") == (variant == "reflect")
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == sorted(
        f"{n}_{v}.{ext}" for n in MODELS for v in ("reflect", "pan_reflect") for ext in ("pt2", "json")
    )  # no temporary files left


def test_provenance_defaults_and_labelled_variants(tmp_path: Path) -> None:
    model = tiny()
    example = torch.randn(1, 3, 16, 16)
    provenance = export_variant(model, {"stem": [0, 5], "dw": []}, example, tmp_path / "a.pt2")
    assert provenance["variant"] == "pan_reflect" and provenance["pan_count"] == 2
    assert provenance["reflect_channels"] == {"stem": [0, 5]} and provenance["theta"] is None
    assert provenance["source_model"] == "TinyZeroPadded"
    labels = pl.DataFrame(
        {
            "layer": ["stem"] * 8 + ["dw"] * 8,
            "layer_index": [0] * 8 + [1] * 8,
            "neuron": list(range(8)) * 2,
            "is_pan": [n in (2, 6) for n in range(8)] + [n == 3 for n in range(8)],
            "theta": [0.4] * 16,
        }
    )
    pans = export_labelled_variant(
        model, labels, "pan_reflect", example, tmp_path / "p.pt2", metadata={"source_model": "tiny"}
    )
    assert pans["reflect_channels"] == {"stem": [2, 6], "dw": [3]}
    assert (pans["pan_count"], pans["theta"], pans["source_model"]) == (3, 0.4, "tiny")
    rand = export_labelled_variant(model, labels, "rand_reflect", example, tmp_path / "r.pt2", seed=3)
    assert rand["rand_seed"] == 3 and rand["reflect_channel_count"] == 3
    assert not set(rand["reflect_channels"]["stem"]) & {2, 6}
    program = torch.export.load(tmp_path / "p.pt2").module()
    with torch.no_grad():
        np.testing.assert_array_equal(
            program(example).numpy(),
            with_reflect_padding(model, {"stem": [2, 6], "dw": [3]}).eval()(example).numpy(),
        )
    extra = {PROVENANCE_FILE: ""}
    torch.export.load(tmp_path / "r.pt2", extra_files=extra)
    assert json.loads(extra[PROVENANCE_FILE])["variant"] == "rand_reflect"


def test_unknown_layer_fails_before_writing(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        export_variant(tiny(), {"nope": [0]}, torch.randn(1, 3, 16, 16), tmp_path / "x.pt2")
    assert not list(tmp_path.iterdir())


def test_falls_back_to_a_static_batch(tmp_path: Path, monkeypatch) -> None:
    real_export = torch.export.export

    def no_dynamic_shapes(*args, dynamic_shapes=None, **kwargs):
        if dynamic_shapes is not None:
            raise RuntimeError("pretend the batch cannot be dynamic")
        return real_export(*args, **kwargs)

    monkeypatch.setattr(torch.export, "export", no_dynamic_shapes)
    example = torch.randn(2, 3, 16, 16)
    provenance = export_variant(tiny(), None, example, tmp_path / "s.pt2")
    assert (provenance["dynamic_batch"], provenance["batch_size"]) == (False, 2)
    assert "pretend the batch cannot be dynamic" in provenance["static_batch_reason"]
    assert json.loads(sidecar_path(tmp_path / "s.pt2").read_text()) == provenance
    program = torch.export.load(tmp_path / "s.pt2").module()
    program(example)
    with pytest.raises(Exception):  # noqa: B017 - torch raises its own guard error types
        program(torch.randn(3, 3, 16, 16))


def test_an_example_batch_of_1_gives_an_artefact_that_takes_any_batch(tmp_path: Path) -> None:
    # torch.export specialises a dimension of size 1; the export traces a batch of 2 instead.
    model = tiny()
    labels = pl.DataFrame(
        {
            "layer": ["stem"] * 8,
            "layer_index": [0] * 8,
            "neuron": list(range(8)),
            "is_pan": [n < 2 for n in range(8)],
        }
    )
    example = torch.randn(1, 3, 32, 32)
    provenance = export_labelled_variant(model, labels, "pan_reflect", example, tmp_path / "t.pt2")
    assert (provenance["dynamic_batch"], provenance["batch_size"], provenance["static_batch_reason"]) == (
        True,
        None,
        None,
    )
    assert provenance["input_shape"] == [1, 3, 32, 32] and provenance["check_max_abs_diff"] == 0.0
    program = torch.export.load(tmp_path / "t.pt2").module()
    batch = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            program(batch), with_reflect_padding(model, {"stem": [0, 1]}).eval()(batch)
        )
        assert program(example).shape == (1, 4)


def test_a_static_batch_asked_for_says_so_in_the_provenance(tmp_path: Path) -> None:
    provenance = export_variant(
        tiny(), None, torch.randn(1, 3, 16, 16), tmp_path / "s.pt2", dynamic_batch=False
    )
    assert (provenance["dynamic_batch"], provenance["batch_size"]) == (False, 1)
    assert provenance["static_batch_reason"] == "asked for (dynamic_batch=False)"
