"""§4 with a noise model: the null family (pan.noise_family) and its readings (pan.noise)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import yaml
from conftest import runs_from, tiny_config, write_images
from scipy import stats
from test_evaluation import tiny_labels

from pan.bias.evaluation import evaluate_variants
from pan.bias.logits import read_logits
from pan.bias.noise import (
    TABLE3_NOISE_SCHEMA,
    image_kl,
    matched_excess,
    noise_floor,
    noise_readings,
    table3_noise,
    variant_readings,
)
from pan.bias.noise_family import (
    NoiseVariant,
    evaluate_noise_family,
    noise_family,
    read_noise_logits,
    with_weight_noise,
)
from pan.bias.variants import VARIANTS
from pan.capture.images import ImageSpec
from pan.capture.models import ModelSpec
from pan.workflow.run import run_workflow, scheduled_jobs

TESTS = Path(__file__).parent


def logits_with_a_massive_class(images: int = 300, classes: int = 6, seed: int = 0) -> np.ndarray:
    """Random logits where class 0 takes most of the probability and class 5 almost none."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1, (images, classes))
    z[:, 0] += 2.0
    z[:, 5] -= 8.0
    return z


# --- readings ---------------------------------------------------------------------------------


def test_image_kl_is_scipys_relative_entropy_and_zero_for_the_same_logits():
    z = logits_with_a_massive_class(20)
    w = z + np.random.default_rng(1).normal(0, 0.5, z.shape)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    q = np.exp(w) / np.exp(w).sum(1, keepdims=True)
    np.testing.assert_allclose(image_kl(z, w), stats.entropy(p, q, axis=1), rtol=1e-10)
    assert np.all(image_kl(z, z) == 0)


def test_a_real_shift_of_a_massive_class_counts_and_an_unchanged_variant_does_not():
    z = logits_with_a_massive_class()
    massive = np.exp(z - np.log(np.exp(z).sum(1, keepdims=True))).sum(0) >= 1.0
    assert massive[0] and not massive[5]
    weights = (
        np.random.default_rng(0).multinomial(len(z), np.full(len(z), 1 / len(z)), size=200).astype(float)
    )
    same, _ = variant_readings(z, z, weights, massive, 0.07)
    assert same == {
        "kl_mean": 0.0,
        "kl_low": 0.0,
        "kl_high": 0.0,
        "beyond": 0,
        "beyond_mass": 0,
        "counted": 0,
    }
    shifted = z.copy()
    shifted[:, 5] += 3.0  # a class without mass: its odds explode, but it must not count
    shifted[:, 1] += np.log(1.5)  # a class with mass gains half again its probability, on every image
    readings, per_class = variant_readings(z, shifted, weights, massive, 0.07)
    assert per_class["odds"][5] > 10 and not per_class["counted"][5]
    assert per_class["counted"][1] and per_class["low"][1] > 1
    assert readings["beyond"] >= 2 and readings["counted"] == int(per_class["counted"].sum())
    assert readings["kl_low"] <= readings["kl_mean"] <= readings["kl_high"]


def test_the_halves_floor_of_exchangeable_images_counts_almost_nothing():
    z = logits_with_a_massive_class(400)
    massive = np.ones(z.shape[1], dtype=bool)
    floor = noise_floor(z, massive, threshold=0.3, splits=5, bootstrap=200, seed=0)
    assert len(floor) == 5
    assert all(row["counted"] <= row["beyond_mass"] <= row["beyond"] for row in floor)
    assert max(row["beyond_mass"] for row in floor) <= 1  # only the nearly massless class 5 can move 30 %


def test_matched_excess_recovers_a_planted_excess_with_an_interval():
    rng = np.random.default_rng(0)
    kl = np.exp(rng.uniform(np.log(0.01), np.log(0.5), 30))
    counts = 100 + 40 * np.log(kl) + rng.normal(0, 3, kl.size)
    fit = matched_excess(kl, counts, 0.2, 100 + 40 * np.log(0.2) + 25)
    assert fit["excess_low"] < 25 < fit["excess_high"] and fit["excess_low"] > 0
    assert abs(fit["null"] - (100 + 40 * np.log(0.2))) < 4
    assert np.isnan(matched_excess(kl[:2], counts[:2], 0.2, 10)["excess"])


def test_noise_readings_and_table3_noise_place_pan_reflect_on_the_null_curve():
    rng = np.random.default_rng(3)
    z = logits_with_a_massive_class(120, 8)

    def perturbed(size: float) -> np.ndarray:
        return z + rng.normal(0, size, z.shape)

    runs = runs_from(
        {
            "original": z,
            "pan_reflect": perturbed(0.6),
            "rand_reflect": perturbed(0.2),
            "reflect": perturbed(1.0),
        },
        categories=[f"c{i}" for i in range(8)],
    )
    family = noise_family(0, rand_seeds=4, channel_scales=(2.0, 4.0), weight_noise=(0.01,))
    logits = {m.name: perturbed(0.1 * (1 + i)) for i, m in enumerate(family)}
    variants, classes = noise_readings(runs, family, logits, bootstrap=100, splits=3)
    assert variants.filter(pl.col("family") == "halves").height == 3
    assert variants.filter(pl.col("family") == "rand_channels").height == 1 + 3 + 2
    assert variants["variant"].to_list()[:3] == ["pan_reflect", "reflect", "rand_reflect"]
    assert classes["class_name"].to_list() == [f"c{i}" for i in range(8)]
    assert {"mass", "odds_pan_reflect", "low_pan_reflect", "high_pan_reflect", "counted_pan_reflect"} <= set(
        classes.columns
    )
    table = table3_noise({"m": variants})
    assert list(table.schema) == list(TABLE3_NOISE_SCHEMA) and table["count"].to_list() == [
        "beyond",
        "beyond_mass",
        "counted",
    ]
    row = table.row(0, named=True)
    assert row["rand_seeds"] == 4 and row["null_members"] == 4 - 1 + 2 + 1 + 1
    assert row["excess"] == pytest.approx(row["pan_reflect"] - row["null_at_pan_kl"])
    assert row["excess_low"] < row["excess"] < row["excess_high"]


def test_noise_readings_refuse_members_on_other_images():
    z = logits_with_a_massive_class(10)
    runs = runs_from({v: z for v in ("original", "pan_reflect", "rand_reflect", "reflect")})
    family = [NoiseVariant("weight_noise", 0.01, 0)]
    with pytest.raises(ValueError, match="weight_noise_0.01_s0"):
        noise_readings(runs, family, {family[0].name: z[:5]}, bootstrap=20)


# --- the family ---------------------------------------------------------------------------------


def test_the_family_redraws_rand_reflect_without_its_own_seed_then_grows():
    family = noise_family(7, rand_seeds=3, channel_scales=(1.0, 2.0), weight_noise=(0.01,))
    assert [m.name for m in family] == ["rand_x1_s8", "rand_x1_s9", "rand_x2_s7", "weight_noise_0.01_s7"]
    with pytest.raises(ValueError, match="twice"):
        noise_family(0, rand_seeds=1, channel_scales=(2.0, 2.0), weight_noise=())
    with pytest.raises(ValueError, match="positive scale"):
        NoiseVariant("weight_noise", 0.0, 0)


def test_weight_noise_is_seeded_relative_and_leaves_the_model_alone():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 30 * 30, 2))
    before = [p.detach().clone() for p in net.parameters()]
    noisy = with_weight_noise(net, 0.01, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    ratio = (noisy[0].weight / net[0].weight).detach()
    assert 0.003 < float((ratio - 1).std()) < 0.03
    assert torch.equal(noisy[0].bias, net[0].bias)
    assert torch.equal(with_weight_noise(net, 0.01, seed=1)[2].weight, noisy[2].weight)
    assert not torch.equal(with_weight_noise(net, 0.01, seed=2)[2].weight, noisy[2].weight)


def test_the_family_on_the_tiny_net_reproduces_rand_reflect_and_keeps_the_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(TESTS / "tiny_net.py", "tiny_net.py")
    write_images(tmp_path / "images", 10)
    tiny_labels().write_parquet("pans.parquet")
    spec = ModelSpec.from_config("tiny", tiny_config()["models"]["tiny"])
    images = ImageSpec("folder", "images", None, 0)
    outputs = {v: tmp_path / f"{v}.parquet" for v in VARIANTS}
    evaluate_variants(spec, images, "pans.parquet", outputs, rand_seed=0, micro_batch=4, device="cpu")
    family = [NoiseVariant("rand_channels", 1.0, 0), NoiseVariant("weight_noise", 0.05, 0)]
    assert evaluate_noise_family(spec, images, "pans.parquet", "noise.parquet", family, 3, "cpu") == 10
    read_family, logits = read_noise_logits("noise.parquet")
    assert read_family == family and all(v.shape == (10, 2) for v in logits.values())
    # the same channels as RAND-reflect: the same logits, up to the float32 rounding of the layout
    np.testing.assert_allclose(logits["rand_x1_s0"], read_logits(outputs["rand_reflect"]).logits, atol=1e-5)
    assert not np.allclose(logits["weight_noise_0.05_s0"], read_logits(outputs["original"]).logits)


# --- the workflow -----------------------------------------------------------------------------

NOISE_TARGETS = (
    "results/tables/table3.csv",
    "results/tables/table3_noise.csv",
    "results/figures/tiny/noise_curve.png",
)


@pytest.mark.workflow
def test_workflow_writes_table3_noise_and_reruns_only_what_a_setting_touches(tmp_path):
    shutil.copy(TESTS / "tiny_net.py", tmp_path / "tiny_net.py")
    write_images(tmp_path / "images", 20)
    config = tiny_config(
        eval_images={"source": "folder", "path": "images", "count": None, "seed": 0},
        noise={"rand_seeds": 3, "channel_scales": [2], "weight_noise": [0.02], "bootstrap": 50, "splits": 3},
    )
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run_workflow(tmp_path, *NOISE_TARGETS)
    table = pl.read_csv(tmp_path / "results/tables/table3_noise.csv", schema_overrides=TABLE3_NOISE_SCHEMA)
    assert table["model"].to_list() == ["tiny"] * 3 and table["rand_seeds"].to_list() == [3] * 3
    variants = pl.read_csv(tmp_path / "results/noise/tiny/variants.csv")
    assert variants.filter(pl.col("family") == "halves").height == 3
    assert "img/s" in (tmp_path / "results/logs/eval/tiny_noise.log").read_text()

    def rerun(**noise) -> dict[str, int]:
        changed = {**config, "noise": {**config["noise"], **noise}}
        (tmp_path / "changed.yaml").write_text(yaml.safe_dump(changed))
        result = run_workflow(tmp_path, "-n", *NOISE_TARGETS, "--configfile", "changed.yaml")
        return scheduled_jobs(result.stdout + result.stderr)

    readings = {"noise_readings": 1, "table3_noise": 1, "noise_curve": 1}
    assert rerun(min_mass=0.5) == readings
    assert rerun(rand_seeds=4) == {"evaluate_noise": 1, **readings}
