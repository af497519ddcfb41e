"""pan.beyond.origin: nascent vs downstream PANs on the hand-set net of tests/beyond_net.py."""

from __future__ import annotations

import beyond_net
import polars as pl
import torch

from pan.beyond.origin import ORIGIN_COLUMNS, label_origin, origin_counts, own_reflect_ks
from pan.capture.inference import layer_outputs
from pan.capture.layers import analysed_layers
from pan.core.labelling import label_pans
from pan.core.scoring import score_maps


def net_labels(net, images) -> pl.DataFrame:
    tables = [
        pl.from_arrow(
            score_maps(
                layer_outputs(net, layer, iter([images]), torch.device("cpu")).numpy(),
                layer.name,
                layer.index,
            )
        )
        for layer in analysed_layers(net)
    ]
    return label_pans(pl.concat(tables))


def test_planted_nascent_and_downstream_pans_get_their_origin():
    net, images = beyond_net.build().eval(), beyond_net.batch()
    labels = net_labels(net, images)
    own = pl.from_arrow(own_reflect_ks(net, list(images), lambda t: t, micro_batch=8, device="cpu"))
    origin = label_origin(labels, own, theta=0.5)
    got = {(r["layer"], r["neuron"]): r["origin"] for r in origin.iter_rows(named=True)}
    assert got == beyond_net.EXPECTED_ORIGIN
    downstream = origin.filter(pl.col("layer") == "conv2").row(0, named=True)
    assert downstream["origin_T"] == "downstream" and downstream["origin_B"] is None
    assert downstream["own_ks_T"] == 1.0  # its own padding changes nothing it reads
    nascent = origin.filter((pl.col("layer") == "conv1") & (pl.col("neuron") == 0)).row(0, named=True)
    assert nascent["own_ks_T"] < 0.2


def test_mixed_origin_and_counts_per_type():
    labels = pl.DataFrame(
        {
            "layer": ["a", "a"],
            "layer_index": [0, 0],
            "neuron": [0, 1],
            "pan_type": ["TB", ""],
            "is_pan": [True, False],
            **{f"pan_{b}": [b in "TB", False] for b in "TBLR"},
        }
    )
    own = pl.DataFrame(
        {
            "layer_index": [0] * 8,
            "neuron": [0] * 4 + [1] * 4,
            "border": list("TBLR") * 2,
            "ks": [0.9, 0.1, 0.0, 0.0] + [0.0] * 4,
            "ks_plus": [0.9, 0.1, 0.0, 0.0] + [0.0] * 4,
            "ks_minus": [0.0] * 8,
        }
    )
    origin = label_origin(labels, own, theta=0.5)
    row = origin.row(0, named=True)
    assert (row["origin_T"], row["origin_B"], row["origin_L"], row["origin"]) == (
        "downstream",
        "nascent",
        None,
        "mixed",
    )
    counts = origin_counts({"m": origin})
    assert counts.columns == list(ORIGIN_COLUMNS)
    assert counts.rows() == [("m", "all", 1, 0, 0, 1), ("m", "TB", 1, 0, 0, 1)]
