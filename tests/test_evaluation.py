"""The four variants evaluated over the same images (pan.bias.evaluation), and §4 through the workflow."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import yaml
from conftest import tiny_config, write_images

from pan.bias.evaluation import evaluate_variants
from pan.bias.influence import INFLUENCE_SCHEMA
from pan.bias.logits import read_logits
from pan.bias.odds import ODDS_SCHEMA
from pan.bias.variants import VARIANTS
from pan.capture.images import ImageSpec, image_records
from pan.capture.models import ModelSpec
from pan.workflow.run import run_workflow, scheduled_jobs

TESTS = Path(__file__).parent


# --- evaluation of the tiny net ---------------------------------------------------------------


def tiny_labels() -> pl.DataFrame:
    """The tiny net's true PAN labels (tests/tiny_net.py)."""
    from tiny_net import EXPECTED_TYPES

    layers = {"conv1": 0, "valid": 1, "asymmetric.1": 2}
    return pl.DataFrame(
        [
            {"layer": layer, "layer_index": layers[layer], "neuron": n, "is_pan": bool(kind)}
            for (layer, n), kind in EXPECTED_TYPES.items()
        ],
        schema={"layer": pl.String, "layer_index": pl.Int32, "neuron": pl.Int32, "is_pan": pl.Boolean},
    )


def test_evaluate_variants_writes_four_aligned_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(TESTS / "tiny_net.py", "tiny_net.py")
    write_images(tmp_path / "images", 10)
    tiny_labels().write_parquet("pans.parquet")
    spec = ModelSpec.from_config("tiny", tiny_config()["models"]["tiny"])
    outputs = {v: tmp_path / f"{v}.parquet" for v in VARIANTS}
    images = ImageSpec("folder", "images", None, 0)
    assert evaluate_variants(spec, images, "pans.parquet", outputs, micro_batch=4, device="cpu") == 10
    runs = {v: read_logits(outputs[v]) for v in VARIANTS}
    original = runs["original"]
    assert original.ids == [r.id for r in image_records(images)] and original.categories == ["a", "b"]
    assert original.class_index.tolist() == [0 if r.label == "a" else 1 for r in image_records(images)]
    assert all(run.ids == original.ids and run.logits.shape == (10, 2) for run in runs.values())
    # The tiny net's PANs read zero padding: reflect changes their outputs, hence the logits.
    assert not np.allclose(runs["pan_reflect"].logits, original.logits)
    from tiny_net import build

    from pan.capture.models import load_model

    loaded = load_model(spec)
    batch = torch.stack([loaded.transform(r.load()) for r in image_records(images)])
    with torch.no_grad():
        np.testing.assert_allclose(original.logits, build().eval()(batch).numpy(), rtol=1e-5, atol=1e-6)


# --- the workflow, end to end on the tiny net -------------------------------------------------

BIAS_TARGETS = ("results/tables/table3.csv", "results/tables/sample_influence_summary.csv")


@pytest.mark.workflow
def test_workflow_runs_section_4_on_the_tiny_net(tmp_path):
    shutil.copy(TESTS / "tiny_net.py", tmp_path / "tiny_net.py")
    write_images(tmp_path / "images", 20)
    eval_images = {"source": "folder", "path": "images", "count": None, "seed": 0}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tiny_config(eval_images=eval_images)))
    run_workflow(tmp_path, *BIAS_TARGETS)
    for variant in VARIANTS:
        assert read_logits(tmp_path / f"results/eval/tiny/{variant}.parquet").logits.shape == (20, 2)
    assert "img/s" in (tmp_path / "results/logs/eval/tiny.log").read_text()  # progress in the job's log
    odds = pl.read_csv(tmp_path / "results/tables/odds_tiny.csv")
    assert odds.columns == list(ODDS_SCHEMA) and odds["class_name"].to_list() == ["a", "b"]
    assert pl.read_csv(tmp_path / "results/tables/table3.csv").columns == [
        "model",
        "variant",
        "direction",
        "class_index",
        "class_name",
        "odds",
        "log_odds",
    ]
    influence = pl.read_csv(tmp_path / "results/tables/sample_influence_tiny.csv", schema=INFLUENCE_SCHEMA)
    assert influence.height == 40 and influence["correct_original"].null_count() == 0
    summary = pl.read_csv(tmp_path / "results/tables/sample_influence_summary.csv")
    assert summary.select("model", "images", "labelled", "top_images").row(0) == ("tiny", 20, True, 2)

    def rerun(*config: str) -> dict[str, int]:
        result = run_workflow(tmp_path, "-n", "--config", *config, "--", *BIAS_TARGETS)
        return scheduled_jobs(result.stdout + result.stderr)

    assert rerun("odds_threshold=0.2") == {"table3": 1}
    after_seed = {
        "evaluate_variants": 1,
        "odds": 1,
        "table3": 1,
        "sample_influence": 1,
        "sample_influence_summary": 1,
    }
    assert rerun("rand_seed=5") == after_seed
