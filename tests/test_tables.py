"""The paper's tables (pan.core.tables): Tables 1 and 2 from labels, Table 3 from odds, by hand."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pan.bias.odds import ODDS_SCHEMA, read_odds
from pan.bias.table3 import table3, write_table3
from pan.core.labelling import PAN_TYPES, label_pans
from pan.core.scoring import score_maps
from pan.core.tables import table1, table2, write_table1, write_table2

KS_COLUMNS = ("ks_T", "ks_B", "ks_L", "ks_R")
TABLE1 = ["model", "rule", "layer_index", "layer", "neurons", "pans", "pan_pct", "edge_detectors"]
TABLE2 = ["model", "rule", *PAN_TYPES, "pans", "edge_detectors", "neurons", "pan_pct"]
SCOREABLE = ["scoreable_neurons", "pan_pct_scoreable"]


def labels(layers: dict[str, list[str]], edges: dict[str, int] | None = None) -> pl.DataFrame:
    """Labels with the columns the tables read: layer -> PAN type per neuron ("" for none);
    ``edges`` adds that many non-PAN edge detectors per layer at its first non-PANs."""
    rows = []
    for index, (layer, types) in enumerate(layers.items()):
        spare = (edges or {}).get(layer, 0)
        for neuron, kind in enumerate(types):
            edge = bool(kind) or (not kind and spare > 0)
            spare -= not kind and spare > 0
            rows.append(
                {"layer": layer, "layer_index": index, "neuron": neuron, "is_pan": bool(kind),
                 "is_edge_detector": edge, "pan_type": kind, **dict.fromkeys(KS_COLUMNS, 0.5)}
            )  # fmt: skip
    return pl.DataFrame(rows)


MODEL_A = labels({"c1": ["T", "T", "TB", "", ""], "c2": ["", "", "", "LR"]}, edges={"c1": 1})
MODEL_B = labels({"conv": ["", "", ""]})


def test_table1_counts_per_layer_with_the_share_rounded_down():
    table = table1({"a": MODEL_A, "b": MODEL_B})
    assert table.columns == [*TABLE1, *SCOREABLE]
    assert table.rows() == [
        ("a", "paper", 0, "c1", 5, 3, 60, 4, 5, 60),
        ("a", "paper", 1, "c2", 4, 1, 25, 1, 4, 25),
        ("b", "paper", 0, "conv", 3, 0, 0, 0, 3, 0),
    ]


def test_table2_counts_each_type_in_the_papers_order():
    table = table2({"a": MODEL_A, "b": MODEL_B})
    assert table.columns == [*TABLE2, *SCOREABLE, "borderline"]
    assert table["rule"].to_list() == ["paper", "paper"] and table["borderline"].to_list() == [None, None]
    a = table.row(0, named=True)
    assert {t: a[t] for t in PAN_TYPES if a[t]} == {"T": 2, "TB": 1, "LR": 1}
    assert (a["pans"], a["edge_detectors"], a["neurons"], a["pan_pct"]) == (4, 5, 9, round(400 / 9, 2))
    assert table.row(1, named=True)["pan_pct"] == 0.0


def with_share_rule(frame: pl.DataFrame, types: list[str], confidence: list[str]) -> pl.DataFrame:
    """``frame`` with share-rule labels ``types`` and paper/share confidences."""
    return frame.with_columns(
        pan_type_share=pl.Series(types),
        is_pan_share=pl.Series([bool(t) for t in types]),
        confidence=pl.Series(confidence),
        confidence_share=pl.Series(["confident"] * len(types)),
    )


def test_tables_report_both_rules_and_the_borderline_labels():
    a = with_share_rule(
        MODEL_A,
        ["T", "", "", "", "", "", "", "", "L"],
        ["confident", "borderline", "borderline", *["confident"] * 6],
    )
    two = table2({"a": a})
    assert two.select("rule", "pans", "T", "L", "TB", "borderline").rows() == [
        ("paper", 4, 2, 0, 1, 2),
        ("share", 2, 1, 1, 0, 0),
    ]
    assert two["edge_detectors"].to_list() == [5, 5]  # KS > theta alone: the same under both rules
    one = table1({"a": a})
    assert one.filter(rule="share").select("layer", "pans").rows() == [("c1", 1), ("c2", 1)]


def test_tables_name_models_by_the_mapping_not_the_file_name(tmp_path):
    MODEL_A.write_parquet(tmp_path / "whatever.parquet")
    write_table1({"mine": tmp_path / "whatever.parquet"}, tmp_path / "t1.csv")
    write_table2({"mine": tmp_path / "whatever.parquet"}, tmp_path / "t2.csv")
    assert pl.read_csv(tmp_path / "t1.csv")["model"].unique().to_list() == ["mine"]
    assert pl.read_csv(tmp_path / "t2.csv")["model"].to_list() == ["mine"]  # one rule: paper


def test_tables_count_scoreable_neurons_and_the_pan_share_of_them(tmp_path, caplog):
    # Real scoring: a 2x2 layer has no centre (NaN statistics); the 8x8 layer has a top PAN.
    rng = np.random.default_rng(0)
    small = rng.normal(size=(8, 6, 2, 2)).astype(np.float32)
    large = rng.normal(size=(8, 4, 8, 8)).astype(np.float32)
    large[:, 0, 0, :] += 8
    ks = pl.concat(
        [pl.from_arrow(score_maps(large, "early", 0)), pl.from_arrow(score_maps(small, "late", 1))]
    )
    label_pans(ks, 0.5).write_parquet(tmp_path / "tiny.parquet")
    with caplog.at_level("WARNING"):
        t1 = write_table1({"tiny": tmp_path / "tiny.parquet"}, tmp_path / "t1.csv")
        t2 = write_table2({"tiny": tmp_path / "tiny.parquet"}, tmp_path / "t2.csv")
    for rule in ("paper", "share"):  # the +8 top row is a PAN under both rules
        assert t1.filter(rule=rule).select("layer", "neurons", "pans", "pan_pct", *SCOREABLE).rows() == [
            ("early", 4, 1, 25, 4, 25),
            ("late", 6, 0, 0, 0, None),
        ]
    row = t2.row(0, named=True)
    assert (row["neurons"], row["pans"], row["pan_pct"]) == (10, 1, 10.0)
    assert (row["scoreable_neurons"], row["pan_pct_scoreable"]) == (4, 25.0)
    assert pl.read_csv(tmp_path / "t2.csv").columns[-3:] == [*SCOREABLE, "borderline"]
    assert "model tiny, layer late: 6 of 6 neurons not scoreable" in caplog.text
    assert "layer early" not in caplog.text


def odds_frame(odds: list[float], names=None) -> pl.DataFrame:
    """An odds table where all three variants share ``odds``."""
    columns = {
        "class_index": list(range(len(odds))),
        "class_name": names or [f"c{i}" for i in range(len(odds))],
    }
    for v in ("pan_reflect", "rand_reflect", "reflect"):
        columns |= {f"odds_{v}": odds, f"log_odds_{v}": np.log(odds).tolist()}
    return pl.DataFrame(columns, schema=ODDS_SCHEMA)


def test_table3_threshold_both_ways_by_hand():
    # 1.25 up; 0.75 down (1/0.75 = 1.33); 1.05 and 0.95 (1/0.95 = 1.053) stay; 1/1.08 down; 1.071 up.
    frame = odds_frame([1.25, 0.75, 1.05, 0.95, 1 / 1.08, 1.071])
    table = table3({"m": frame}, threshold=0.07)
    assert table.columns == ["model", "variant", "direction", "class_index", "class_name", "odds", "log_odds"]
    pan = table.filter(variant="pan_reflect")
    assert pan.select("direction", "class_index").rows() == [("down", 1), ("down", 4), ("up", 0), ("up", 5)]
    assert table["variant"].unique(maintain_order=True).to_list() == [
        "pan_reflect",
        "rand_reflect",
        "reflect",
    ]
    assert table3({"m": frame}, threshold=0.3).select("variant", "class_index").rows() == [
        ("pan_reflect", 1),
        ("rand_reflect", 1),
        ("reflect", 1),
    ]
    two = table3({"z": frame, "a": frame}, threshold=0.3)
    assert two["model"].to_list() == ["z"] * 3 + ["a"] * 3  # models keep the config's order
    assert table3({}).columns == table.columns
    with pytest.raises(ValueError, match="positive"):
        table3({"m": frame}, threshold=0)


def test_write_table3_reads_odds_files_by_model(tmp_path):
    odds_frame([1.25, 1.0]).write_csv(tmp_path / "o.csv")
    table = write_table3({"mine": tmp_path / "o.csv"}, tmp_path / "t3.csv", threshold=0.07)
    assert table["model"].unique().to_list() == ["mine"] and table.height == 3


def test_table3_leaves_out_a_dense_model_whose_odds_table_is_empty(tmp_path):
    odds_frame([1.25, 1.0]).write_csv(tmp_path / "o.csv")
    odds_frame([1.25, 1.0]).clear().write_csv(tmp_path / "dense.csv")  # what write_odds writes for a map
    table = write_table3({"dense": tmp_path / "dense.csv", "mine": tmp_path / "o.csv"}, tmp_path / "t3.csv")
    assert table["model"].unique().to_list() == ["mine"] and table.height == 3
    with pytest.raises(ValueError, match="no classes"):  # anything else that reads odds still refuses it
        read_odds(tmp_path / "dense.csv")
