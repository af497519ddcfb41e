"""Per-channel reflect padding equals its definition: two plain convs picked per channel."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from efficientnet_lite_pytorch import EfficientNet
from efficientnet_lite_pytorch.utils import (
    Conv2dDynamicSamePadding,
    Conv2dStaticSamePadding,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from pan.bias.reflect import ChannelPaddedConv2d, with_reflect_padding
from pan.capture.layers import analysed_layers
from pan.capture.padding import layer_padding, zero_padding

TIGHT = {"rtol": 1e-12, "atol": 1e-12}  # float64 throughout
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


def reference_output(
    conv: nn.Conv2d, x: Tensor, pads: tuple[int, ...], reflect_channels: list[int]
) -> Tensor:
    """The definition: reflect-padded and zero-padded plain convs (padding 0), picked per channel."""

    def plain_conv(padded: Tensor) -> Tensor:
        return F.conv2d(padded, conv.weight, conv.bias, conv.stride, 0, conv.dilation, conv.groups)

    zero = plain_conv(F.pad(x, pads))
    reflect = plain_conv(F.pad(x, pads, mode="reflect"))
    use_reflect = torch.zeros(conv.out_channels, dtype=torch.bool)
    use_reflect[reflect_channels] = True
    return torch.where(use_reflect[None, :, None, None], reflect, zero)


class ReferenceChannelPadded(nn.Module):
    """A slow, obviously correct stand-in for ChannelPaddedConv2d with known pads."""

    def __init__(self, conv: nn.Conv2d, pads: tuple[int, ...], reflect_channels: list[int]) -> None:
        super().__init__()
        self.conv, self.pads, self.reflect_channels = conv, pads, reflect_channels

    def forward(self, x: Tensor) -> Tensor:
        return reference_output(self.conv, x, self.pads, self.reflect_channels)


# name: (conv factory, input (height, width), expected zero pads (left, right, top, bottom), some channels)
CONV_CASES: dict[str, tuple[Callable[[], nn.Conv2d], tuple[int, int], tuple[int, ...], list[int]]] = {
    "plain": (lambda: nn.Conv2d(4, 6, 3, padding=1), (9, 9), (1, 1, 1, 1), [0, 3, 5]),
    "no_bias": (
        lambda: nn.Conv2d(4, 6, 3, padding=1, bias=False),
        (7, 8),
        (1, 1, 1, 1),
        [2],
    ),
    "groups2_both": (
        lambda: nn.Conv2d(8, 6, 3, padding=1, groups=2),
        (9, 9),
        (1, 1, 1, 1),
        [1, 4],
    ),
    "groups2_one": (
        lambda: nn.Conv2d(8, 6, 3, padding=1, groups=2),
        (9, 9),
        (1, 1, 1, 1),
        [4, 5],
    ),
    "groups4": (
        lambda: nn.Conv2d(8, 12, 3, padding=1, groups=4),
        (9, 9),
        (1, 1, 1, 1),
        [2, 3, 10],
    ),
    "depthwise": (
        lambda: nn.Conv2d(6, 6, 3, padding=1, groups=6),
        (9, 9),
        (1, 1, 1, 1),
        [0, 5],
    ),
    "depthwise_x2": (
        lambda: nn.Conv2d(4, 8, 3, padding=1, groups=4),
        (9, 9),
        (1, 1, 1, 1),
        [1, 2, 7],
    ),
    "stride2_odd": (
        lambda: nn.Conv2d(4, 6, 3, stride=2, padding=1),
        (9, 9),
        (1, 1, 1, 1),
        [1, 2],
    ),
    "stride2_even": (
        lambda: nn.Conv2d(4, 6, 3, stride=2, padding=1),
        (10, 10),
        (1, 1, 1, 1),
        [1, 2],
    ),
    "dilated": (
        lambda: nn.Conv2d(4, 6, 3, padding=2, dilation=2),
        (9, 9),
        (2, 2, 2, 2),
        [0, 4],
    ),
    "kernel_3x5": (
        lambda: nn.Conv2d(4, 6, (3, 5), padding=(1, 2)),
        (8, 9),
        (2, 2, 1, 1),
        [3],
    ),
    "same_even_kernel": (
        lambda: nn.Conv2d(4, 6, 4, padding="same"),
        (9, 9),
        (1, 2, 1, 2),
        [0, 5],
    ),
    "same_4x2_dilated": (
        lambda: nn.Conv2d(4, 6, (4, 2), padding="same", dilation=(1, 2)),
        (9, 8),
        (1, 1, 1, 2),
        [2],
    ),
    "valid": (lambda: nn.Conv2d(4, 6, 3, padding="valid"), (9, 9), (0, 0, 0, 0), [1]),
    "static_same_stride2": (
        lambda: Conv2dStaticSamePadding(4, 6, 3, stride=2, image_size=10),
        (10, 10),
        (0, 1, 0, 1),
        [0, 2],
    ),
    "static_same_depthwise_5x5": (
        lambda: Conv2dStaticSamePadding(6, 6, 5, stride=2, groups=6, bias=False, image_size=(10, 9)),
        (10, 9),
        (2, 2, 1, 2),
        [3, 4],
    ),
    "static_same_identity": (
        lambda: Conv2dStaticSamePadding(4, 6, 1, stride=1, image_size=9),
        (9, 9),
        (0, 0, 0, 0),
        [1],
    ),
    "dynamic_same_stride2": (
        lambda: Conv2dDynamicSamePadding(4, 6, 3, stride=2),
        (10, 9),
        (1, 1, 0, 1),
        [5],
    ),
}


def make_case(name: str) -> tuple[nn.Conv2d, Tensor, tuple[int, ...], list[int]]:
    factory, size, pads, channels = CONV_CASES[name]
    torch.manual_seed(0)
    conv = factory().double().eval()
    x = torch.randn(2, conv.in_channels, *size, dtype=torch.float64)
    return conv, x, pads, channels


@pytest.mark.parametrize("name", CONV_CASES)
def test_zero_padding_reproduces_the_conv(name: str) -> None:
    conv, x, pads, _ = make_case(name)
    assert zero_padding(conv, input_size=tuple(x.shape[-2:])) == pads
    torch.testing.assert_close(conv(x), reference_output(conv, x, pads, []), **TIGHT)


@pytest.mark.parametrize("name", CONV_CASES)
@pytest.mark.parametrize("selection", ["some", "all"])
def test_channel_padded_conv_matches_reference(name: str, selection: str) -> None:
    conv, x, pads, some = make_case(name)
    channels = some if selection == "some" else list(range(conv.out_channels))
    padded = ChannelPaddedConv2d(conv, channels)
    torch.testing.assert_close(padded(x), reference_output(conv, x, pads, channels), **TIGHT)


@pytest.mark.parametrize("name", CONV_CASES)
def test_no_channel_selected_is_the_original_conv(name: str) -> None:
    conv, x, _, _ = make_case(name)
    assert torch.equal(ChannelPaddedConv2d(conv, [])(x), conv(x))


def test_mask_and_indices_select_the_same_channels() -> None:
    conv, x, _, _ = make_case("groups4")
    mask = torch.zeros(conv.out_channels, dtype=torch.bool)
    mask[[2, 3, 10]] = True
    torch.testing.assert_close(
        ChannelPaddedConv2d(conv, mask)(x), ChannelPaddedConv2d(conv, [10, 2, 3, 3])(x)
    )


def test_shares_parameters_and_only_touches_selected_groups() -> None:
    conv, _, _, _ = make_case("groups4")
    padded = ChannelPaddedConv2d(conv, [1, 2, 10])  # output groups of 3: groups 0 and 3
    assert list(padded.parameters()) == [conv.weight, conv.bias]
    assert padded.reflect_groups == 2
    assert "reflect_channels=3/12" in repr(padded)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    groups=st.sampled_from([1, 2, 3]),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 2),
    padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    size=st.tuples(st.integers(7, 10), st.integers(7, 10)),  # >= the largest dilated kernel, 7
    data=st.data(),
)
def test_any_conv_matches_reference(groups, kernel, stride, dilation, padding, size, data) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(2 * groups, 2 * groups, kernel, stride, padding, dilation, groups).double()
    x = torch.randn(1, conv.in_channels, *size, dtype=torch.float64)
    channels = data.draw(st.lists(st.integers(0, conv.out_channels - 1), unique=True))
    pads = (padding[1], padding[1], padding[0], padding[0])
    torch.testing.assert_close(
        ChannelPaddedConv2d(conv, channels)(x),
        reference_output(conv, x, pads, channels),
        **TIGHT,
    )


def test_rejects_what_reflect_cannot_do() -> None:
    with pytest.raises(ValueError, match="not zeros"):
        ChannelPaddedConv2d(nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"), [0])
    with pytest.raises(ValueError, match="pass input_size"):
        zero_padding(Conv2dDynamicSamePadding(2, 2, 3))
    with pytest.raises(IndexError):
        ChannelPaddedConv2d(nn.Conv2d(2, 2, 3, padding=1), [2])
    with pytest.raises(ValueError, match="reflect padding"):
        ChannelPaddedConv2d(nn.Conv2d(2, 2, 5, padding=2), [0])(torch.randn(1, 2, 2, 2))


class SmallNet(nn.Module):
    """Plain, grouped, strided, 1x1 (not analysed) and nested convs with BatchNorm."""

    def __init__(self, padding_mode: str = "zeros") -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, padding_mode=padding_mode)
        self.block = nn.Sequential(
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=4, padding_mode=padding_mode),
            nn.Conv2d(8, 6, 1),
            nn.Conv2d(6, 6, (3, 5), padding=(1, 2), dilation=(1, 1), padding_mode=padding_mode),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.block(self.stem(x)).mean(dim=(2, 3))


def small_net(padding_mode: str = "zeros") -> SmallNet:
    torch.manual_seed(0)
    net = SmallNet(padding_mode).double()
    nn.init.normal_(net.block[0].running_mean)
    return net.eval()


@pytest.fixture
def net_and_input() -> tuple[SmallNet, Tensor]:
    torch.manual_seed(1)
    return small_net(), torch.randn(2, 3, 12, 11, dtype=torch.float64)


def test_reflect_variant_equals_reflect_padding_mode(net_and_input) -> None:
    net, x = net_and_input
    reflect_net = small_net("reflect")
    reflect_net.load_state_dict(net.state_dict())
    torch.testing.assert_close(with_reflect_padding(net)(x), reflect_net(x), **TIGHT)


def test_every_channel_selected_equals_reflect_variant(net_and_input) -> None:
    net, x = net_and_input
    every_channel = {layer.name: range(layer.out_channels) for layer in analysed_layers(net)}
    torch.testing.assert_close(
        with_reflect_padding(net, every_channel)(x),
        with_reflect_padding(net)(x),
        **TIGHT,
    )


def test_partial_selection_equals_reference_model(net_and_input) -> None:
    net, x = net_and_input
    channels = {"stem": [0, 7], "block.2": [3], "block.4": [1, 2, 5]}
    pads = {"stem": (1, 1, 1, 1), "block.2": (1, 1, 1, 1), "block.4": (2, 2, 1, 1)}
    reference = copy.deepcopy(net)
    for name, selected in channels.items():
        reference.set_submodule(
            name,
            ReferenceChannelPadded(reference.get_submodule(name), pads[name], selected),
        )
    torch.testing.assert_close(with_reflect_padding(net, channels)(x), reference(x), **TIGHT)


def test_no_selection_equals_original_exactly(net_and_input) -> None:
    net, x = net_and_input
    assert torch.equal(with_reflect_padding(net, {})(x), net(x))
    assert torch.equal(with_reflect_padding(net, {"stem": [], "block.4": []})(x), net(x))


def test_original_model_unchanged_and_parameters_shared(net_and_input) -> None:
    net, x = net_and_input
    before = net(x)
    modules_before = [(name, type(m)) for name, m in net.named_modules()]
    variant = with_reflect_padding(net, {"stem": [1], "block.2": [0, 5]})
    reflect = with_reflect_padding(net)
    variant(x), reflect(x)
    assert [(name, type(m)) for name, m in net.named_modules()] == modules_before
    assert torch.equal(net(x), before)
    assert isinstance(variant.stem, ChannelPaddedConv2d) and isinstance(variant.block[4], nn.Conv2d)
    assert variant.stem.conv.weight is net.stem.weight
    assert {id(p) for p in reflect.parameters()} == {id(p) for p in net.parameters()}
    assert {id(b) for b in reflect.buffers()} >= {id(b) for b in net.buffers()}


def test_unknown_layer_is_a_key_error(net_and_input) -> None:
    net, _ = net_and_input
    with pytest.raises(KeyError, match="block.3"):  # the 1x1 conv is not analysed
        with_reflect_padding(net, {"stem": [0], "block.3": [0]})


def test_efficientnet_lite0() -> None:
    torch.manual_seed(0)
    model = EfficientNet.from_name("efficientnet-lite0").eval()
    reflect, untouched = (
        with_reflect_padding(model, None),
        with_reflect_padding(model, {}),
    )
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert not torch.equal(reflect(x), model(x))
        assert torch.equal(untouched(x), model(x))
        # Random weights shrink the logits' dependence on features; compare the features.
        features = model.extract_features(x)
        assert not torch.allclose(reflect.extract_features(x), features, rtol=1e-2, atol=0)


def test_zero_pad_module_before_a_conv_is_reflected_too() -> None:
    """tests/tiny_net.py's ``asymmetric`` block: a ZeroPad2d then an unpadded conv in a Sequential."""
    torch.manual_seed(0)
    block = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(3, 4, 3, padding=1)).double().eval()
    x = torch.randn(2, 3, 8, 9, dtype=torch.float64)
    pads = (1, 2, 1, 2)
    conv = block[1]
    reflect = reference_output(conv, x, pads, [0, 1, 2, 3])
    torch.testing.assert_close(block(x), reference_output(conv, x, pads, []), **TIGHT)
    torch.testing.assert_close(with_reflect_padding(block)(x), reflect, **TIGHT)
    torch.testing.assert_close(
        with_reflect_padding(block, {"1": [1, 3]})(x), reference_output(conv, x, pads, [1, 3]), **TIGHT
    )
    assert torch.equal(with_reflect_padding(block, {"1": []})(x), block(x))
    assert isinstance(block[0], nn.ZeroPad2d)  # the original keeps its pad module
    assert "input_padding=(0, 1, 0, 1)" in repr(with_reflect_padding(block))


class PadsEveryWay(nn.Module):
    """A zero-padded conv, then one padding with reflect, then one without any padding."""

    def __init__(self):
        super().__init__()
        self.zeros = nn.Conv2d(3, 4, 3, padding=1)
        self.reflect = nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect")
        self.valid = nn.Conv2d(4, 4, 3)
        self.pad_before = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(4, 2, 3))

    def forward(self, x):
        return self.pad_before(self.valid(self.reflect(self.zeros(x))))


def test_layer_padding_names_what_each_conv_pads_with():
    net = PadsEveryWay()
    names = ["zeros", "reflect", "valid", "pad_before.1"]
    assert [layer_padding(net, name) for name in names] == ["zeros", "reflect", "none", "zeros"]


def test_every_variant_leaves_a_conv_that_pads_with_reflect_as_it_is():
    net = PadsEveryWay().eval()
    x = torch.rand(2, 3, 12, 12)
    reflect = with_reflect_padding(net)
    assert isinstance(reflect.reflect, nn.Conv2d) and not isinstance(reflect.zeros, nn.Conv2d)
    some = with_reflect_padding(net, {"reflect": [0, 1], "zeros": [2]})
    assert isinstance(some.reflect, nn.Conv2d)
    with torch.no_grad():
        assert reflect(x).shape == some(x).shape == net(x).shape
