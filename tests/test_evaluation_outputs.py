"""Models returning a tuple, a namedtuple or a dict: which part is the logits (issue 10)."""

from __future__ import annotations

import io
from collections import OrderedDict, namedtuple
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from conftest import write_images

from pan.bias.evaluation import LOGIT_KEYS, evaluate_variants, output_logits
from pan.bias.logits import read_logits
from pan.capture.images import ImageSpec
from pan.capture.models import ModelSpec

LOGITS = torch.arange(6.0).reshape(3, 2)
AUX = torch.full((3, 2), -1.0)
Pair = namedtuple("Pair", ["logits", "aux"])
AuxFirst = namedtuple("AuxFirst", ["name", "aux", "logits"])


def test_logit_keys():
    assert LOGIT_KEYS == ("logits", "out")


def test_a_tensor_is_taken_as_is():
    assert output_logits(LOGITS) is LOGITS
    assert output_logits(LOGITS, "logits") is LOGITS  # a key is not needed, and harmless


@pytest.mark.parametrize("output", [(LOGITS, AUX), [LOGITS, AUX], ("not a tensor", LOGITS, AUX)])
def test_a_tuple_or_list_gives_its_first_tensor(output):
    assert output_logits(output) is LOGITS


def test_a_namedtuple_gives_its_first_tensor_field_or_the_named_one():
    assert output_logits(Pair(LOGITS, AUX)) is LOGITS
    assert output_logits(AuxFirst("x", AUX, LOGITS)) is AUX  # first tensor: name the field instead
    assert output_logits(AuxFirst("x", AUX, LOGITS), "logits") is LOGITS


def test_googlenet_training_output_gives_the_main_logits():
    from torchvision.models import GoogLeNetOutputs

    assert output_logits(GoogLeNetOutputs(LOGITS, AUX, AUX)) is LOGITS


def test_a_dict_gives_its_key_or_logits_or_out():
    assert output_logits({"aux": AUX, "logits": LOGITS}) is LOGITS
    assert output_logits({"aux": AUX, "out": LOGITS}) is LOGITS
    assert output_logits(OrderedDict(out=AUX, logits=LOGITS)) is LOGITS  # 'logits' before 'out'
    assert output_logits({"aux": AUX, "scores": LOGITS}, "scores") is LOGITS


def test_a_dict_without_a_known_key_is_refused_listing_its_keys():
    with pytest.raises(ValueError) as error:
        output_logits({"aux": AUX, "scores": LOGITS}, model="det")
    assert str(error.value) == (
        "model 'det' returns a dict with keys ['aux', 'scores'], none of them 'logits' or 'out'; "
        "set the model's 'output' to the key that holds the logits"
    )


def test_a_dict_without_the_given_key_is_refused():
    with pytest.raises(ValueError) as error:
        output_logits({"aux": AUX, "logits": LOGITS}, "scores", model="det")
    assert str(error.value) == (
        "model 'det' returns a dict without the output key 'scores'; its keys: ['aux', 'logits']; "
        "set the model's 'output' to one of them"
    )


def test_a_key_for_a_plain_tuple_is_refused():
    with pytest.raises(ValueError) as error:
        output_logits((LOGITS, AUX), "logits", model="m")
    assert str(error.value) == (
        "model 'm' returns a tuple, whose elements have no names; remove the model's 'output' "
        "('logits'): the first tensor element is taken"
    )


def test_a_namedtuple_without_the_given_field_is_refused():
    with pytest.raises(ValueError) as error:
        output_logits(Pair(LOGITS, AUX), "scores", model="m")
    assert (
        str(error.value)
        == "model 'm' returns a Pair without the field 'scores'; its fields: ['logits', 'aux']"
    )


def test_a_tuple_without_tensors_is_refused():
    with pytest.raises(ValueError) as error:
        output_logits(("a", 1), model="m")
    assert str(error.value) == "model 'm' returns a tuple with no tensor in it"


def test_other_outputs_are_refused():
    with pytest.raises(ValueError) as error:
        output_logits("logits", model="m")
    assert str(error.value) == "model 'm' returns a str, not a tensor, tuple, namedtuple or dict of tensors"
    with pytest.raises(ValueError) as error:
        output_logits({"logits": [1.0, 2.0]}, model="m")
    assert str(error.value) == "model 'm': the chosen output is a list, not a tensor of logits"


def test_logits_that_are_not_two_dimensional_are_refused_with_their_shape():
    with pytest.raises(ValueError) as error:
        output_logits({"out": torch.zeros(3, 2, 4, 4)}, model="seg")
    assert str(error.value) == (
        "model 'seg' outputs logits of shape (3, 2, 4, 4), not (images, classes); "
        "set the model's 'output' to the entry that holds the class logits"
    )
    with pytest.raises(ValueError) as error:
        output_logits(torch.zeros(3), model="m")
    assert (
        str(error.value)
        == "model 'm' outputs logits of shape (3,), not (images, classes); pan evaluates classifiers only"
    )


NETS = """
from collections import namedtuple

import torch
from torch import nn

Outputs = namedtuple("Outputs", ["logits", "aux_logits"])


class Net(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)
        generator = torch.Generator().manual_seed(0)
        for layer in (self.conv, self.head):
            layer.weight.data = torch.randn(layer.weight.shape, generator=generator)
            layer.bias.data = torch.randn(layer.bias.shape, generator=generator)

    def forward(self, x):
        logits = self.head(self.conv(x).mean(dim=(2, 3)))
        aux = torch.zeros_like(logits)
        return {
            "tensor": lambda: logits,
            "tuple": lambda: (logits, aux),
            "namedtuple": lambda: Outputs(logits, aux),
            "dict": lambda: {"aux": aux, "logits": logits},
            "keyed": lambda: {"aux": aux, "scores": logits},
        }[self.kind]()


def build(kind="tensor"):
    return Net(kind)


def tuple_net():
    return Net("tuple")


def namedtuple_net():
    return Net("namedtuple")


def dict_net():
    return Net("dict")


def keyed_net():
    return Net("keyed")
"""


def _evaluate(tmp_path: Path, builder: str, output_key: str | None = None) -> np.ndarray:
    net_file = tmp_path / "nets.py"
    if not net_file.exists():
        net_file.write_text(NETS)
        write_images(tmp_path / "images", 8)
        labels = [{"layer": "conv", "layer_index": 0, "neuron": n, "is_pan": n == 1} for n in range(4)]
        schema = {"layer": pl.String, "layer_index": pl.Int32, "neuron": pl.Int32, "is_pan": pl.Boolean}
        pl.DataFrame(labels, schema=schema).write_parquet(tmp_path / "pans.parquet")
    spec = ModelSpec(
        name=builder,
        source="python",
        builder=f"{net_file}:{builder}",
        input_size=32,
        resize_size=32,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        categories=("a", "b"),
        output=output_key,
    )
    images = ImageSpec("folder", str(tmp_path / "images"), None, 0)
    outputs = {v: tmp_path / f"{builder}_{v}.parquet" for v in ("original", "pan_reflect")}
    count = evaluate_variants(
        spec,
        images,
        tmp_path / "pans.parquet",
        outputs,
        micro_batch=4,
        device="cpu",
        progress=io.StringIO(),
    )
    assert count == 8
    return np.stack([read_logits(outputs[v]).logits for v in ("original", "pan_reflect")])


def test_evaluate_variants_takes_the_logits_of_every_output_kind(tmp_path):
    expected = _evaluate(tmp_path, "build")
    assert expected.shape == (2, 8, 2) and np.abs(expected).sum() > 0
    for builder in ("tuple_net", "namedtuple_net", "dict_net"):
        np.testing.assert_array_equal(_evaluate(tmp_path, builder), expected)
    np.testing.assert_array_equal(_evaluate(tmp_path, "keyed_net", output_key="scores"), expected)


def test_evaluate_variants_refuses_a_dict_without_known_keys(tmp_path):
    with pytest.raises(ValueError) as error:
        _evaluate(tmp_path, "keyed_net")
    assert str(error.value) == (
        "model 'keyed_net' returns a dict with keys ['aux', 'scores'], none of them 'logits' or 'out'; "
        "set the model's 'output' to the key that holds the logits"
    )


def test_nan_logits_and_probabilities_are_refused():
    logits = torch.tensor([[1.0, -2.0], [float("nan"), 0.0]])
    with pytest.raises(ValueError, match="NaN or infinite logits for 1 of 2 images"):
        output_logits(logits, model="m")
    with pytest.raises(ValueError, match="outputs probabilities"):
        output_logits(torch.softmax(torch.randn(4, 3), dim=1), model="m")
    log_probabilities = torch.log_softmax(torch.randn(4, 3), dim=1)
    assert output_logits(log_probabilities, model="m") is log_probabilities
