"""Shared fixtures: a workdir with the tiny hand-set CNN, generated images and a config."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

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
        "images": {"source": "folder", "path": "images", "batch_size": 16, "seed": 0},
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


def run_snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real workflow in ``workdir``; output captured, raised on failure when ``check``."""
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        *args,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def scheduled_jobs(dry_run_output: str) -> dict[str, int]:
    """Job counts from the 'Job stats' table of a dry run."""
    stats = dry_run_output.split("Job stats:")[1].split("\n\n")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M) if m[1] != "total"}
