"""pan.workflow.run_ks: a run scored in memory gives the KS tables of its dump, to the bit."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import tiny_config, write_images

from pan.capture.images import ImageSpec
from pan.capture.models import ModelSpec
from pan.trust.controls import dump_run
from pan.workflow.resources import in_memory_ks_mem_mb, map_groups, write_layer_shapes
from pan.workflow.run_ks import score_run

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[ModelSpec, ImageSpec, Path]:
    shutil.copy(TESTS / "tiny_net.py", tmp_path / "tiny_net.py")
    write_images(tmp_path / "images", 12)
    settings = tiny_config()["models"]["tiny"] | {"builder": str(tmp_path / "tiny_net.py:build")}
    spec = ModelSpec.from_config("tiny", settings)
    shapes = tmp_path / "shapes.json"
    write_layer_shapes(spec, shapes)
    return spec, ImageSpec("folder", str(tmp_path / "images"), 12, 0), shapes


def _tables(folder: Path) -> dict[str, pl.DataFrame]:
    return {f.name: pl.read_parquet(f) for f in sorted(folder.glob("*.parquet"))}


@pytest.mark.parametrize("condition", ["trained", "reflect", "random_init"])
def test_in_memory_scores_equal_the_scores_of_the_dump(tiny, tmp_path, condition):
    spec, images, shapes = tiny
    dump_run(spec, images, tmp_path / "dump", None, condition=condition, micro_batch=5, device="cpu")
    from_dump = score_run(
        spec, images, tmp_path / "a", tmp_path / "a.json", condition, dump=tmp_path / "dump", device="cpu"
    )
    # A budget below one layer's maps: one forward pass per layer.
    in_memory = score_run(
        spec,
        images,
        tmp_path / "b",
        tmp_path / "b.json",
        condition,
        shapes=shapes,
        micro_batch=5,
        device="cpu",
        budget_mb=1e-6,
    )
    assert len(map_groups(json.loads(shapes.read_text()), 12, 1e-6)) == 3  # every tiny layer
    expected, got = _tables(tmp_path / "a"), _tables(tmp_path / "b")
    assert list(expected) == list(got) and len(expected) == 3
    for name, table in expected.items():
        assert table.equals(got[name]), name
    assert from_dump == in_memory and in_memory["available"]
    assert json.loads((tmp_path / "b.json").read_text())["images"] == in_memory["images"]


def test_map_groups_keep_depth_order_within_the_budget_filled_from_the_back():
    shapes = {
        "input_size": 8,
        "parameters": 10,
        "layers": [
            {"name": n, "out_channels": 1, "height": 10, "width": 25} for n in ("a", "b", "c", "d")
        ],  # 1,000 bytes per image each
    }
    assert map_groups(shapes, 1000, budget_mb=2.5) == [["a", "b"], ["c", "d"]]
    assert map_groups(shapes, 1000, budget_mb=0.5) == [["a"], ["b"], ["c"], ["d"]]
    assert map_groups(shapes, 1000) == [["a", "b", "c", "d"]]
    # filled from the deepest layer back: the earlier group's pass stops sooner
    assert map_groups({**shapes, "layers": shapes["layers"][:3]}, 1000, budget_mb=2.5) == [["a"], ["b", "c"]]
    assert in_memory_ks_mem_mb(shapes, 1000, budget_mb=2.5) < in_memory_ks_mem_mb(shapes, 1000)


def test_one_reflect_pass_gives_every_card_the_maps_of_its_own_pass(tiny, tmp_path):
    from pan.beyond.neurons import neuron_card, neuron_cards
    from pan.beyond.selection import SlotNeuron

    spec, images, _ = tiny
    dump_run(spec, images, tmp_path / "dump", None, micro_batch=5, device="cpu")
    neurons = [  # two channels of one layer, and a shallower layer after them
        SlotNeuron("pan1", "asymmetric.1", 1, ""),
        SlotNeuron("pan2", "conv1", 3, ""),
        SlotNeuron("edge1", "asymmetric.1", 0, ""),
    ]
    cards = neuron_cards(spec, images, tmp_path / "dump", neurons, [0, 1], 5, "cpu", io.StringIO())
    assert list(cards) == ["pan1", "pan2", "edge1"]
    for neuron in neurons:
        alone = neuron_card(spec, images, tmp_path / "dump", neuron, [0, 1], 5, "cpu", io.StringIO())
        shared = cards[neuron.slot]
        assert shared.found.neuron == neuron
        np.testing.assert_array_equal(alone.found.maps, shared.found.maps)
        np.testing.assert_array_equal(alone.kernel, shared.kernel)
        assert [h.image_id for h in alone.heatmaps] == [h.image_id for h in shared.heatmaps]
        for mine, theirs in zip(alone.heatmaps, shared.heatmaps, strict=True):
            np.testing.assert_array_equal(mine.crop, theirs.crop)
        assert alone.reflect.shape == shared.reflect.shape
        np.testing.assert_array_equal(alone.reflect.centre, shared.reflect.centre)
        for border, values in alone.reflect.borders.items():
            np.testing.assert_array_equal(values, shared.reflect.borders[border])
        assert alone.reflect.stats == shared.reflect.stats
