"""``source: onnx``: ONNX graphs exported here from nets with planted PANs and explicit Pad nodes."""

from __future__ import annotations

import polars as pl
import pytest
import torch
import torch.nn.functional as F
from test_api import TINY_TRANSFORM, tiny_batch
from tiny_net import build
from torch import nn

import pan
from pan.bias.reflect import with_reflect_padding
from pan.capture.layers import analysed_layers
from pan.capture.models import ModelSpec, ModelSpecError, load_model
from pan.capture.padding import layer_padding

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnx2torch")


def export(net: nn.Module, example: torch.Tensor, path) -> str:
    """``net`` as an ONNX file with a dynamic batch (TorchScript exporter: no onnxscript needed)."""
    torch.onnx.export(
        net.eval(),
        (example,),
        str(path),
        dynamo=False,
        opset_version=17,  # onnx2torch 1.5 converts ConstantOfShape up to opset 17 (open_nsfw's)
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
    )
    return str(path)


def onnx_spec(path: str, **extra) -> ModelSpec:
    entry = {"source": "onnx", "path": path, "mean": [0, 0, 0], "std": [1, 1, 1], "resize_size": 32}
    return ModelSpec.from_config("converted", entry | extra)


def test_an_exported_tiny_net_gets_the_labels_of_its_pytorch_original(tiny_workdir, tmp_path):
    path = export(build(), torch.rand(1, 3, 32, 32), tmp_path / "tiny.onnx")
    assert "Pad" in {node.op_type for node in onnx.load(path).graph.node}  # the explicit ZeroPad2d
    converted = load_model(onnx_spec(path))
    assert converted.input_size == 32
    layers = analysed_layers(converted.model)
    assert len(layers) == len(analysed_layers(build())) == 3
    assert {layer_padding(converted.model, layer.name) for layer in layers} == {"zeros", "none"}
    padded = [
        layer
        for layer in layers
        if isinstance(converted.model.get_submodule(layer.name.rpartition(".")[0]), nn.Sequential)
    ]
    assert len(padded) == 1  # the asymmetric pad sits in a Sequential right before its conv
    assert tuple(converted.model.get_submodule(padded[0].name.rpartition(".")[0])[0].padding) == (0, 1, 0, 1)

    images = tiny_batch(tiny_workdir)
    columns = ["layer_index", "neuron", "is_edge_detector", "is_pan", "pan_type"]
    original = pan.find_pans(build(), images, device="cpu", transform=TINY_TRANSFORM)
    labels = pan.find_pans(converted.model, images, device="cpu", transform=converted.transform)
    assert labels.select(columns).equals(original.select(columns))
    assert labels["is_pan"].sum() == original["is_pan"].sum() > 0

    # Every variant reflects the folded Pad exactly as pan reflects the PyTorch original's ZeroPad2d.
    batch = torch.stack([TINY_TRANSFORM(image) for image in images])
    pans = original.filter(pl.col("is_pan"))
    channels = {
        layer: pans.filter(pl.col("layer") == layer)["neuron"].to_list() for layer in pans["layer"].unique()
    }
    names = dict(
        zip([layer.name for layer in analysed_layers(build())], [layer.name for layer in layers], strict=True)
    )
    with torch.no_grad():
        for selection in (None, channels):
            converted_selection = None if selection is None else {names[k]: v for k, v in selection.items()}
            expected = with_reflect_padding(build().eval(), selection)(batch)
            got = with_reflect_padding(converted.model, converted_selection)(batch)
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
            assert not torch.allclose(got, converted.model(batch))


class NHWCStem(nn.Module):
    """A TF/Caffe-style export: NHWC input, a zero Pad in NHWC before the stem, softmax output."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.stem = nn.Conv2d(3, 4, 7, stride=2, bias=False)
        self.stem.weight.data = torch.randn(self.stem.weight.shape, generator=generator)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        padded = F.pad(x, (0, 0, 3, 3, 3, 3))  # W and H of an NHWC tensor
        features = self.stem(padded.permute(0, 3, 1, 2))
        return torch.softmax(self.head(features.mean(dim=(2, 3))), dim=1)


def test_an_nhwc_graph_with_a_stem_pad_and_a_softmax(tmp_path):
    net = NHWCStem().eval()
    path = export(net, torch.rand(1, 32, 32, 3), tmp_path / "nhwc.onnx")
    converted = load_model(onnx_spec(path))  # layout and size read from the graph
    (stem,) = analysed_layers(converted.model)
    assert stem.conv.padding == (3, 3) and layer_padding(converted.model, stem.name) == "zeros"
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        logits = converted.model(x)  # NCHW in, logits out: the final softmax is dropped
        torch.testing.assert_close(logits.softmax(dim=1), net(x.permute(0, 2, 3, 1)), rtol=1e-5, atol=1e-6)
        reflected = F.conv2d(F.pad(x, (3, 3, 3, 3), mode="reflect"), net.stem.weight, stride=2)
        expected = net.head(reflected.mean(dim=(2, 3)))
        torch.testing.assert_close(with_reflect_padding(converted.model)(x), expected, rtol=1e-5, atol=1e-5)


def test_a_graph_that_does_not_convert_fails_naming_the_node(tmp_path):
    from onnx import TensorProto, helper

    node = helper.make_node("NoSuchOperator", ["x"], ["y"], name="the_bad_node")
    graph = helper.make_graph(
        [node],
        "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(ModelSpecError, match="the_bad_node.*NoSuchOperator"):
        load_model(onnx_spec(str(path)))


def test_onnx_specs_are_checked_before_any_conversion(tmp_path):
    with pytest.raises(ModelSpecError, match="need 'path'"):
        ModelSpec.from_config("m", {"source": "onnx"})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ModelSpec.from_config("m", {"source": "onnx", "path": str(tmp_path / "missing.onnx")})
    with pytest.raises(FileNotFoundError, match="not installed"):
        ModelSpec.from_config("m", {"source": "onnx", "package": "no_such_package_here", "path": "m.onnx"})
    with pytest.raises(ModelSpecError, match="channel_order is for onnx and python"):
        ModelSpec.from_config(
            "m", {"source": "efficientnet_lite", "variant": "lite0", "channel_order": "bgr"}
        )
