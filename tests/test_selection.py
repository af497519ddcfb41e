"""Which neurons get figures (pan.beyond.selection), and configured slots."""

from __future__ import annotations

import polars as pl
import pytest

from pan.beyond.selection import select_neurons, slot_neuron, write_selection
from pan.core.labelling import label_pans
from pan.workflow.sections import FigureSettings


def hand_ks(rows: dict[int, tuple[float, float, float]]) -> pl.DataFrame:
    """KS rows of layer 'conv': ``neuron -> (KS, KS+, KS-)`` on the top border, zeros elsewhere."""
    records = []
    for neuron, (ks, plus, minus) in rows.items():
        for border in "TBLR":
            stats = (ks, plus, minus) if border == "T" else (0.0, 0.0, 0.0)
            records.append(
                dict(
                    zip(("ks", "ks_plus", "ks_minus"), stats, strict=True),
                    layer="conv",
                    layer_index=0,
                    neuron=neuron,
                    border=border,
                )
            )
    return pl.DataFrame(records).with_columns(pl.col("layer_index", "neuron").cast(pl.Int32))


SELECTION_KS = {
    0: (0.9, 0.8, 0.0),  # PAN, strength 0.8
    1: (0.95, 0.0, 0.6),  # PAN, strength 0.6
    2: (0.99, 0.1, 0.0),  # edge detector, no PAN
    3: (0.2, 0.1, 0.0),  # regular neuron
}


def test_selection_ranks_pans_by_strength_and_edge_detectors_by_ks(tmp_path):
    ks = hand_ks(SELECTION_KS)
    labels = label_pans(ks, 0.5)
    selection = select_neurons(labels, ks, top_pans=2, top_edge_detectors=1)
    assert dict(zip(selection["slot"], selection["neuron"], strict=True)) == {
        "pan1": 0,
        "pan2": 1,
        "edge1": 2,
    }
    labels.write_parquet(tmp_path / "labels.parquet")
    ks.write_parquet(tmp_path / "ks.parquet")
    write_selection(tmp_path / "labels.parquet", [tmp_path / "ks.parquet"], tmp_path / "n.csv", 2, 1)
    assert slot_neuron("pan1", tmp_path / "n.csv").description == "strongest PAN #1 (type T, θ = 0.5)"
    assert "non-PAN edge detector #1" in slot_neuron("edge1", tmp_path / "n.csv").description


def test_selection_says_when_a_slot_holds_no_pan(tmp_path):
    ks = hand_ks(SELECTION_KS)
    selection = select_neurons(label_pans(ks, 0.5), ks, top_pans=3, top_edge_detectors=1)
    assert selection["neuron"].to_list() == [0, 1, 2, 3]  # slot 3 gets the closest neuron
    selection.write_csv(tmp_path / "n.csv")
    assert "none at θ = 0.5" in slot_neuron("pan3", tmp_path / "n.csv").description
    assert "no non-PAN edge detector left" in slot_neuron("edge1", tmp_path / "n.csv").description
    with pytest.raises(ValueError, match="neurons"):
        select_neurons(label_pans(ks, 0.5), ks, top_pans=4, top_edge_detectors=1)


def test_configured_slots_name_their_neuron():
    settings = FigureSettings.from_config(
        {
            "neurons": [{"model": "m", "layer": "features.3.conv", "neuron": 7}],
            "top_pans": 1,
            "top_edge_detectors": 0,
        }
    )
    assert settings.slots("m") == ["pan1", "features.3.conv_n7"] and settings.slots("other") == ["pan1"]
    neuron = slot_neuron("features.3.conv_n7")
    assert (neuron.layer, neuron.neuron) == ("features.3.conv", 7)
