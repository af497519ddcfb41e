"""One neuron up close (pan.beyond.neurons): region statistics, and its maps under reflect padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TESTS, tiny_config, write_images
from scipy.stats import ks_2samp

from pan.beyond.neurons import RegionSamples
from pan.bias.reflect import with_reflect_padding
from pan.capture.images import ImageSpec, image_records
from pan.capture.inference import layer_outputs, preprocessed_batches
from pan.capture.layers import AnalysedLayer
from pan.capture.models import ModelSpec, load_model


def planted_maps(images: int = 6, size: int = 12, seed: int = 0) -> np.ndarray:
    """Maps ``(images, size, size)`` whose top row lies above everything else: a top PAN."""
    maps = np.random.default_rng(seed).normal(size=(images, size, size)).astype(np.float32)
    maps[:, 0, :] += 8
    return maps


def test_region_statistics_are_scipy_ks():
    maps = planted_maps()
    regions = RegionSamples.from_maps(maps)
    centre = maps[:, 1:-1, 1:-1].ravel()
    for border, values in regions.borders.items():
        assert regions.stats[border].ks == pytest.approx(ks_2samp(values, centre).statistic, abs=1e-12)
    top_k = regions.truncated("T")["centre+ (top k)"]
    assert len(top_k) == len(regions.borders["T"]) and top_k.min() >= np.median(centre)
    assert regions.stats["T"].ks == 1.0 and regions.stats["T"].ks_plus == 1.0


def test_reflect_layer_outputs_change_the_border_only(tmp_path):
    """The reflect model's conv1 equals the zero-padded one away from the border, not on it."""
    write_images(tmp_path / "images", 4)
    spec = ModelSpec.from_config(
        "tiny", {**tiny_config()["models"]["tiny"], "builder": f"{TESTS}/tiny_net.py:build"}
    )
    loaded = load_model(spec)
    records = image_records(ImageSpec(source="folder", path=str(tmp_path / "images"), count=None))
    variant = with_reflect_padding(loaded.model)
    watched = AnalysedLayer(0, "conv1", variant.get_submodule("conv1"))
    batches = preprocessed_batches(records, loaded.transform, 3)
    reflected = layer_outputs(variant, watched, batches, torch.device("cpu"))[:, 0].numpy()
    batch = torch.stack([loaded.transform(r.load()) for r in records])
    with torch.inference_mode():
        zero = loaded.model.conv1(batch)[:, 0].numpy()
    assert reflected.shape == zero.shape == (4, 32, 32)
    np.testing.assert_allclose(reflected[:, 1:, :], zero[:, 1:, :], rtol=1e-6)  # neuron 0 taps upwards
    assert np.abs(reflected[:, 0, :] - zero[:, 0, :]).min() > 0.5  # the top PAN no longer sees zeros
