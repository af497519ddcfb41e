"""§4 for any output (pan.bias.outputs): a planted dense-output net, evaluated by the real code."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from conftest import TESTS
from dense_net import build
from test_api import TINY_TRANSFORM, tiny_batch

import pan
from pan.bias.evaluation import evaluate_variants
from pan.bias.logits import read_logits
from pan.bias.odds import write_odds
from pan.bias.outputs import flat_frame, flat_outputs, frame_mask, write_output_change
from pan.bias.variants import VARIANTS
from pan.capture.images import ImageSpec
from pan.capture.models import ModelSpec

FRAME = 3


def dense_spec() -> ModelSpec:
    entry = {"source": "python", "builder": f"{TESTS / 'dense_net.py'}:build", "input_size": 32}
    return ModelSpec.from_config("dense", entry | {"resize_size": 32, "mean": [0, 0, 0], "std": [1, 1, 1]})


def test_a_planted_dense_net_gets_the_border_frame_change_built_into_it(tiny_workdir, tmp_path):
    images = tiny_batch(tiny_workdir)
    labels = pan.find_pans(build(), images, device="cpu", transform=TINY_TRANSFORM)
    assert labels.filter(pl.col("is_pan"))[["neuron", "pan_type"]].rows() == [(0, "T")]
    labels.write_parquet(tmp_path / "labels.parquet")
    outputs = {variant: tmp_path / f"{variant}.parquet" for variant in VARIANTS}
    image_set = ImageSpec("folder", str(tiny_workdir / "images"), 8, 0)
    evaluate_variants(dense_spec(), image_set, tmp_path / "labels.parquet", outputs, device="cpu")
    original = read_logits(outputs["original"])
    assert original.output_shape == (1, 32, 32) and not original.is_classifier

    files = [tmp_path / name for name in ("change.csv", "images.csv", "map.parquet")]
    table = write_output_change(list(outputs.values()), *files, frame=FRAME)
    rows = {row["variant"]: row for row in table.iter_rows(named=True)}
    # Built in: reflect on channel 0 replaces the top row's 0 by minus the input's second row.
    batch = torch.stack([TINY_TRANSFORM(image) for image in image_set_images(tiny_workdir)])
    second_row = batch[:, 0, 1, :].double().numpy()  # (images, width)
    frame_pixels = frame_mask(32, 32, FRAME).sum()
    expected_frame = second_row.sum(axis=1).mean() / frame_pixels
    for variant in ("pan_reflect", "reflect"):
        assert rows[variant]["kind"] == "spatial" and rows[variant]["output_shape"] == "1x32x32"
        assert rows[variant]["frame_l1"] == pytest.approx(expected_frame, rel=1e-6)
        assert rows[variant]["interior_l1"] == 0 and rows[variant]["frame_ratio"] is None
        assert rows[variant]["mean_l1"] == pytest.approx(second_row.sum(axis=1).mean() / 1024, rel=1e-6)
    assert (
        rows["rand_reflect"]["mean_l1"] == 0 == rows["rand_reflect"]["frame_l1"]
    )  # channel 1 sees no padding

    ranking = pl.read_csv(files[1])
    pan_rank = ranking.filter(variant="pan_reflect").sort("rank")
    assert pan_rank["l1"].is_sorted(descending=True)
    assert pan_rank["l1"][0] == pytest.approx(second_row.sum(axis=1).max() / 1024, rel=1e-6)
    change = pl.read_parquet(files[2]).filter(variant="pan_reflect")
    assert set(change.filter(pl.col("mean_abs_change") > 0)["row"]) == {0}
    # A dense output has no classes: its odds table is empty, not softmax over pixels.
    assert write_odds(list(outputs.values()), tmp_path / "odds.csv").is_empty()


def image_set_images(workdir):
    from pan.capture.images import image_records

    return [r.load() for r in image_records(ImageSpec("folder", str(workdir / "images"), 8, 0))]


def test_the_flat_image_frame_is_the_padding_artefact_built_into_the_net():
    outputs = flat_outputs(dense_spec(), levels=(0, 128))
    table = flat_frame("dense", outputs, FRAME)
    assert table["level"].to_list() == [0, 128]  # level 0: all zero, no artefact
    row = table.row(1, named=True)
    v = 128 / 255
    frame_pixels = frame_mask(32, 32, FRAME).sum()
    # Top row: -v (channel 0 reads the zero padding), everywhere else -2v.
    assert row["interior_mean"] == pytest.approx(-2 * v)
    assert row["frame_mean"] == pytest.approx((-32 * v - (frame_pixels - 32) * 2 * v) / frame_pixels)
    assert row["frame_minus_interior"] > 0
    assert table.row(0, named=True)["frame_minus_interior"] == 0


def test_the_frame_must_leave_an_interior():
    assert frame_mask(8, 8, 3).sum() == 64 - 4
    with pytest.raises(ValueError, match="leaves no interior"):
        frame_mask(6, 6, 3)
    assert np.array_equal(frame_mask(7, 9, 1)[1:-1, 1:-1], np.zeros((5, 7), bool))
