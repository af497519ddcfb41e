"""A missing, truncated or corrupt activation dump gives a DumpError naming the file and the fix."""

from __future__ import annotations

import io
import json
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest

from pan.dumps import (
    MANIFEST,
    DumpError,
    LayerWriters,
    read_dump_metadata,
    read_feature_maps,
    read_manifest,
    write_manifest,
)
from pan.images import ImageRecord


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
    }


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


REUSED_CONV_NETS = """
import torch
from torch import nn
import torch.nn.functional as F


class SameScale(nn.Module):  # one conv applied twice in a row (weight sharing, a recurrent block)
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.edge = nn.Conv2d(3, 2, 3, padding=1)
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        self.edge(x)
        return self.head(self.conv(torch.relu(self.conv(x))).mean(dim=(2, 3)))


class TwoScales(nn.Module):  # one conv on the input and on a downsampled input
    def __init__(self):
        super().__init__()
        self.edge = nn.Conv2d(3, 2, 3, padding=1)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        self.edge(x)
        full, half = self.conv(x), self.conv(F.avg_pool2d(x, 2))
        return self.head(torch.cat([full.mean(dim=(2, 3)), half.mean(dim=(2, 3))], dim=1))


class Once(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.conv(x).mean(dim=(2, 3)))


def same_scale():
    return SameScale()


def two_scales():
    return TwoScales()


def once():
    return Once()
"""


def _dump(tmp_path: Path, builder: str, out: Path):
    import torch
    from conftest import write_images

    from pan.activations import dump_activations
    from pan.images import ImageSpec
    from pan.models import ModelSpec

    torch.manual_seed(0)
    net_file = tmp_path / "reused_nets.py"
    net_file.write_text(REUSED_CONV_NETS)
    if not (tmp_path / "images").is_dir():
        write_images(tmp_path / "images", 10)
    spec = ModelSpec(
        name="reused",
        source="python",
        builder=f"{net_file}:{builder}",
        input_size=32,
        resize_size=32,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
    )
    images = ImageSpec(source="folder", path=str(tmp_path / "images"), batch_size=10, seed=0)
    return dump_activations(spec, images, out, micro_batch=4, device="cpu", progress=io.StringIO())


@pytest.mark.parametrize("builder", ["same_scale", "two_scales"])
def test_a_conv_run_twice_per_forward_pass_is_refused_and_leaves_no_dump(tmp_path, builder):
    out = tmp_path / "activations" / "reused"
    with pytest.raises(ValueError) as error:
        _dump(tmp_path, builder, out)
    assert str(error.value) == (
        "model 'reused': analysed layer(s) 'conv' (2 calls) ran more than once per forward pass "
        "(weight sharing, a recurrent block or one conv at several scales); pan needs one map per "
        "image and layer, so it cannot analyse such a layer: give each use of the conv its own module"
    )
    assert list(out.iterdir()) == []  # no manifest, no half-written layer files


def test_a_conv_run_once_dumps_one_row_per_image_and_neuron(tmp_path):
    out = tmp_path / "activations" / "once"
    out.mkdir(parents=True)
    (out / MANIFEST).write_text("{}")  # a stale manifest of an earlier run is replaced
    dumps = _dump(tmp_path, "once", out)
    assert [d.name for d in dumps] == ["conv"]
    assert read_feature_maps(out / "conv.parquet").shape == (10, 4, 32, 32)
    assert read_manifest(out)["model"] == "reused"


def test_check_single_calls_lists_every_repeated_layer():
    from pan.activations import check_single_calls

    check_single_calls("m", {"a": 1, "b": 1})
    with pytest.raises(
        ValueError, match=r"^model 'm': analysed layer\(s\) 'b' \(3 calls\), 'c' \(2 calls\) ran"
    ):
        check_single_calls("m", {"a": 1, "b": 3, "c": 2})
