"""Layer shapes checked before the jobs that need them: reflect padding larger than the map it
mirrors (pan.workflow.shape_checks), refused while the DAG is built and named by layer."""

from __future__ import annotations

import polars as pl
import pytest
import torch
import yaml
from conftest import tiny_config

from pan.bias.reflect import with_reflect_padding
from pan.capture.models import ModelSpec
from pan.workflow.resources import layer_shapes
from pan.workflow.run import run_workflow
from pan.workflow.shape_checks import check_reflect_fits, reflect_misfits, unscoreable_layers

SMALL_NET = """
from torch import nn


def build():  # at 32 px the 5x5 conv sees a 2x2 map: zero padding 2 fits, reflect padding 2 does not
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, stride=16), nn.ReLU(),
        nn.Conv2d(4, 3, 5, padding=2), nn.ReLU(),
        nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(3, 2, 3)),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2),
    )
"""


def small_spec(tmp_path, input_size: int) -> ModelSpec:
    (tmp_path / "small_net.py").write_text(SMALL_NET)
    return ModelSpec(
        "small",
        "python",
        builder=f"{tmp_path}/small_net.py:build",
        input_size=input_size,
        resize_size=input_size,
    )


def test_layer_shapes_record_each_convs_input_and_reflect_padding(tmp_path):
    shapes = layer_shapes(small_spec(tmp_path, 32))
    geometry = [(r["name"], r["input_height"], r["input_width"], r["padding"]) for r in shapes["layers"]]
    # The pad module before "4.1" joins its padding, and the map it mirrors is the one before it.
    assert geometry == [("0", 32, 32, [1, 1, 1, 1]), ("2", 2, 2, [2, 2, 2, 2]), ("4.1", 2, 2, [0, 1, 0, 1])]


def test_reflect_padding_larger_than_the_map_is_refused_naming_layer_input_padding_and_fix(tmp_path):
    shapes = layer_shapes(small_spec(tmp_path, 32))
    assert [m["name"] for m in reflect_misfits(shapes)] == ["2"]
    with pytest.raises(ValueError) as error:
        check_reflect_fits("small", shapes)
    message = str(error.value)
    assert "layer '2' has a 2x2 input" in message
    assert "(2, 2, 2, 2)" in message
    assert "about 48 px or more; it is 32" in message
    # The fix the message names works: at 48 px the layer sees 3x3 maps, and the variant runs.
    spec = small_spec(tmp_path, 48)
    check_reflect_fits("small", layer_shapes(spec))
    with_reflect_padding(_build(tmp_path))(torch.rand(2, 3, 48, 48))


def _build(tmp_path):
    namespace: dict = {}
    exec((tmp_path / "small_net.py").read_text(), namespace)  # noqa: S102 - the test's own net
    return namespace["build"]().eval()


def test_the_reflect_variant_names_the_layer_whose_map_is_too_small(tmp_path):
    small_spec(tmp_path, 32)
    with pytest.raises(ValueError, match=r"layer '2': reflect padding .* input is 2x2"):
        with_reflect_padding(_build(tmp_path))(torch.rand(1, 3, 32, 32))


def test_a_conv_that_pads_with_reflect_itself_is_no_misfit():
    shapes = {
        "input_size": 8,
        "layers": [{"name": "c", "input_height": 1, "input_width": 1, "padding": None}],
    }
    assert reflect_misfits(shapes) == []


def test_unscoreable_layers_lists_maps_below_3x3(tmp_path):
    table = unscoreable_layers({"small": layer_shapes(small_spec(tmp_path, 32))})
    assert table.select("layer", "neurons", "height", "width").rows() == [
        ("0", 4, 2, 2),
        ("2", 3, 2, 2),
        ("4.1", 2, 1, 1),
    ]


def test_a_reflect_target_is_refused_before_any_job_and_table2_still_runs(tiny_workdir):
    (tiny_workdir / "small_net.py").write_text(SMALL_NET)
    config = tiny_config(
        models={"small": {"source": "python", "builder": "small_net.py:build", "input_size": 32}}
    )
    (tiny_workdir / "config.yaml").write_text(yaml.safe_dump(config))
    for target in ("results/origin/small.parquet", "results/controls/reflect/pans/small.parquet"):
        result = run_workflow(tiny_workdir, target, check=False)
        assert result.returncode != 0
        assert "layer '2' has a 2x2 input" in result.stdout + result.stderr
        assert not (tiny_workdir / "results").exists()  # no job ran, not even layer_shapes
    dry = run_workflow(tiny_workdir, "-n", "results/tables/table2.csv", check=False)
    assert dry.returncode == 0, dry.stderr


def test_tables_show_scoreable_neurons_and_list_the_2x2_layer(tiny_workdir):
    # At 48 px the first two convs give 3x3 maps, the last 2x2: its 2 neurons cannot be scored.
    (tiny_workdir / "small_net.py").write_text(SMALL_NET)
    model = {"source": "python", "builder": "small_net.py:build", "input_size": 48, "resize_size": 48}
    (tiny_workdir / "config.yaml").write_text(yaml.safe_dump(tiny_config(models={"small": model})))
    result = run_workflow(tiny_workdir)  # the default target: Tables 1 and 2, unscoreable.csv
    table1 = pl.read_csv(tiny_workdir / "results/tables/table1.csv", schema_overrides={"layer": pl.String})
    assert table1["rule"].unique(maintain_order=True).to_list() == ["paper", "share"]
    table1 = table1.filter(pl.col("rule") == "paper")
    assert table1.select("layer", "neurons", "scoreable_neurons").rows() == [
        ("0", 4, 4),
        ("2", 3, 3),
        ("4.1", 2, 0),
    ]
    assert table1["pan_pct_scoreable"][2] is None
    table2 = pl.read_csv(tiny_workdir / "results/tables/table2.csv")
    row = table2.filter(pl.col("rule") == "paper").row(0, named=True)
    assert (row["neurons"], row["scoreable_neurons"]) == (9, 7)
    assert row["pan_pct_scoreable"] == round(100 * row["pans"] / 7, 2)
    assert row["pan_pct"] == round(100 * row["pans"] / 9, 2)
    unscoreable = pl.read_csv(
        tiny_workdir / "results/tables/unscoreable.csv", schema_overrides={"layer": pl.String}
    )
    assert unscoreable.select("model", "layer", "neurons", "height", "width").rows() == [
        ("small", "4.1", 2, 2, 2)
    ]
    log = (tiny_workdir / "results/logs/tables/unscoreable.log").read_text()
    assert "model small, layer 4.1: 2 neurons with 2x2 maps are not scoreable" in log
    assert (
        "layer 4.1: 2 of 2 neurons not scoreable"
        in (tiny_workdir / "results/logs/tables/table2.log").read_text()
    )
    assert result.returncode == 0
