"""Padding audit ("Mind the Pad") on hand-built nets with known answers, and smoke tests."""

from __future__ import annotations

import polars as pl
import pytest
import torch
import torchvision
from efficientnet_lite_pytorch import EfficientNet
from efficientnet_lite_pytorch.utils import Conv2dDynamicSamePadding
from torch import nn

from pan.beyond.audit import (
    AUDIT_SCHEMA,
    SCAN_SCHEMA,
    evenly_padded_sizes,
    padding_audit,
    padding_scan,
    write_padding_audit,
)
from pan.capture.layers import analysed_layers

SIDES = ["pad_left", "pad_right", "pad_top", "pad_bottom"]
EFFECTIVE = ["eff_left", "eff_right", "eff_top", "eff_bottom"]


def row(audit: pl.DataFrame, layer: str) -> dict:
    rows = audit.filter(pl.col("layer") == layer).to_dicts()
    assert len(rows) == 1, f"{layer} not audited once: {audit['layer'].to_list()}"
    return rows[0]


def sides(r: dict, columns: list[str]) -> tuple[int, ...]:
    return tuple(r[c] for c in columns)


def single(layer: nn.Module) -> nn.Module:
    return nn.Sequential(layer).eval()


@pytest.mark.parametrize(
    "size, out, effective, uneven",
    [(10, 5, (1, 0, 1, 0), True), (11, 6, (1, 1, 1, 1), False)],
)
def test_strided_symmetric_conv_is_uneven_on_even_inputs(size, out, effective, uneven) -> None:
    r = row(padding_audit(single(nn.Conv2d(3, 4, 3, stride=2, padding=1)), size), "0")
    assert (r["kind"], r["in_h"], r["in_w"], r["out_h"], r["out_w"]) == ("conv", size, size, out, out)
    assert sides(r, SIDES) == (1, 1, 1, 1) and r["padding_source"] == "padding"
    assert sides(r, EFFECTIVE) == effective and r["uneven"] is uneven
    assert (r["unread_cols"], r["unread_rows"], r["dropped_cols"]) == ((1, 1, 0) if uneven else (0, 0, 0))


def test_rectangular_input_and_kernel() -> None:
    r = row(padding_audit(single(nn.Conv2d(3, 4, (3, 5), stride=(1, 2), padding=(1, 2))), (9, 12)), "0")
    assert (r["kernel_h"], r["kernel_w"], r["stride_h"], r["stride_w"]) == (3, 5, 1, 2)
    assert sides(r, SIDES) == (2, 2, 1, 1)
    assert sides(r, EFFECTIVE) == (2, 1, 1, 1) and r["uneven"]  # (12 + 4 - 5) % 2 = 1


def test_unpadded_strided_conv_drops_input_pixels() -> None:
    r = row(padding_audit(single(nn.Conv2d(3, 4, 3, stride=2)), 10), "0")
    assert r["padding_source"] == "none" and sides(r, SIDES) == (0, 0, 0, 0)
    assert sides(r, EFFECTIVE) == (0, -1, 0, -1) and (r["dropped_cols"], r["dropped_rows"]) == (1, 1)
    assert r["uneven"]


@pytest.mark.parametrize("conv_type", ["efficientnet", "timm"])
@pytest.mark.parametrize("size, pads, uneven", [(10, (0, 1, 0, 1), True), (11, (1, 1, 1, 1), False)])
def test_tf_same_conv_pads_by_its_input_size(conv_type, size, pads, uneven) -> None:
    if conv_type == "timm":
        from timm.layers.conv2d_same import Conv2dSame as conv_class
    else:
        conv_class = Conv2dDynamicSamePadding
    net = nn.Sequential(nn.Conv2d(3, 3, 1), conv_class(3, 4, 3, stride=2)).eval()
    r = row(padding_audit(net, size), "1")
    assert r["padding_source"] == "same" and sides(r, SIDES) == pads
    assert sides(r, EFFECTIVE) == pads and r["uneven"] is uneven  # SAME reads all its padding
    assert r["layer_index"] == 0 and r["analysed_index"] == 0  # the 1x1 conv is not audited


class PadThenConv(nn.Module):
    """A pad module used in forward (not in a Sequential), and one in a Sequential."""

    def __init__(self) -> None:
        super().__init__()
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))
        self.conv = nn.Conv2d(3, 4, 3, stride=2)
        self.block = nn.Sequential(nn.ConstantPad2d((1, 1, 1, 1), 0.0), nn.Conv2d(4, 4, 3))

    def forward(self, x):
        return self.block(self.conv(self.pad(x)))


def test_pad_modules_before_a_layer_count_as_its_padding() -> None:
    audit = padding_audit(PadThenConv().eval(), 10)
    conv, block = row(audit, "conv"), row(audit, "block.1")
    assert conv["padding_source"] == "module" and sides(conv, SIDES) == (0, 1, 0, 1)
    assert (conv["in_h"], conv["out_h"]) == (10, 5)
    assert sides(conv, EFFECTIVE) == (0, 1, 0, 1) and conv["uneven"]
    assert block["padding_source"] == "module" and sides(block, SIDES) == (1, 1, 1, 1) and not block["uneven"]


class Pools(nn.Module):
    """Registered in the opposite order of the forward."""

    def __init__(self) -> None:
        super().__init__()
        self.late_avg = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.no_pad = nn.MaxPool2d(2)
        self.ceil = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.max = nn.MaxPool2d(3, stride=2, padding=1)
        self.stem = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return self.late_avg(self.no_pad(self.ceil(self.max(self.stem(x)))))


def test_pools_with_padding_in_forward_order() -> None:
    audit = padding_audit(Pools().eval(), 22)
    assert audit["layer"].to_list() == ["stem", "max", "ceil", "late_avg"]  # no_pad does not pad
    assert audit["layer_index"].to_list() == [0, 1, 2, 3]
    assert audit["analysed_index"].to_list() == [0, None, None, None]
    pool = row(audit, "max")  # 22 -> 11
    assert (pool["kind"], pool["padding_mode"], pool["out_h"]) == ("max_pool", "-inf", 11)
    assert sides(pool, EFFECTIVE) == (1, 0, 1, 0) and pool["uneven"]
    ceil = row(audit, "ceil")  # 11 -> 6: the last window overhangs by one
    assert sides(ceil, SIDES) == (0, 0, 0, 0) and sides(ceil, EFFECTIVE) == (0, 1, 0, 1)
    assert ceil["unread_cols"] == -1 and ceil["uneven"]
    avg = row(audit, "late_avg")  # 3 -> 2
    assert (avg["kind"], avg["padding_mode"], avg["in_h"]) == ("avg_pool", "excluded", 3)
    assert sides(avg, EFFECTIVE) == (1, 1, 1, 1) and not avg["uneven"]


class LateFirst(nn.Module):
    """Registers ``late`` before ``early`` but calls ``early`` first; ``unused`` never runs."""

    def __init__(self) -> None:
        super().__init__()
        self.late = nn.Conv2d(4, 2, 3, padding=1)
        self.unused = nn.Conv2d(3, 3, 3)
        self.early = nn.Conv2d(3, 4, 3, padding=1, stride=2)

    def forward(self, x):
        return self.late(torch.relu(self.early(x)))


def test_analysed_index_follows_the_forward_order_as_the_dumps_layer_index() -> None:
    net = LateFirst().eval()
    example = torch.zeros(1, 3, 16, 16)
    dumped = {layer.name: layer.index for layer in analysed_layers(net, example)}  # the dump's order
    assert dumped == {"early": 0, "late": 1, "unused": 2}
    for device in ("meta", "cpu"):
        audit = padding_audit(net, 16, in_channels=3, device=device)  # the first registered conv takes 4
        got = dict(audit.select("layer", "analysed_index").iter_rows())
        assert got == {"early": 0, "late": 1}, device
        assert all(got[name] == dumped[name] for name in got)


def test_meta_and_cpu_passes_agree_and_schemas_hold() -> None:
    net = PadThenConv().eval()
    meta, cpu = padding_audit(net, 12), padding_audit(net, 12, device="cpu")
    assert meta.equals(cpu)
    assert dict(meta.schema) == AUDIT_SCHEMA
    assert next(net.parameters()).device.type == "cpu"  # the model is left alone


def test_scan_finds_the_evenly_padded_sizes() -> None:
    net = single(nn.Conv2d(3, 4, 3, stride=2, padding=1))
    assert evenly_padded_sizes(net, 20, radius=4) == [17, 19, 21, 23]
    scan = padding_scan(nn.Sequential(nn.Conv2d(3, 4, 5, stride=2)).eval(), 5, radius=6)
    assert dict(scan.schema) == SCAN_SCHEMA
    assert scan["input_size"].to_list() == list(range(1, 12))  # sizes below 1 are skipped
    assert scan.filter(pl.col("input_size") < 5)["error"].is_not_null().all()  # kernel larger than input
    odd = scan.filter(pl.col("input_size").is_in([5, 7, 9, 11]))
    assert odd["uneven_layers"].to_list() == [0] * 4 and odd["first_uneven_layer"].is_null().all()
    even = scan.filter(pl.col("input_size").is_in([6, 8, 10]))
    assert even["dropped_pixels"].to_list() == [2] * 3 and even["first_uneven_layer"].to_list() == ["0"] * 3


def test_torchvision_resnet18(tmp_path) -> None:
    model = torchvision.models.resnet18(weights=None).eval()
    audit = write_padding_audit(
        model, 224, tmp_path / "audit.csv", scan_csv=tmp_path / "scan.csv", model_name="r18"
    )
    convs = audit.filter(pl.col("kind") == "conv")
    assert convs["layer"].to_list() == [layer.name for layer in analysed_layers(model)]
    assert audit.filter(pl.col("kind") != "conv")["layer"].to_list() == ["maxpool"]
    assert audit.filter("uneven")["layer"].to_list() == [
        "conv1",
        "maxpool",
        "layer2.0.conv1",
        "layer3.0.conv1",
        "layer4.0.conv1",
    ]
    written = pl.read_csv(tmp_path / "audit.csv")
    assert written.columns == ["model", *AUDIT_SCHEMA] and written.height == audit.height
    scan = pl.read_csv(tmp_path / "scan.csv")
    assert scan["input_size"].to_list() == list(range(160, 289))
    assert scan.filter(pl.col("uneven_layers") == 0)["input_size"].to_list() == [161, 193, 225, 257]


def test_efficientnet_lite0() -> None:
    model = EfficientNet.from_name("efficientnet-lite0").eval()
    audit = padding_audit(model, 224)
    assert audit.height == len(analysed_layers(model)) and audit["padding_source"].unique().to_list() == [
        "module"
    ]
    stem = row(audit, "_conv_stem")  # TF SAME built for 224: (0, 1), all read on an even input
    assert sides(stem, SIDES) == (0, 1, 0, 1) and sides(stem, EFFECTIVE) == (0, 1, 0, 1) and stem["uneven"]
    uneven = audit.filter("uneven")
    assert (uneven["stride_h"] == 2).all() and uneven.height == 5  # the stem and 4 strided depthwise convs
    assert evenly_padded_sizes(model, 224) == [191, 223, 255, 287]  # its static pads stay those of 224


def test_timm_same_padding_convs_and_pools() -> None:
    timm = pytest.importorskip("timm")
    from timm.layers import create_pool2d

    model = timm.create_model("tf_efficientnet_b0", pretrained=False)
    audit = padding_audit(model, 224)
    same = audit.filter(pl.col("padding_source") == "same")
    assert same["module"].unique().to_list() == ["Conv2dSame"] and same.height == 5
    assert same["uneven"].all()  # TF SAME on even inputs: (0, 1)
    assert padding_audit(model, 225).filter("uneven").height == 0
    net = nn.Sequential(create_pool2d("max", 3, stride=2, padding="same")).eval()
    pool = row(padding_audit(net, 10), "0")
    assert (pool["module"], pool["padding_source"]) == ("MaxPool2dSame", "same")
    assert sides(pool, SIDES) == (0, 1, 0, 1) and pool["uneven"]
