"""§4: the four variants, their logits on disk, odds (Eq. 1), Table 3 and sample influence."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import yaml
from conftest import run_snakemake, scheduled_jobs, tiny_config, write_images
from torch import nn

from pan.bias import (
    INFLUENCE_SCHEMA,
    ODDS_SCHEMA,
    class_odds,
    influence_summary,
    odds_table,
    sample_influence,
    softmax,
    table3,
    write_influence_summary,
    write_sample_influence,
)
from pan.classes import LabelError, check_eval_labels, class_indices, imagenet_wnids
from pan.evaluation import evaluate_variants
from pan.images import ImageSpec, image_records
from pan.logits import Logits, LogitWriter, read_logits
from pan.models import ModelSpec
from pan.padding import ChannelPaddedConv2d, with_reflect_padding
from pan.variants import VARIANTS, build_variants, pan_channels, random_control_channels

# --- variants -------------------------------------------------------------------------------


def make_labels(layers: dict[str, tuple[int, list[int]]]) -> pl.DataFrame:
    """A PAN label table (the columns variants need): layer -> (neurons, PAN neurons)."""
    rows = [
        {"layer": name, "layer_index": index, "neuron": n, "is_pan": n in pans}
        for index, (name, (neurons, pans)) in enumerate(layers.items())
        for n in range(neurons)
    ]
    return pl.DataFrame(
        rows, schema={"layer": pl.String, "layer_index": pl.Int32, "neuron": pl.Int32, "is_pan": pl.Boolean}
    )


LABELS = make_labels({"a": (64, [0, 5, 9]), "b": (32, []), "c": (128, list(range(0, 128, 16)))})


def test_pan_channels_are_the_labelled_pans():
    assert {k: v.tolist() for k, v in pan_channels(LABELS).items()} == {
        "a": [0, 5, 9],
        "c": list(range(0, 128, 16)),
    }


def test_random_control_matches_pan_counts_avoids_pans_and_follows_the_seed():
    pans = pan_channels(LABELS)
    control = random_control_channels(LABELS, seed=0)
    assert {k: len(v) for k, v in control.items()} == {k: len(v) for k, v in pans.items()}
    for layer, channels in control.items():
        assert not set(channels.tolist()) & set(pans[layer].tolist())
        assert len(set(channels.tolist())) == len(channels)
    again = random_control_channels(LABELS, seed=0)
    assert all(np.array_equal(control[k], again[k]) for k in control)
    other = random_control_channels(LABELS, seed=1)
    assert any(not np.array_equal(control[k], other[k]) for k in control)


def test_random_control_of_a_layer_depends_only_on_its_own_labels():
    fewer_layers = LABELS.filter(pl.col("layer") == "c")
    assert np.array_equal(
        random_control_channels(fewer_layers, 3)["c"], random_control_channels(LABELS, 3)["c"]
    )


def test_random_control_shrinks_when_a_layer_has_too_few_non_pans(caplog):
    labels = make_labels({"x": (4, [0, 1, 2])})
    assert random_control_channels(labels, 0)["x"].tolist() == [3]
    assert "only 1 other channels" in caplog.text


class TwoConvs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(3, 64, 3, padding=1)
        self.b = nn.Conv2d(64, 32, 3, padding=1, groups=32)
        self.c = nn.Conv2d(32, 128, 3, padding=1)

    def forward(self, x):
        return self.c(self.b(self.a(x))).mean(dim=(2, 3))


def test_build_variants_selects_the_labelled_channels():
    net = TwoConvs().eval()
    variants = build_variants(net, LABELS, seed=0)
    assert list(variants) == list(VARIANTS) and variants["original"] is net
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        assert torch.equal(variants["reflect"](x), with_reflect_padding(net)(x))
        assert torch.equal(variants["pan_reflect"](x), with_reflect_padding(net, pan_channels(LABELS))(x))
        control = random_control_channels(LABELS, 0)
        assert torch.equal(variants["rand_reflect"](x), with_reflect_padding(net, control)(x))
    pan, rand = variants["pan_reflect"], variants["rand_reflect"]
    assert isinstance(pan.a, ChannelPaddedConv2d) and pan.a.reflect_channels.tolist() == [0, 5, 9]
    assert isinstance(pan.b, nn.Conv2d) and not isinstance(rand.b, ChannelPaddedConv2d)  # no PAN in b
    assert rand.c.reflect_channels.tolist() == control["c"].tolist()


# --- image labels -> classes ------------------------------------------------------------------


def test_imagenet_wnids_are_the_standard_sorted_list():
    wnids = imagenet_wnids()
    assert len(wnids) == 1000 and len(set(wnids)) == 1000 and list(wnids) == sorted(wnids)
    assert wnids[0] == "n01440764" and wnids[999] == "n15075141"


def test_class_indices_map_names_or_synsets_all_or_nothing(caplog):
    assert class_indices(["b", "a", "b"], ["a", "b"], 2) == [1, 0, 1]
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    assert class_indices(["n15075141", "tench"], list(_IMAGENET_CATEGORIES), 1000) == [999, 0]
    assert class_indices(["n15075141", "n01440764"], None, 1000) == [999, 0]
    assert class_indices(["a", "zebra"], ["a", "b"], 2) == [None, None]
    assert "zebra" in caplog.text
    assert class_indices([None, None], ["a", "b"], 2) == [None, None]


def test_imagenet_folders_must_be_synsets(tmp_path):
    write_images(tmp_path / "val", 4, classes=("n01440764", "n15075141"))
    spec = ImageSpec("imagenet", str(tmp_path), None, 0)
    check_eval_labels(spec, image_records(spec))  # torchvision's layout: root/val/<wnid>/
    write_images(tmp_path / "val", 3, classes=("n01440764", "cats", "dogs"))
    with pytest.raises(LabelError, match="cats"):
        check_eval_labels(spec, image_records(spec))


def test_evaluation_images_are_checked_when_section_4_is_requested(tmp_path, monkeypatch):
    from pan.config import ConfigError, checked_config, checked_eval_images

    monkeypatch.chdir(tmp_path)
    shutil.copy(TESTS / "tiny_net.py", "tiny_net.py")
    write_images(tmp_path / "images", 4)
    eval_images = {"source": "folder", "path": "images", "batch_size": None, "seed": 0}
    settings = checked_config(tiny_config(eval_images=eval_images))
    assert checked_eval_images(settings.eval_images) == ImageSpec("folder", "images", None, 0)
    missing = checked_config(tiny_config(eval_images={**eval_images, "path": "missing"}))
    with pytest.raises(ConfigError, match="missing"):
        checked_eval_images(missing.eval_images)
    with pytest.raises(ConfigError, match="synset"):
        checked_eval_images(ImageSpec("imagenet", "images", None, 0))

    # Through the workflow: Tables 1-2 need no evaluation set; section 4 fails before any job.
    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump(tiny_config(eval_images={**eval_images, "path": "missing"}))
    )
    assert run_snakemake(tmp_path, "-n", "results/tables/table2.csv").returncode == 0
    failed = run_snakemake(tmp_path, "-n", "results/tables/table3.csv", check=False)
    assert failed.returncode != 0 and "eval_images" in failed.stdout + failed.stderr


# --- logits on disk ---------------------------------------------------------------------------


def test_logit_files_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(5, 3)).astype(np.float32)
    with LogitWriter(tmp_path / "v.parquet", "m", "pan_reflect", 3, ["x", "y", "z"]) as writer:
        writer.write(0, ["i0", "i1"], ["y", "x"], [1, 0], ["y", "x"], values[:2])
        writer.write(2, ["i2", "i3", "i4"], ["z", "z", "x"], [2, 2, 0], ["z", "z", "x"], values[2:])
    run = read_logits(tmp_path / "v.parquet")
    assert (run.model, run.variant, run.ids, run.categories) == (
        "m",
        "pan_reflect",
        [f"i{i}" for i in range(5)],
        ["x", "y", "z"],
    )
    assert run.class_index.tolist() == [1, 0, 2, 2, 0]
    np.testing.assert_array_equal(run.logits, values)
    with LogitWriter(tmp_path / "u.parquet", "m", "original", 3, None) as writer:
        writer.write(0, ["i0"], [None], [None], [None], values[:1])
    unlabelled = read_logits(tmp_path / "u.parquet")
    assert unlabelled.class_index is None and unlabelled.categories is None


# --- odds and Table 3, by hand ----------------------------------------------------------------


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


LOG3 = math.log(3)


def test_softmax_is_float64_and_stable():
    probs = softmax(np.array([[0.0, LOG3], [1000.0, 1000.0]], dtype=np.float32))
    assert probs.dtype == np.float64
    np.testing.assert_allclose(probs, [[0.25, 0.75], [0.5, 0.5]], rtol=1e-7)


def test_odds_by_hand():
    # original: softmax (1/2, 1/2) twice, sums (1, 1); variant: (3/4, 1/4) and (1/2, 1/2), sums (5/4, 3/4).
    original = np.zeros((2, 2))
    variant = np.array([[LOG3, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(class_odds(original, variant), [1.25, 0.75], rtol=1e-6)


def test_odds_table_columns_and_values():
    # Three classes; original gives (1/3, 1/3, 1/3) per image; sums over 2 images: 2/3 each.
    # pan: (3/5, 1/5, 1/5) and (1/3, 1/3, 1/3) -> sums (14/15, 8/15, 8/15) -> odds (1.4, 0.8, 0.8).
    runs = runs_from(
        {
            "original": [[0, 0, 0], [0, 0, 0]],
            "pan_reflect": [[LOG3, 0, 0], [0, 0, 0]],
            "rand_reflect": [[0, 0, 0], [0, 0, 0]],
            "reflect": [[0, 0, LOG3], [0, 0, LOG3]],  # (1/5, 1/5, 3/5) twice -> odds (0.6, 0.6, 1.8)
        }
    )
    table = odds_table(runs)
    assert (
        table.columns
        == [
            "class_index",
            "class_name",
            "odds_pan_reflect",
            "log_odds_pan_reflect",
            "odds_rand_reflect",
            "log_odds_rand_reflect",
            "odds_reflect",
            "log_odds_reflect",
        ]
        == list(ODDS_SCHEMA)
    )
    assert table["class_name"].to_list() == ["x", "y", "z"]
    np.testing.assert_allclose(table["odds_pan_reflect"], [1.4, 0.8, 0.8], rtol=1e-6)
    np.testing.assert_allclose(table["log_odds_pan_reflect"], np.log([1.4, 0.8, 0.8]), rtol=1e-6)
    np.testing.assert_allclose(table["odds_rand_reflect"], [1, 1, 1], rtol=1e-6)
    np.testing.assert_allclose(table["odds_reflect"], [0.6, 0.6, 1.8], rtol=1e-6)


def test_odds_need_the_same_images():
    runs = runs_from({v: [[0, 0, 0]] for v in VARIANTS})
    runs["reflect"] = Logits("m", "reflect", ["other"], None, np.zeros((1, 3), np.float32), None)
    with pytest.raises(ValueError, match="other images"):
        odds_table(runs)


def odds_frame(odds: list[float], names=None) -> pl.DataFrame:
    """An odds table where all three variants share ``odds``."""
    columns = {
        "class_index": list(range(len(odds))),
        "class_name": names or [f"c{i}" for i in range(len(odds))],
    }
    for v in ("pan_reflect", "rand_reflect", "reflect"):
        columns |= {f"odds_{v}": odds, f"log_odds_{v}": np.log(odds).tolist()}
    return pl.DataFrame(columns, schema=ODDS_SCHEMA)


def test_table3_threshold_both_ways_by_hand():
    # 1.25 up; 0.75 down (1/0.75 = 1.33); 1.05 and 0.95 (1/0.95 = 1.053) stay; 1/1.08 down; 1.071 up.
    frame = odds_frame([1.25, 0.75, 1.05, 0.95, 1 / 1.08, 1.071])
    table = table3({"m": frame}, threshold=0.07)
    assert table.columns == ["model", "variant", "direction", "class_index", "class_name", "odds", "log_odds"]
    pan = table.filter(variant="pan_reflect")
    assert pan.select("direction", "class_index").rows() == [("down", 1), ("down", 4), ("up", 0), ("up", 5)]
    assert table["variant"].unique(maintain_order=True).to_list() == [
        "pan_reflect",
        "rand_reflect",
        "reflect",
    ]
    assert table3({"m": frame}, threshold=0.3).select("variant", "class_index").rows() == [
        ("pan_reflect", 1),
        ("rand_reflect", 1),
        ("reflect", 1),
    ]
    two = table3({"z": frame, "a": frame}, threshold=0.3)
    assert two["model"].to_list() == ["z"] * 3 + ["a"] * 3  # models keep the config's order
    assert table3({}).columns == table.columns
    with pytest.raises(ValueError, match="positive"):
        table3({"m": frame}, threshold=0)


# --- sample influence, by hand ----------------------------------------------------------------

INFLUENCE_RUNS = {
    "original": [[1, 0, 0], [0, 2, 0], [0, 0, 3], [1, 0, 0]],
    # L1 to original: 0, |2-0| + |0-2.5| = 4.5, 0.5, 0.25; argmax 0, 2, 2, 0
    "pan_reflect": [[1, 0, 0], [0, 0, 2.5], [0, 0, 3.5], [1.25, 0, 0]],
    # L1 to original: 3, 0, 1, 7; argmax 1, 1, 2, 1
    "rand_reflect": [[1, 3, 0], [0, 2, 0], [0, 0, 2], [0, 5, 1]],
    "reflect": [[0, 0, 0]] * 4,
}


def test_sample_influence_ranks_by_l1_distance_by_hand():
    table = sample_influence(runs_from(INFLUENCE_RUNS, truth=[0, 2, 2, 1]))
    assert table.columns == list(INFLUENCE_SCHEMA)
    pan = table.filter(variant="pan_reflect")
    assert pan["sample"].to_list() == [1, 2, 3, 0] and pan["rank"].to_list() == [1, 2, 3, 4]
    np.testing.assert_allclose(pan["distance"], [4.5, 0.5, 0.25, 0.0])
    assert pan["pred_original"].to_list() == [1, 2, 0, 0] and pan["pred_variant"].to_list() == [2, 2, 0, 0]
    assert pan["pred_variant_name"].to_list() == ["z", "z", "x", "x"]
    assert pan["disagree"].to_list() == [True, False, False, False]
    assert pan["correct_original"].to_list() == [False, True, False, True]
    assert pan["correct_variant"].to_list() == [True, True, False, True]
    rand = table.filter(variant="rand_reflect")
    assert rand["sample"].to_list() == [3, 0, 2, 1]
    np.testing.assert_allclose(rand["distance"], [7, 3, 1, 0])


def test_influence_summary_by_hand(tmp_path):
    files = []
    for model, truth in (("labelled", [0, 2, 2, 1]), ("unlabelled", None)):
        runs = runs_from(INFLUENCE_RUNS, truth=truth)
        for run in runs.values():
            object.__setattr__(run, "model", model)
        files.append(tmp_path / f"sample_influence_{model}.csv")
        sample_influence(runs).write_csv(files[-1])
    summary = write_influence_summary(files, tmp_path / "summary.csv")
    assert pl.read_csv(tmp_path / "summary.csv").columns == summary.columns
    labelled, unlabelled = summary.rows(named=True)
    # 4 images: top 10% is ceil(0.4) = 1 image, pan distance 4.5; rand reaches 4.5 once (7).
    assert labelled == {
        "model": "labelled",
        "images": 4,
        "labelled": True,
        "top_fraction": 0.1,
        "top_images": 1,
        "cut_distance": 4.5,
        "disagreements_pan_reflect": 1,
        "disagreements_rand_reflect": 1,
        "rand_reflect_reaching_cut": 1,
        "top_wrong_both": 0,
        "accuracy_original": 0.5,  # predictions 0, 1, 2, 0 against labels 0, 2, 2, 1
        "accuracy_pan_reflect": 0.75,  # 0, 2, 2, 0
        "accuracy_rand_reflect": 0.5,  # 1, 1, 2, 1
    }
    assert not unlabelled["labelled"] and unlabelled["top_wrong_both"] is None
    assert unlabelled["accuracy_original"] is None and unlabelled["rand_reflect_reaching_cut"] == 1
    wider = influence_summary({"m": sample_influence(runs_from(INFLUENCE_RUNS))}, top_fraction=0.5)
    # top 2 under pan (4.5, 0.5): cut 0.5; rand distances 7, 3, 1 reach it
    assert wider.select("top_images", "cut_distance", "rand_reflect_reaching_cut").row(0) == (2, 0.5, 3)


def test_write_sample_influence_reads_logit_files(tmp_path):
    files = []
    for variant, values in INFLUENCE_RUNS.items():
        files.append(tmp_path / f"{variant}.parquet")
        with LogitWriter(files[-1], "m", variant, 3, None) as writer:
            writer.write(
                0, ["a", "b", "c", "d"], [None] * 4, [None] * 4, [None] * 4, np.array(values, np.float32)
            )
    table = write_sample_influence(files, tmp_path / "out.csv")
    assert pl.read_csv(tmp_path / "out.csv", schema=INFLUENCE_SCHEMA).equals(table)
    assert table["correct_original"].null_count() == table.height


# --- evaluation of the tiny net ---------------------------------------------------------------

TESTS = Path(__file__).parent


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
    assert evaluate_variants(spec, images, "pans.parquet", outputs, batch_size=4, device="cpu") == 10
    runs = {v: read_logits(outputs[v]) for v in VARIANTS}
    original = runs["original"]
    assert original.ids == [r.id for r in image_records(images)] and original.categories == ["a", "b"]
    assert original.class_index.tolist() == [0 if r.label == "a" else 1 for r in image_records(images)]
    assert all(run.ids == original.ids and run.logits.shape == (10, 2) for run in runs.values())
    # The tiny net's PANs read zero padding: reflect changes their outputs, hence the logits.
    assert not np.allclose(runs["pan_reflect"].logits, original.logits)
    from tiny_net import build

    from pan.models import load_model

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
    eval_images = {"source": "folder", "path": "images", "batch_size": None, "seed": 0}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tiny_config(eval_images=eval_images)))
    run_snakemake(tmp_path, *BIAS_TARGETS)
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
        result = run_snakemake(tmp_path, "-n", "--config", *config, "--", *BIAS_TARGETS)
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
    assert rerun("theta=0.4") == {"label_pans": 1, **after_seed}
