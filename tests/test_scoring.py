"""Per-layer KS tables (pan.core.scoring): their schema, and refusing activations KS cannot read."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pan.core.scoring import KS_SCHEMA, check_finite, read_ks_tables, score_layer, score_maps


def test_a_ks_table_has_one_row_per_neuron_and_border_in_order(tmp_path):
    maps = np.random.default_rng(0).normal(size=(4, 3, 6, 6)).astype(np.float32)
    table = score_maps(maps, "conv", 2)
    assert table.schema.equals(KS_SCHEMA) and table.num_rows == 12
    frame = pl.from_arrow(table)
    assert frame.select("neuron", "border").rows()[:5] == [(0, "T"), (0, "B"), (0, "L"), (0, "R"), (1, "T")]
    assert set(frame["n_border"]) == {24} and set(frame["n_centre"]) == {4 * 16}
    pq.write_table(table, tmp_path / "a.parquet")
    assert read_ks_tables([tmp_path / "a.parquet", tmp_path / "a.parquet"]).height == 24


def test_nan_and_infinite_activations_name_the_layer_neurons_and_count(tmp_path):
    maps = np.zeros((2, 4, 5, 5), dtype=np.float32)
    maps[0, 1, 2, 2] = np.nan
    maps[1, 3, :, 0] = np.inf
    with pytest.raises(ValueError) as error:
        check_finite(maps, "block.conv")
    assert str(error.value) == (
        "layer 'block.conv': 6 NaN or infinite activations in neurons 1 (1 values), 3 (5 values); "
        "check the model's weights and its input normalisation"
    )
    check_finite(np.ones((1, 1, 3, 3), dtype=np.float32), "fine")


def test_score_layer_refuses_a_dump_with_nan(tmp_path):
    from contextlib import ExitStack

    from pan.core.dumps import LayerWriters

    maps = np.random.default_rng(0).normal(size=(3, 2, 5, 5)).astype(np.float32)
    maps[1, 0, 0, 0] = np.nan
    with ExitStack() as stack:
        LayerWriters(tmp_path, stack).write(0, "conv", (3, 3), maps)
    with pytest.raises(ValueError, match="layer 'conv': 1 NaN or infinite activations in neurons 0"):
        score_layer(tmp_path / "conv.parquet", tmp_path / "ks.parquet")
    assert not (tmp_path / "ks.parquet").exists()


@pytest.mark.parametrize("prefetch", [True, False])
def test_score_dump_reading_ahead_writes_what_score_layer_writes(tmp_path, monkeypatch, prefetch):
    """score_dump reads the next layer while it scores one (or, for files over PREFETCH_BYTES,
    after it), into two buffers it reuses (layers that grow and shrink): either way each table
    and the interior null equal what score_layer_with_null gives layer by layer, and a broken
    layer stops the job there, its error raised and no table written for it."""
    from contextlib import ExitStack

    from pan.capture.images import ImageRecord
    from pan.core import scoring
    from pan.core.dumps import LayerWriters, write_manifest
    from pan.core.scoring import score_dump, score_layer_with_null

    if not prefetch:
        monkeypatch.setattr(scoring, "PREFETCH_BYTES", 0)
    rng = np.random.default_rng(1)
    dump = tmp_path / "dump"
    dump.mkdir()
    with ExitStack() as stack:
        writers = LayerWriters(dump, stack)
        for index, size in enumerate((4, 9, 6, 11, 5)):
            maps = rng.normal(size=(5, 3, size, size)).astype(np.float32)
            writers.write(index, f"conv{index}", (3, 3), maps)
    records = [ImageRecord(f"img_{i}", "a", lambda: None) for i in range(5)]
    write_manifest(dump, "tiny", list(writers.dumps.values()), records)
    written = score_dump(dump, tmp_path / "ks", replicates=20, interior_out=tmp_path / "interior.parquet")
    assert [path.name for path in written] == [f"conv{index}.parquet" for index in range(5)]
    interiors = []
    for path in written:
        alone, interior = score_layer_with_null(dump / path.name, tmp_path / "alone.parquet", replicates=20)
        assert pq.read_table(path).equals(alone)
        interiors.append(interior)
    assert pq.read_table(tmp_path / "interior.parquet").equals(pa.concat_tables(interiors))

    (dump / "conv1.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="conv1.parquet is unreadable"):
        score_dump(dump, tmp_path / "ks2")
    assert sorted(path.name for path in (tmp_path / "ks2").iterdir()) == ["conv0.parquet"]
