"""Shared fixtures: a workdir with the tiny hand-set CNN, generated images and a config."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from PIL import Image

from pan.bias.logits import Logits
from pan.core.scoring import score_maps
from pan.workflow.run import run_workflow

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))


def write_images(folder: Path, count: int, seed: int = 0, classes: tuple[str, ...] = ("a", "b")) -> None:
    """32x32 RGB PNGs in ImageFolder layout: channels 0 and 2 uniform in [0.8, 1]; channel 1
    the same with two black rows inside the image (see tests/tiny_net.py)."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = rng.uniform(0.8, 1.0, size=(32, 32, 3))
        for row in rng.choice(np.arange(2, 28), size=2, replace=False):
            pixels[row, :, 1] = 0.0
        target = folder / classes[i % len(classes)]
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(pixels * 255).astype(np.uint8)).save(target / f"img_{i:03d}.png")


def tiny_config(**overrides) -> dict:
    config = {
        "models": {
            "tiny": {
                "source": "python",
                "builder": "tiny_net.py:build",
                "input_size": 32,
                "resize_size": 32,
                "mean": [0.0, 0.0, 0.0],
                "std": [1.0, 1.0, 1.0],
                "categories": ["a", "b"],
            }
        },
        "images": {"source": "folder", "path": "images", "count": 16, "seed": 0},
        "theta": 0.5,
        "device": "cpu",
        "micro_batch": 8,
    }
    config.update(overrides)
    return config


@pytest.fixture
def tiny_workdir(tmp_path: Path) -> Path:
    """A fresh workdir: tiny_net.py, images/ (20 PNGs, two classes) and config.yaml."""
    shutil.copy(TESTS / "tiny_net.py", tmp_path / "tiny_net.py")
    write_images(tmp_path / "images", 20)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tiny_config()))
    return tmp_path


def runs_from(
    logits: dict[str, list[list[float]]], truth=None, categories=("x", "y", "z")
) -> dict[str, Logits]:
    n = len(next(iter(logits.values())))
    ids = [f"img{i}" for i in range(n)]
    return {
        v: Logits(
            "m",
            v,
            ids,
            None if truth is None else np.array(truth),
            np.array(x, dtype=np.float32),
            list(categories) if categories else None,
        )
        for v, x in logits.items()
    }


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One full run to results/tables/table2.csv, shared by the read-only tests below."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    shutil.copy(Path(__file__).parent / "tiny_net.py", workdir / "tiny_net.py")
    write_images(workdir / "images", 20)
    (workdir / "config.yaml").write_text(yaml.safe_dump(tiny_config()))
    run_workflow(workdir, "results/tables/table1.csv", "results/tables/table2.csv")
    return workdir


def ks_table(seed: int = 0) -> pl.DataFrame:
    """KS tables of three small layers scored by the pipeline's own code."""
    rng = np.random.default_rng(seed)
    frames = []
    for index, (neurons, size) in enumerate([(6, 10), (8, 8), (10, 6)]):
        maps = rng.normal(size=(5, neurons, size, size)).astype(np.float32)
        maps[:, 0, 0, :] += 6  # a top PAN per layer
        maps[:, 1, :, -1] += rng.normal(0, 3, size=(5, size)).astype(np.float32)  # a wide right border
        frames.append(pl.from_arrow(score_maps(maps, f"block{index}.conv", index)))
    return pl.concat(frames)
