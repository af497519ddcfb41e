"""Model sources (pan.capture.models): timm models through the workflow, clear errors for missing
weights, and the zoo's whole DAG offline."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml

from pan.capture.models import MissingWeightsError, ModelSpec, ModelSpecError, load_model
from pan.workflow.run import run_workflow

REPO = Path(__file__).resolve().parents[1]
TIMM_FAMILIES = {  # a ResNet, an EfficientNet with TF "SAME" padding, a MobileNetV3, a ConvNeXt
    "resnet": "resnet18.a1_in1k",
    "tf_efficientnet": "tf_efficientnet_b0.in1k",
    "mobilenetv3": "mobilenetv3_small_100.lamb_in1k",
    "convnext": "convnext_atto.d2_in1k",
}
SMALL = {"pretrained": False, "input_size": 64}  # random init, no download; small maps, fast
IMAGES = {"source": "builtin", "count": 8, "seed": 0}


def write_config(workdir: Path, models: dict, **extra) -> None:
    (workdir / "config.yaml").write_text(
        yaml.safe_dump({"models": models, "images": IMAGES, **extra}, sort_keys=False)
    )


@pytest.mark.workflow
def test_timm_models_of_four_families_run_through_the_workflow_to_table2(tmp_path):
    pytest.importorskip("timm")
    write_config(
        tmp_path, {name: {"source": "timm", "builder": b, **SMALL} for name, b in TIMM_FAMILIES.items()}
    )
    run_workflow(tmp_path, "results/tables/table2.csv", "--config", "device=cpu")
    table2 = pl.read_csv(tmp_path / "results/tables/table2.csv")
    assert table2["model"].to_list() == list(TIMM_FAMILIES)
    assert (table2["neurons"] > 100).all()
    manifest = yaml.safe_load((tmp_path / "results/activations/tf_efficientnet/manifest.json").read_text())
    assert manifest["layers"][0]["height"] == 32  # timm's Conv2dSame stem: ceil(64 / 2), TF "SAME"


def test_timm_transform_comes_from_the_models_data_config():
    pytest.importorskip("timm")
    loaded = load_model(ModelSpec("m", "timm", builder="tf_efficientnet_b0.in1k", pretrained=False))
    assert loaded.input_size == 224 and "bicubic" in repr(loaded.transform)
    assert len(loaded.categories) == 1000
    assert load_model(ModelSpec("m", "timm", builder="resnet18", **SMALL)).input_size == 64
    with pytest.raises(ModelSpecError, match="is no timm model"):
        load_model(ModelSpec("m", "timm", builder="no_such_net"))


def test_missing_timm_weights_fail_at_once_naming_the_file_and_where_to_put_it(tmp_path, monkeypatch):
    pytest.importorskip("timm")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no download, even with internet
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_hf_home"))
    write_config(tmp_path, {"r18": {"source": "timm", "builder": "resnet18.a1_in1k"}})
    result = run_workflow(tmp_path, "results/tables/table2.csv", check=False)
    log = (tmp_path / "results/logs/activations/r18.log").read_text()
    assert result.returncode != 0
    assert "huggingface-cli download timm/resnet18.a1_in1k" in log
    assert "model.safetensors from https://huggingface.co/timm/resnet18.a1_in1k" in log
    assert "'checkpoint: path/to/model.safetensors'" in log
    assert "img/s" not in log  # before any image work
    assert not (tmp_path / "results/activations/r18").exists()


def test_a_missing_checkpoint_file_fails_before_any_job(tmp_path):
    write_config(
        tmp_path, {"r18": {"source": "timm", "builder": "resnet18", "checkpoint": "nope.safetensors"}}
    )
    result = run_workflow(tmp_path, "results/tables/table2.csv", check=False)
    assert result.returncode != 0 and "checkpoint file nope.safetensors does not exist" in result.stderr
    assert not (tmp_path / "results").exists()
    with pytest.raises(MissingWeightsError):
        ModelSpec.from_config("m", {"source": "timm", "builder": "resnet18", "checkpoint": "nope"})


def test_the_zoo_builds_its_whole_dag_offline(tmp_path):
    zoo = yaml.safe_load((REPO / "config.zoo.yaml").read_text())
    assert len(zoo["models"]) >= 20
    assert {spec["source"] for spec in zoo["models"].values()} == {"torchvision", "timm"}
    result = run_workflow(tmp_path, "-n", "all", "take_away", "--configfile", str(REPO / "config.zoo.yaml"))
    jobs = result.stdout + result.stderr
    assert f"activations {len(zoo['models'])}" in " ".join(jobs.split())


@pytest.mark.workflow
def test_two_zoo_architectures_run_with_random_init(tmp_path):
    pytest.importorskip("timm")
    zoo = yaml.safe_load((REPO / "config.zoo.yaml").read_text())["models"]
    models = {name: {**zoo[name], **SMALL} for name in ("mobilenet_v3_small", "ghostnet_100")}
    write_config(tmp_path, models)
    run_workflow(tmp_path, "results/tables/table2.csv", "--config", "device=cpu")
    assert pl.read_csv(tmp_path / "results/tables/table2.csv")["model"].to_list() == list(models)
