"""A missing, truncated or corrupt activation dump gives a DumpError naming the file and the fix."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest

from pan.capture.images import ImageRecord
from pan.core.dumps import (
    MANIFEST,
    DumpError,
    LayerWriters,
    read_dump_metadata,
    read_feature_maps,
    read_manifest,
    write_manifest,
)


def _rerun(dump_dir: Path) -> str:
    return (
        f"rerun the model's activation dump: delete {dump_dir} and run snakemake again "
        "(or snakemake --forcerun activations <your target>, which redoes every model's dump)"
    )


@pytest.fixture
def dump_dir(tmp_path: Path) -> Path:
    """A valid dump of one layer: 3 images, 2 neurons, 4x5 maps (written in two row groups)."""
    out = tmp_path / "activations" / "tiny"
    out.mkdir(parents=True)
    maps = np.arange(3 * 2 * 4 * 5, dtype=np.float32).reshape(3, 2, 4, 5)
    with ExitStack() as stack:
        writers = LayerWriters(out, stack)
        writers.write(0, "conv1", (3, 3), maps[:2])
        writers.first_sample = 2
        writers.write(0, "conv1", (3, 3), maps[2:])
    records = [ImageRecord(f"img_{i}", "a", lambda: None) for i in range(3)]
    write_manifest(out, "tiny", list(writers.dumps.values()), records)
    return out


def test_a_valid_dump_reads_back(dump_dir):
    manifest = read_manifest(dump_dir)
    assert manifest["model"] == "tiny" and [layer["name"] for layer in manifest["layers"]] == ["conv1"]
    maps = read_feature_maps(dump_dir / "conv1.parquet")
    np.testing.assert_array_equal(maps, np.arange(120, dtype=np.float32).reshape(3, 2, 4, 5))
    assert read_feature_maps(dump_dir / "conv1.parquet", neurons=[1]).shape == (3, 1, 4, 5)
    assert read_dump_metadata(dump_dir / "conv1.parquet") == {
        "height": "4",
        "width": "5",
        "neurons": "2",
        "layer": "conv1",
        "layer_index": "0",
        "padding": "zeros",
    }


def test_a_dump_reads_into_the_front_of_a_buffer_large_enough(dump_dir):
    """read_feature_maps(into=...) fills the front of a large enough buffer (score_dump reuses
    two), and reads into a new array when the buffer is too small."""
    expected = np.arange(120, dtype=np.float32).reshape(3, 2, 4, 5)
    buffer = np.full(200, -1, dtype=np.float32)
    maps = read_feature_maps(dump_dir / "conv1.parquet", into=buffer)
    np.testing.assert_array_equal(maps, expected)
    assert np.shares_memory(maps, buffer) and (buffer[120:] == -1).all()
    small = np.full(119, -1, dtype=np.float32)
    maps = read_feature_maps(dump_dir / "conv1.parquet", into=small)
    np.testing.assert_array_equal(maps, expected)
    assert not np.shares_memory(maps, small) and (small == -1).all()


def test_missing_manifest(dump_dir):
    (dump_dir / MANIFEST).unlink()
    with pytest.raises(DumpError) as error:
        read_manifest(dump_dir)
    assert (
        str(error.value) == f"activation dump manifest {dump_dir / MANIFEST} is missing; {_rerun(dump_dir)}"
    )


def test_truncated_manifest(dump_dir):
    path = dump_dir / MANIFEST
    path.write_text(path.read_text()[:40])
    with pytest.raises(DumpError) as error:
        read_manifest(dump_dir)
    message = str(error.value)
    assert message.startswith(f"activation dump manifest {path} is unreadable (")
    assert message.endswith(f"); {_rerun(dump_dir)}")
    assert isinstance(error.value.__cause__, json.JSONDecodeError)


def test_manifest_of_another_shape(dump_dir):
    (dump_dir / MANIFEST).write_text("[]")
    with pytest.raises(DumpError) as error:
        read_manifest(dump_dir)
    assert str(error.value) == (
        f"activation dump manifest {dump_dir / MANIFEST} lacks 'model', 'layers' or 'images'; "
        f"{_rerun(dump_dir)}"
    )


def test_dump_error_is_a_value_error():
    assert issubclass(DumpError, ValueError)


def _assert_unreadable(path: Path, error: pytest.ExceptionInfo) -> None:
    message = str(error.value)
    assert message.startswith(f"layer dump {path} is unreadable (")
    assert message.endswith(f"); {_rerun(path.parent)}")


def test_parquet_of_garbage_bytes(dump_dir):
    path = dump_dir / "conv1.parquet"
    path.write_bytes(b"\x00garbage, not parquet" * 10)
    for read in (read_feature_maps, read_dump_metadata):
        with pytest.raises(DumpError) as error:
            read(path)
        _assert_unreadable(path, error)


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated_parquet(dump_dir, keep):
    path = dump_dir / "conv1.parquet"
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DumpError) as error:
        read_feature_maps(path)
    _assert_unreadable(path, error)


def test_empty_parquet(dump_dir):
    path = dump_dir / "conv1.parquet"
    path.write_bytes(b"")
    with pytest.raises(DumpError) as error:
        read_feature_maps(path)
    _assert_unreadable(path, error)


def test_missing_parquet(dump_dir):
    path = dump_dir / "conv1.parquet"
    path.unlink()
    with pytest.raises(DumpError) as error:
        read_feature_maps(path)
    assert str(error.value) == f"layer dump {path} is missing; {_rerun(dump_dir)}"


def test_parquet_that_is_no_pan_dump(dump_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = dump_dir / "other.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), path)
    with pytest.raises(DumpError) as error:
        read_feature_maps(path)
    assert str(error.value) == (
        f"layer dump {path} is no pan dump (metadata lacks ['height', 'width', 'neurons', 'layer', "
        f"'layer_index']); {_rerun(dump_dir)}"
    )
