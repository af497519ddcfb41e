"""timm's padding counts as zero padding: Conv2dSame, create_conv2d, StdConv and pad modules."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

timm = pytest.importorskip("timm")
from timm.layers import StdConv2d, StdConv2dSame, create_conv2d  # noqa: E402
from timm.layers.conv2d_same import Conv2dSame, Conv2dSameExport  # noqa: E402
from timm.layers.padding import pad_same_arg  # noqa: E402

from pan.bias.reflect import ChannelPaddedConv2d, with_reflect_padding  # noqa: E402
from pan.capture.layers import analysed_layers  # noqa: E402
from pan.capture.padding import zero_padding  # noqa: E402

TIGHT = {"rtol": 1e-12, "atol": 1e-12}  # float64 throughout


def hand_built(
    conv: nn.Conv2d, x: Tensor, pads: tuple[int, ...], mode: str, weight: Tensor | None = None
) -> Tensor:
    """F.pad by ``pads`` (zeros or reflect), then a plain F.conv2d with padding 0."""
    padded = F.pad(x, pads, mode="reflect") if mode == "reflect" else F.pad(x, pads)
    weight = conv.weight if weight is None else weight
    return F.conv2d(padded, weight, conv.bias, conv.stride, 0, conv.dilation, conv.groups)


def picked(reflect: Tensor, zero: Tensor, channels: list[int]) -> Tensor:
    mask = torch.zeros(reflect.shape[1], dtype=torch.bool)
    mask[channels] = True
    return torch.where(mask[None, :, None, None], reflect, zero)


SAME_CASES = [  # kernel, stride, dilation, groups, input (height, width)
    (3, 2, 1, 1, (10, 10)),
    (3, 2, 1, 1, (11, 11)),
    (3, 2, 1, 1, (10, 13)),
    (5, 2, 1, 4, (12, 9)),  # grouped
    (5, 2, 1, 8, (13, 14)),  # depthwise
    (3, 3, 1, 1, (10, 11)),
    (4, 1, 1, 1, (9, 10)),  # even kernel at stride 1: dynamic even then
    ((3, 5), 2, 1, 1, (12, 11)),
    (3, 1, 2, 1, (11, 12)),  # dilated: static for create_conv2d, still fine as Conv2dSame
    (7, 4, 1, 1, (16, 15)),
]


@pytest.mark.parametrize("kernel, stride, dilation, groups, size", SAME_CASES)
def test_conv2d_same_matches_hand_built_convs(kernel, stride, dilation, groups, size) -> None:
    torch.manual_seed(0)
    conv = (
        Conv2dSame(8, 8, kernel, stride=stride, dilation=dilation, groups=groups, bias=True).double().eval()
    )
    x = torch.randn(2, 8, *size, dtype=torch.float64)
    pads = tuple(pad_same_arg(list(size), conv.kernel_size, conv.stride, conv.dilation))
    assert zero_padding(conv, input_size=size) == pads
    torch.testing.assert_close(conv(x), hand_built(conv, x, pads, "zeros"), **TIGHT)
    reflect = hand_built(conv, x, pads, "reflect")
    torch.testing.assert_close(ChannelPaddedConv2d(conv, range(8))(x), reflect, **TIGHT)
    some = [1, 6]
    torch.testing.assert_close(ChannelPaddedConv2d(conv, some)(x), picked(reflect, conv(x), some), **TIGHT)
    assert torch.equal(ChannelPaddedConv2d(conv, [])(x), conv(x))


def test_create_conv2d_same_is_static_or_dynamic_and_both_reflect() -> None:
    torch.manual_seed(0)
    static = create_conv2d(4, 6, 3, stride=1, padding="same").double()  # symmetric, plain Conv2d
    dynamic = create_conv2d(4, 6, 3, stride=2, padding="same").double()  # Conv2dSame
    assert type(static) is nn.Conv2d and isinstance(dynamic, Conv2dSame)
    x = torch.randn(1, 4, 10, 10, dtype=torch.float64)
    for conv, pads in ((static, (1, 1, 1, 1)), (dynamic, (0, 1, 0, 1))):
        assert zero_padding(conv, input_size=(10, 10)) == pads
        torch.testing.assert_close(
            ChannelPaddedConv2d(conv, range(6))(x), hand_built(conv, x, pads, "reflect"), **TIGHT
        )


def test_conv2d_same_export_before_and_after_its_first_call() -> None:
    torch.manual_seed(0)
    conv = Conv2dSameExport(4, 6, 3, stride=2).double()
    x = torch.randn(1, 4, 10, 11, dtype=torch.float64)
    pads = tuple(pad_same_arg([10, 11], conv.kernel_size, conv.stride, conv.dilation))
    reflect = hand_built(conv, x, pads, "reflect")
    torch.testing.assert_close(ChannelPaddedConv2d(conv, range(6))(x), reflect, **TIGHT)
    conv(x)  # now it holds a ZeroPad2d for this size
    assert zero_padding(conv) == pads
    torch.testing.assert_close(ChannelPaddedConv2d(conv, range(6))(x), reflect, **TIGHT)


@pytest.mark.parametrize("same", [False, True])
def test_weight_standardised_convs_reflect_with_their_own_weight(same: bool) -> None:
    torch.manual_seed(0)
    conv = (StdConv2dSame(4, 6, 3, stride=2) if same else StdConv2d(4, 6, 3, stride=2, padding=1)).double()
    x = torch.randn(1, 4, 10, 10, dtype=torch.float64)
    pads = (0, 1, 0, 1) if same else (1, 1, 1, 1)
    assert zero_padding(conv, input_size=(10, 10)) == pads
    unpadded = copy.deepcopy(conv)  # timm's own standardisation over a reflect-padded input
    unpadded.padding, unpadded.same_pad = (0, 0), False
    reflect = unpadded(F.pad(x, pads, mode="reflect"))
    torch.testing.assert_close(ChannelPaddedConv2d(conv, range(6))(x), reflect, **TIGHT)
    torch.testing.assert_close(
        ChannelPaddedConv2d(conv, [2, 5])(x), picked(reflect, conv(x), [2, 5]), **TIGHT
    )


def test_unknown_conv_forward_is_rejected() -> None:
    class Scaled(nn.Conv2d):
        def forward(self, x):
            return 2 * super().forward(x)

    with pytest.raises(ValueError, match="does not know"):
        ChannelPaddedConv2d(Scaled(2, 2, 3, padding=1), [0])


@pytest.mark.parametrize("pad_module", [nn.ZeroPad2d((1, 0, 1, 0)), nn.ConstantPad2d((0, 1, 2, 1), 0.0)])
@pytest.mark.parametrize("conv_type", ["plain", "same"])
def test_pad_module_before_a_conv_is_folded_into_it(pad_module: nn.Module, conv_type: str) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 2, stride=1) if conv_type == "plain" else Conv2dSame(3, 5, 3, stride=2)
    net = nn.Sequential(pad_module, conv).double().eval()
    x = torch.randn(2, 3, 9, 10, dtype=torch.float64)
    padded_size = tuple(net[0](x).shape[-2:])
    pads = tuple(
        a + b for a, b in zip(pad_module.padding, zero_padding(conv, input_size=padded_size), strict=True)
    )
    reflect = hand_built(conv, x, pads, "reflect")
    zero = hand_built(conv, x, pads, "zeros")
    torch.testing.assert_close(net(x), zero, **TIGHT)
    variant = with_reflect_padding(net)
    assert isinstance(variant[0], nn.Identity) and isinstance(net[0], nn.ConstantPad2d)
    torch.testing.assert_close(variant(x), reflect, **TIGHT)
    torch.testing.assert_close(
        with_reflect_padding(net, {"1": [0, 3]})(x), picked(reflect, zero, [0, 3]), **TIGHT
    )
    assert torch.equal(with_reflect_padding(net, {"1": []})(x), net(x))


TIMM_MODELS = [
    "resnet18",  # plain Conv2d with symmetric padding, MaxPool2d
    "tf_efficientnet_b0",  # TF "SAME": Conv2dSame where strided, symmetric Conv2d elsewhere
    "mobilenetv3_small_100",
    "convnext_atto",  # 4x4/2x2 unpadded strided convs, 7x7 depthwise
    "tf_mixnet_s",  # MixedConv2d: a ModuleDict of Conv2d/Conv2dSame, analysed one by one
]


@pytest.mark.parametrize("name", TIMM_MODELS)
def test_timm_model_variants(name: str) -> None:
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, num_classes=10).eval()
    layers = analysed_layers(model)
    assert layers
    # Reflect padding needs maps larger than the padding: 128 leaves ConvNeXt's 7x7 (pad 3) a
    # 4x4 map, 160 MixNet's 9x9 (pad 4) a 5x5 one.
    size = 160 if "mixnet" in name else 128
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        original = model(x)
        assert torch.equal(with_reflect_padding(model, {layer.name: [] for layer in layers})(x), original)
        features = model.forward_features(x)
        reflect = with_reflect_padding(model)
        assert all(isinstance(reflect.get_submodule(layer.name), ChannelPaddedConv2d) for layer in layers)
        reflect_features = reflect.forward_features(x)
        assert torch.isfinite(reflect_features).all()
        padded = [layer for layer in layers if any(zero_padding(layer.module, input_size=(size, size)))]
        if padded:  # every timm model here pads somewhere
            assert not torch.allclose(reflect_features, features, rtol=1e-3, atol=0)
        some = {layer.name: [0, layer.out_channels - 1] for layer in layers}
        partial = with_reflect_padding(model, some)(x)
        assert partial.shape == original.shape and torch.isfinite(partial).all()
    assert type(model.get_submodule(layers[0].name)) is not ChannelPaddedConv2d  # model untouched
