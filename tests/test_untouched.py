"""pan.untouched and every public function of pan that takes a model: the user's model comes
back with the same state dict, mode, device, dtype and hooks, also when pan refuses it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_net import build

import pan
from pan.capture.untouched import borrowed, first_input, unwrapped


def _snapshot(model: torch.nn.Module) -> dict:
    return {
        "state": {k: (v.detach().clone(), v.device, v.dtype) for k, v in model.state_dict().items()},
        "modes": [m.training for m in model.modules()],
        "hooks": [
            (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
            for m in model.modules()
        ],
        "params": [id(p) for p in model.parameters()],
    }


def _assert_same(before: dict, model: torch.nn.Module) -> None:
    after = _snapshot(model)
    assert after["modes"] == before["modes"]
    assert after["hooks"] == before["hooks"]
    assert after["params"] == before["params"]
    assert before["state"].keys() == after["state"].keys()
    for key, (value, device, dtype) in before["state"].items():
        new_value, new_device, new_dtype = after["state"][key]
        assert (new_device, new_dtype) == (device, dtype), key
        assert torch.equal(new_value, value), key


def _user_model(dtype=torch.float32) -> torch.nn.Module:
    """The tiny net as a user has it: in training mode, a hook of their own, any dtype."""
    model = build().to(dtype).train()
    model.conv1.register_forward_hook(lambda *args: None)
    return model


def _batch(dtype=torch.float32) -> torch.Tensor:
    return torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_find_pans_hands_the_model_back_as_it_came(dtype):
    model = _user_model(dtype)
    before = _snapshot(model)
    labels = pan.find_pans(model, _batch(), device="cpu")  # a float32 batch for a bf16 model too
    assert labels.height == 12 + 2 + 3
    _assert_same(before, model)


def test_find_pans_hands_the_model_back_when_it_refuses():
    model = _user_model()
    before = _snapshot(model)
    with pytest.raises(ValueError, match="meta"):
        pan.find_pans(model, _batch(), device="meta")
    with pytest.raises(ValueError, match="failed on its first input"):
        pan.find_pans(model, torch.rand(8, 1, 32, 32), device="cpu")  # one channel for three
    _assert_same(before, model)


def test_with_reflect_padding_and_analysed_layers_leave_the_model_alone():
    model = _user_model()
    before = _snapshot(model)
    variant = pan.with_reflect_padding(model)
    variant(_batch())
    layers = pan.analysed_layers(model, _batch()[:1])
    assert [layer.name for layer in layers] == ["conv1", "valid", "asymmetric.1"]
    _assert_same(before, model)


def test_the_model_free_functions_take_no_model():
    maps = np.random.default_rng(0).normal(size=(8, 2, 6, 6)).astype(np.float32)
    stats = pan.border_ks(
        maps[:, :, 0, :].transpose(1, 0, 2).reshape(2, -1),
        maps[:, :, 2:4, 2:4].transpose(1, 0, 2, 3).reshape(2, -1),
    )
    assert stats.ks.shape == (2,)
    assert pan.label_pans  # relabelling reads KS tables only (tests/test_labelling.py)
    assert set(pan.__all__) == {
        "BORDERS",
        "PAN_TYPES",
        "BorderKS",
        "analysed_layers",
        "border_ks",
        "find_pans",
        "label_pans",
        "with_reflect_padding",
    }, "a new public function that takes a model needs its test here"


def test_borrowed_restores_mode_and_device_on_errors():
    model = _user_model()
    before = _snapshot(model)
    with pytest.raises(RuntimeError), borrowed(model, torch.device("cpu")):
        assert not model.training
        raise RuntimeError("the forward pass failed")
    _assert_same(before, model)


def test_a_compiled_model_is_run_uncompiled_and_a_compiled_part_is_refused():
    model = build()
    assert unwrapped(torch.compile(model)) is model
    model.conv1 = torch.compile(model.conv1)
    with pytest.raises(ValueError, match=r"\['conv1'\] .* torch.compile"):
        pan.find_pans(model, _batch(), device="cpu")


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64])
def test_integer_tensor_batches_are_refused_saying_how_to_convert(dtype):
    with pytest.raises(ValueError, match=r"float\(\) / 255"):
        first_input("tiny", list((_batch() * 255).to(dtype)), lambda image: image)
    with pytest.raises(ValueError, match=f"{dtype}"):
        pan.find_pans(build(), (_batch() * 255).to(dtype), device="cpu")
