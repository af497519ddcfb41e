"""The public Python API (pan/__init__.py, pan.api): the workflow's labels, without Snakemake."""

from __future__ import annotations

import subprocess
import sys

import polars as pl
import pytest
import torch
from conftest import TESTS
from tiny_net import EXPECTED_TYPES, build

import pan
from pan.capture.images import ImageSpec, image_records
from pan.capture.models import eval_transform

TINY_TRANSFORM = eval_transform(32, 32, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


def tiny_batch(workdir) -> list:
    """The 16 images the tiny workflow run draws (tests/conftest.py tiny_config), in its order."""
    return [r.load() for r in image_records(ImageSpec("folder", str(workdir / "images"), 16, 0))]


@pytest.mark.workflow
def test_find_pans_gives_the_labels_of_the_workflow(tiny_run):
    workflow = pl.read_parquet(tiny_run / "results/pans/tiny.parquet")
    images = tiny_batch(tiny_run)
    labels = pan.find_pans(build(), images, theta=0.5, device="cpu", transform=TINY_TRANSFORM)
    assert labels.equals(workflow)
    tensors = torch.stack([TINY_TRANSFORM(image) for image in images])
    assert pan.find_pans(build(), tensors, device="cpu", micro_batch=5).equals(workflow)


def test_find_pans_reads_a_folder_and_keeps_its_files_when_asked(tiny_workdir, tmp_path):
    out = tmp_path / "kept"
    labels = pan.find_pans(
        build(), tiny_workdir / "images", device="cpu", transform=TINY_TRANSFORM, out_dir=out
    )
    assert {(row["layer"], row["neuron"]): row["pan_type"] for row in labels.iter_rows(named=True)} == (
        EXPECTED_TYPES
    )
    assert (out / "pans.parquet").is_file() and (out / "activations/manifest.json").is_file()
    assert sorted(p.name for p in (out / "ks").iterdir()) == [
        "asymmetric.1.parquet",
        "conv1.parquet",
        "valid.parquet",
    ]


def test_find_pans_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="no images"):
        pan.find_pans(build(), [])
    with pytest.raises(ValueError, match=r"\(images, channels, H, W\)"):
        pan.find_pans(build(), torch.zeros(3, 32, 32))


def test_the_public_surface_is_documented_and_costs_no_torch_import():
    for name in pan.__all__:
        assert getattr(pan, name).__doc__ or name in ("BORDERS", "PAN_TYPES"), name
    assert ">>>" in pan.find_pans.__doc__
    code = (
        "import sys, pan, pan.core.scoring, pan.core.labelling, pan.workflow.config;"
        " print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=TESTS.parent)
    assert result.stdout.strip() == "False", result.stderr


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16"])
def test_find_pans_converts_pil_images_of_any_mode_as_the_workflow_does(tiny_workdir, mode):
    from pan.capture.images import rgb_image

    rgb = tiny_batch(tiny_workdir)
    converted = [image.convert(mode) if mode != "I;16" else _sixteen_bit(image) for image in rgb]
    labels = pan.find_pans(build(), converted, device="cpu", transform=TINY_TRANSFORM)
    expected = pan.find_pans(
        build(), [rgb_image(i) for i in converted], device="cpu", transform=TINY_TRANSFORM
    )
    assert labels.equals(expected)


def _sixteen_bit(image):
    import numpy as np
    from PIL import Image

    grey = np.asarray(image.convert("L"), dtype=np.uint16) * 257
    return Image.frombytes("I;16", image.size, grey.astype("<u2").tobytes())


@pytest.mark.parametrize("theta", [1.5, float("nan"), "0.5", None])
def test_find_pans_checks_theta_before_any_forward_pass(theta, tmp_path):
    with pytest.raises(ValueError, match="theta must be a number strictly between 0 and 1"):
        pan.find_pans(build(), torch.rand(8, 3, 32, 32), theta=theta, device="cpu", out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_find_pans_refuses_an_out_dir_that_holds_files(tmp_path):
    batch = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    pan.find_pans(build(), batch, device="cpu", out_dir=tmp_path / "kept")
    with pytest.raises(ValueError, match="not empty"):
        pan.find_pans(
            torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3, padding=1)), batch, out_dir=tmp_path / "kept"
        )
    assert sorted(p.name for p in (tmp_path / "kept/ks").iterdir()) == [
        "asymmetric.1.parquet",
        "conv1.parquet",
        "valid.parquet",
    ]
