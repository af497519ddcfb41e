"""take_away's export of an ONNX model's variants: a ``.pt2`` where ``torch.export`` can trace
the converted graph, else the state dict, with the provenance saying why (never a failed job).

The refusal is real: onnx2torch converts an ONNX ``Resize`` whose sizes come from the input's
``Shape`` (how dense models such as PP-OCRv4's detector upsample back to the input size) into
a module that reads the sizes' values, which ``torch.export`` cannot trace."""

from __future__ import annotations

import json

import polars as pl
import pytest
import torch
import torch.nn.functional as F
import yaml
from conftest import tiny_config
from test_onnx import export, onnx_spec
from tiny_net import build
from torch import nn

from pan.bias.export import export_variant, load_variant_state, sidecar_path, state_dict_path
from pan.bias.reflect import with_reflect_padding
from pan.capture.layers import analysed_layers
from pan.capture.models import load_model
from pan.workflow.run import run_workflow

pytest.importorskip("onnx")
pytest.importorskip("onnx2torch")


class Upsampling(nn.Module):
    """A dense head: a zero-padded conv, an explicit asymmetric zero Pad before a stride-2 conv,
    and a bilinear resize back to the input's size (seeded random weights)."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.down = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(6, 4, 3, stride=2))
        self.head = nn.Conv2d(4, 1, 1)
        for layer in (self.conv, self.down[1], self.head):
            layer.weight.data = torch.randn(layer.weight.shape, generator=generator)

    def forward(self, x):
        y = self.head(torch.relu(self.down(torch.relu(self.conv(x)))))
        return torch.sigmoid(F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False))


def test_a_variant_torch_export_refuses_keeps_its_state_dict(tmp_path):
    path = export(Upsampling(), torch.rand(1, 3, 32, 32), tmp_path / "dense.onnx")
    converted = load_model(onnx_spec(path))
    first, second = (layer.name for layer in analysed_layers(converted.model))
    channels = {first: [1, 4], second: [2]}
    example = torch.rand(2, 3, 32, 32)
    with pytest.raises(Exception):  # noqa: B017 - torch's own error: the converted Resize
        torch.export.export(with_reflect_padding(converted.model, channels).eval(), (example,))

    artefact = tmp_path / "models" / "dense_pan_reflect.pt2"
    artefact.parent.mkdir()
    with pytest.raises(Exception):  # noqa: B017 - as asked for (repair's export, which declares its .pt2)
        export_variant(converted.model, channels, example, artefact, state_dict_fallback=False)
    assert not list(artefact.parent.iterdir())
    artefact.write_bytes(b"an earlier export")  # must not be left beside a state dict
    metadata = {"source_model": "dense", "variant": "pan_reflect"}
    provenance = export_variant(converted.model, channels, example, artefact, metadata)
    assert sorted(p.name for p in artefact.parent.iterdir()) == [
        "dense_pan_reflect.json",
        "dense_pan_reflect.state_dict.pt",
    ]  # no .pt2, no temporary files
    assert json.loads(sidecar_path(artefact).read_text()) == provenance
    assert provenance["artefact"] == state_dict_path(artefact).name == "dense_pan_reflect.state_dict.pt"
    assert provenance["export_error"].startswith("torch.export could not export the variant: ")
    assert (provenance["dynamic_batch"], provenance["batch_size"], provenance["static_batch_reason"]) == (
        None,
        None,
        None,
    )
    assert provenance["reflect_channels"] == channels and provenance["reflect_channel_count"] == 3
    assert provenance["check_max_abs_diff"] == 0.0

    # A randomly initialised conversion of the same file takes the saved weights: pan's variant.
    fresh = load_model(onnx_spec(path, pretrained=False)).model
    x = torch.rand(3, 3, 40, 48)  # the state dict takes any batch and any size the graph takes
    with torch.no_grad():
        expected = with_reflect_padding(converted.model, channels).eval()(x)
        assert not torch.allclose(expected, converted.model(x))  # the variant changes the output
        assert not torch.allclose(with_reflect_padding(fresh, channels).eval()(x), expected)
        before = {k: v.clone() for k, v in fresh.state_dict().items()}
        rebuilt = load_variant_state(fresh, sidecar_path(artefact))
        torch.testing.assert_close(rebuilt(x), expected, rtol=0, atol=0)
    assert all(torch.equal(v, before[k]) for k, v in fresh.state_dict().items())  # fresh unchanged


def test_a_converted_graph_torch_export_can_trace_still_gives_a_pt2(tmp_path):
    path = export(build(), torch.rand(1, 3, 32, 32), tmp_path / "tiny.onnx")
    converted = load_model(onnx_spec(path))
    artefact = tmp_path / "tiny_reflect.pt2"
    state_dict_path(artefact).write_bytes(b"an earlier fallback")
    example = torch.rand(2, 3, 32, 32)
    provenance = export_variant(converted.model, None, example, artefact)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["tiny.onnx", "tiny_reflect.json", "tiny_reflect.pt2"]
    assert (provenance["artefact"], provenance["export_error"]) == ("tiny_reflect.pt2", None)
    assert provenance["dynamic_batch"] and provenance["check_max_abs_diff"] == 0.0
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            torch.export.load(artefact).module()(x), with_reflect_padding(converted.model).eval()(x)
        )
    with pytest.raises(ValueError, match="torch.export.load"):
        load_variant_state(converted.model, sidecar_path(artefact))


def test_take_away_exports_what_it_can_and_keeps_state_dicts_otherwise(tiny_workdir):
    """The export rule, on an ONNX dense model whose variants torch.export refuses and on an
    ONNX classifier whose variants it exports: both jobs succeed, each says what it wrote."""
    export(Upsampling(), torch.rand(1, 3, 32, 32), tiny_workdir / "dense.onnx")
    export(build(), torch.rand(1, 3, 32, 32), tiny_workdir / "classifier.onnx")
    spec = {"source": "onnx", "mean": [0, 0, 0], "std": [1, 1, 1], "resize_size": 32}
    models = {"dense": spec | {"path": "dense.onnx"}, "classifier": spec | {"path": "classifier.onnx"}}
    (tiny_workdir / "config.yaml").write_text(yaml.safe_dump(tiny_config(models=models)))
    targets = [f"results/models/{m}_{v}.json" for m in models for v in ("reflect", "pan_reflect")]
    run_workflow(tiny_workdir, *targets)
    folder = tiny_workdir / "results/models"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"classifier_{v}.{ext}" for v in ("reflect", "pan_reflect") for ext in ("json", "pt2")]
        + [f"dense_{v}.{ext}" for v in ("reflect", "pan_reflect") for ext in ("json", "state_dict.pt")]
    )
    labels = pl.read_parquet(tiny_workdir / "results/pans/dense.parquet")
    for variant in ("reflect", "pan_reflect"):
        dense = json.loads((folder / f"dense_{variant}.json").read_text())
        assert dense["export_error"] and dense["artefact"] == f"dense_{variant}.state_dict.pt"
        assert (dense["source_model"], dense["variant"]) == ("dense", variant)
        assert dense["pan_count"] == labels["is_pan"].sum() and dense["check_max_abs_diff"] == 0.0
        classifier = json.loads((folder / f"classifier_{variant}.json").read_text())
        assert classifier["export_error"] is None and classifier["artefact"] == f"classifier_{variant}.pt2"
    log = (tiny_workdir / "results/logs/export/dense_reflect.log").read_text()
    assert "torch.export could not export the variant" in log and "state dict" in log
