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
    table2 = pl.read_csv(tmp_path / "results/tables/table2.csv").filter(pl.col("rule") == "paper")
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
    table2 = pl.read_csv(tmp_path / "results/tables/table2.csv")
    assert table2.filter(pl.col("rule") == "paper")["model"].to_list() == list(models)


def test_resize_below_the_crop_is_refused():
    with pytest.raises(ModelSpecError, match="resize_size 100 is smaller than input_size 224"):
        ModelSpec.from_config(
            "m",
            {
                "source": "torchvision",
                "builder": "resnet18",
                "pretrained": False,
                "input_size": 224,
                "resize_size": 100,
            },
        )
    spec = ModelSpec.from_config("m", {"source": "efficientnet_lite", "variant": "lite0", "resize_size": 200})
    with pytest.raises(ModelSpecError, match="resize_size 200 is smaller than input_size 224"):
        load_model(spec)


@pytest.mark.parametrize(
    "entry",
    [
        {"source": "torchvision", "builder": "resnet18", "weights": "IMAGENET1K_V1", "pretrained": False},
        {"source": "efficientnet_lite", "variant": "lite0", "pretrained": False},
        {"source": "timm", "builder": "resnet18", "pretrained": False},
        {"source": "python", "builder": "tests/tiny_net.py:build"},
    ],
)
def test_every_transform_key_acts_for_every_source(entry):
    from PIL import Image

    keys = {"input_size": 96, "resize_size": 128, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    loaded = load_model(ModelSpec.from_config("m", {**entry, **keys}))
    assert loaded.input_size == 96
    grey = Image.new("RGB", (160, 128), (128, 128, 128))  # short side 128: resize keeps it
    image = loaded.transform(grey)
    assert tuple(image.shape) == (3, 96, 96)
    assert torch_close(image, (128 / 255 - 0.5) / 0.25)
    ramp = Image.fromarray(__import__("numpy").tile(__import__("numpy").arange(256, dtype="uint8"), (256, 1)))
    width_seen = loaded.transform(ramp.convert("RGB"))[0, 0]  # resize 256 -> 128 halves the ramp
    assert abs(float(width_seen[-1] - width_seen[0]) * 0.25 * 255 - 95 * 2) < 8


def torch_close(tensor, value) -> bool:
    return bool((tensor - value).abs().max() < 0.02)


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            {"source": "torchvision", "builder": "resnet18x", "weights": "IMAGENET1K_V1"},
            "did you mean resnet18",
        ),
        ({"source": "torchvision", "builder": "resnet18", "weights": "V9"}, "has no weights 'V9'"),
        ({"source": "torchvision", "builder": "resnt18", "pretrained": False}, "unknown torchvision builder"),
        ({"source": "timm", "builder": "resnet18x"}, "is no timm model"),
    ],
)
def test_builder_and_weights_names_are_checked_before_any_job(tmp_path, entry, message):
    from conftest import tiny_config, write_images

    write_images(tmp_path / "images", 16)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tiny_config(models={"m": entry})))
    result = run_workflow(tmp_path, "results/tables/table2.csv", "-n", check=False)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout
    assert not (tmp_path / "results").exists()
