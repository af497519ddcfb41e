"""pan.beyond.reach: padding awareness at distance d from the border, on hand-set maps and nets."""

from __future__ import annotations

import beyond_net
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from pan.beyond.reach import aware, distance_samples, fits, reach_counts, reach_maps
from pan.capture.inference import layer_outputs
from pan.capture.layers import analysed_layers


def layer_maps(name: str) -> np.ndarray:
    net = beyond_net.build().eval()
    layer = next(layer for layer in analysed_layers(net) if layer.name == name)
    return layer_outputs(net, layer, iter([beyond_net.batch()]), torch.device("cpu")).numpy()


def test_a_neuron_aware_at_distance_one_only_is_found_there_only():
    table = pl.from_arrow(reach_maps(layer_maps("reach"), "reach", 2, max_distance=3))
    found = aware(table, 0.5).filter("aware")
    assert found.select("neuron", "distance", "borders").rows() == [(0, 1, "T")]
    assert aware(table, 0.5, "share").filter("aware").select("neuron", "distance", "borders").rows() == [
        (0, 1, "T")
    ]
    counts = reach_counts({"m": table}, {"m": []}, 0.5)
    assert counts["rule"].unique(maintain_order=True).to_list() == ["paper", "share"]
    for rule in ("paper", "share"):
        at = counts.filter(rule=rule)
        assert at.filter(pl.col("distance") == 1).select("padding_aware", "not_pan_at_0").row(0) == (1, 1)
        assert at.filter(pl.col("distance") == 0)["padding_aware"].item() == 0


def test_the_downstream_pan_is_aware_at_distance_zero_only():
    table = pl.from_arrow(reach_maps(layer_maps("conv2"), "conv2", 1, max_distance=3))
    found = aware(table, 0.5).filter("aware")
    assert found.select("neuron", "distance", "borders").rows() == [(0, 0, "T")]


def test_rows_at_each_distance_and_the_inner_centre():
    maps = np.arange(2 * 1 * 10 * 10, dtype=np.float32).reshape(2, 1, 10, 10)
    samples = distance_samples(maps, 2)
    assert samples["T"].tolist()[0][:10] == maps[0, 0, 2].tolist()
    assert samples["B"].tolist()[0][:10] == maps[0, 0, 7].tolist()
    assert samples["L"].tolist()[0][:10] == maps[0, 0, :, 2].tolist()
    assert samples["R"].tolist()[0][:10] == maps[0, 0, :, 7].tolist()
    table = reach_maps(maps, "l", 0, max_distance=2)
    assert set(table["n_centre"].to_pylist()) == {2 * 4 * 4}  # rows/columns 3..6
    assert fits(9, 9, 3) and not fits(8, 9, 3)
    with pytest.raises(ValueError, match="no inner centre"):
        reach_maps(maps[:, :, :6, :6], "l", 0, max_distance=2)


def test_reach_in_groups_and_on_threads_equals_one_group(monkeypatch):
    import pan.core.chunks

    maps = np.round(np.random.default_rng(7).normal(size=(3, 5, 10, 11)), 1).astype(np.float32)
    one = reach_maps(maps, "l", 0, max_distance=3)  # one group of every neuron
    monkeypatch.setattr(pan.core.chunks, "CHUNK_VALUES", 2 * 3 * 2 * 3)  # two neurons per group
    assert one.num_rows == 5 * 4 * 4
    assert one.equals(reach_maps(maps, "l", 0, max_distance=3))
    assert one.equals(reach_maps(maps, "l", 0, max_distance=3, threads=2))
    assert one.equals(reach_maps(maps, "l", 0, max_distance=3, threads=3))


def test_small_layers_are_skipped_and_listed(tmp_path):
    from pan.beyond.reach import read_skipped, score_reach
    from pan.core.dumps import LayerDump, write_manifest

    dump = tmp_path / "dump"
    dump.mkdir()
    rng = np.random.default_rng(0)
    entries = []
    for index, size in enumerate((12, 6)):
        maps = rng.normal(size=(4, 2, size, size)).astype(np.float32)
        meta = {
            "height": str(size),
            "width": str(size),
            "neurons": "2",
            "layer": f"l{index}",
            "layer_index": str(index),
        }
        schema = pa.schema(
            [
                ("sample", pa.int32()),
                ("neuron", pa.int32()),
                ("activation", pa.list_(pa.float32(), size * size)),
            ],
            metadata=meta,
        )
        activation = pa.FixedSizeListArray.from_arrays(pa.array(maps.reshape(-1)), size * size)
        samples = pa.array(np.repeat(np.arange(4, dtype=np.int32), 2))
        neurons = pa.array(np.tile(np.arange(2, dtype=np.int32), 4))
        pq.write_table(
            pa.Table.from_arrays([samples, neurons, activation], schema=schema), dump / f"l{index}.parquet"
        )
        entries.append(LayerDump(index, f"l{index}", 2, (3, 3), size, size, f"l{index}.parquet"))
    write_manifest(dump, "m", entries, [])
    table = score_reach(dump, tmp_path / "reach.parquet", max_distance=3)
    assert set(table["layer"].to_pylist()) == {"l0"}
    assert read_skipped(tmp_path / "reach.parquet") == [{"name": "l1", "index": 1, "height": 6, "width": 6}]
