"""Figures: every chart renders to a non-empty PNG from tiny real inputs; the workflow draws them
and re-renders only the label-dependent ones when theta changes."""

from __future__ import annotations

import shutil
from pathlib import Path

import altair as alt
import numpy as np
import polars as pl
import pytest
import torch
import yaml
from conftest import TESTS, run_snakemake, scheduled_jobs, tiny_config, write_images
from PIL import Image
from scipy.stats import ks_2samp

from pan.figures.cards import card_chart, reflect_maps
from pan.figures.distributions import RegionSamples, activation_pdf_chart, truncated_centre_chart
from pan.figures.ks_plots import (
    SWEEP_THETAS,
    depth_chart,
    ks_distribution_chart,
    theta_sweep,
    theta_sweep_chart,
)
from pan.figures.odds import (
    ODDS_COLUMNS,
    log_odds_histogram_chart,
    ordered_log_odds_chart,
    read_odds,
)
from pan.figures.render import save_chart
from pan.figures.selection import FigureSettings, select_neurons, slot_neuron, write_selection
from pan.images import ImageSpec, image_records
from pan.labelling import label_pans
from pan.models import ModelSpec, load_model
from pan.scoring import score_maps


def assert_renders(chart: alt.TopLevelMixin, tmp_path: Path, name: str) -> Image.Image:
    """Every dataset of ``chart`` has rows, and its PNG is a real picture: big, many colours."""
    datasets = chart.to_dict().get("datasets", {})
    assert datasets and all(len(rows) > 0 for rows in datasets.values())
    html, png = tmp_path / f"{name}.html", tmp_path / f"{name}.png"
    save_chart(chart, html, png)
    assert "vega" in html.read_text() and png.stat().st_size > 10_000
    with Image.open(png) as image:
        image.verify()
    image = Image.open(png).convert("RGB")
    assert image.width > 400 and image.height > 200
    assert len(image.getcolors(maxcolors=1 << 24)) > 50  # axes, lines, text: not a blank canvas
    return image


def planted_maps(images: int = 6, size: int = 12, seed: int = 0) -> np.ndarray:
    """Maps ``(images, size, size)`` whose top row lies above everything else: a top PAN."""
    maps = np.random.default_rng(seed).normal(size=(images, size, size)).astype(np.float32)
    maps[:, 0, :] += 8
    return maps


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


def test_region_statistics_are_scipy_ks():
    maps = planted_maps()
    regions = RegionSamples.from_maps(maps)
    centre = maps[:, 1:-1, 1:-1].ravel()
    for border, values in regions.borders.items():
        assert regions.stats[border].ks == pytest.approx(ks_2samp(values, centre).statistic, abs=1e-12)
    top_k = regions.truncated("T")["centre+ (top k)"]
    assert len(top_k) == len(regions.borders["T"]) and top_k.min() >= np.median(centre)
    assert regions.stats["T"].ks == 1.0 and regions.stats["T"].ks_plus == 1.0


def test_activation_pdfs_show_ks_in_the_legend(tmp_path):
    chart = activation_pdf_chart(RegionSamples.from_maps(planted_maps()), alt.Title("Fig. 3"))
    series = {row["series"] for row in next(iter(chart.to_dict()["datasets"].values()))}
    assert "top · KS 1.00" in series and "centre" in series and len(series) == 5
    assert_renders(chart, tmp_path, "pdfs")


def test_truncated_centre_chart_renders(tmp_path):
    chart = truncated_centre_chart(RegionSamples.from_maps(planted_maps()), alt.Title("Fig. 5"))
    assert_renders(chart, tmp_path, "truncated")


def test_card_chart_renders(tmp_path):
    zero, reflect = planted_maps(), planted_maps(seed=1)
    reflect[:, 0, :] -= 8  # reflect padding: the top row falls back onto the centre
    crops = np.random.default_rng(0).integers(0, 255, size=(2, 24, 24, 3), dtype=np.uint8)
    heatmaps = [(f"image {i}", crops[i], zero[i]) for i in range(2)]
    kernel = np.random.default_rng(0).normal(size=(3, 3, 3)).astype(np.float32)
    chart = card_chart(
        RegionSamples.from_maps(zero), RegionSamples.from_maps(reflect), heatmaps, kernel, alt.Title("card")
    )
    assert_renders(chart, tmp_path, "card")


def test_ks_distributions_take_the_first_and_last_layers(tmp_path):
    ks = ks_table()
    chart = ks_distribution_chart(ks, "toy")
    rows = next(iter(chart.to_dict()["datasets"].values()))
    assert sum(r["count"] for r in rows) == ks.height  # every KS value in some bin
    assert_renders(chart, tmp_path, "ks")


def test_theta_sweep_counts_shrink_with_theta_and_match_the_labels(tmp_path):
    ks = ks_table()
    sweep = theta_sweep(ks)
    for kind in ("PANs", "edge detectors"):
        counts = sweep.filter(pl.col("kind") == kind).sort("theta")["neurons"].to_list()
        assert counts == sorted(counts, reverse=True) and len(counts) == len(SWEEP_THETAS)
    at_half = sweep.filter(pl.col("theta") == 0.5)
    assert at_half.filter(pl.col("kind") == "PANs")["neurons"][0] == label_pans(ks, 0.5)["is_pan"].sum()
    assert_renders(theta_sweep_chart(ks, "toy"), tmp_path, "sweep")


def test_depth_chart_renders(tmp_path):
    assert_renders(depth_chart(label_pans(ks_table(), 0.5), "toy"), tmp_path, "depth")


def made_up_odds(classes: int = 120, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    logs = {
        "pan_reflect": rng.choice([-1, 1], classes) * rng.normal(0.04, 0.01, classes),
        "rand_reflect": rng.normal(0, 0.003, classes),
        "reflect": rng.normal(0, 0.3, classes),
    }
    columns = {"class_index": np.arange(classes), "class_name": [f"class {i}" for i in range(classes)]}
    for variant, values in logs.items():
        columns |= {f"odds_{variant}": np.exp(values), f"log_odds_{variant}": values}
    return pl.DataFrame(columns)


def test_odds_charts_render_from_the_odds_schema(tmp_path):
    made_up_odds().write_csv(tmp_path / "odds.csv")
    odds = read_odds(tmp_path / "odds.csv")
    assert odds.columns == ODDS_COLUMNS
    image = assert_renders(ordered_log_odds_chart(odds, "toy"), tmp_path, "fig9")
    assert image.width > 900  # 620 chart units at scale 1.5
    assert_renders(log_odds_histogram_chart(odds, "toy"), tmp_path, "fig10")


def test_odds_without_the_expected_columns_fail_clearly(tmp_path):
    made_up_odds().drop("log_odds_reflect").write_csv(tmp_path / "odds.csv")
    with pytest.raises(ValueError, match="log_odds_reflect"):
        read_odds(tmp_path / "odds.csv")


def test_an_empty_chart_is_never_saved(tmp_path):
    empty = alt.Chart(pl.DataFrame({"x": []}, schema={"x": pl.Float64})).mark_point().encode(x="x:Q")
    with pytest.raises(ValueError, match="empty chart"):
        save_chart(empty, tmp_path / "e.html", tmp_path / "e.png")
    assert not (tmp_path / "e.png").exists()


def hand_ks(rows: dict[int, tuple[float, float, float]]) -> pl.DataFrame:
    """KS rows of layer 'conv': ``neuron -> (KS, KS+, KS-)`` on the top border, zeros elsewhere."""
    records = []
    for neuron, (ks, plus, minus) in rows.items():
        for border in "TBLR":
            stats = (ks, plus, minus) if border == "T" else (0.0, 0.0, 0.0)
            records.append(
                dict(
                    zip(("ks", "ks_plus", "ks_minus"), stats, strict=True),
                    layer="conv",
                    layer_index=0,
                    neuron=neuron,
                    border=border,
                )
            )
    return pl.DataFrame(records).with_columns(pl.col("layer_index", "neuron").cast(pl.Int32))


SELECTION_KS = {
    0: (0.9, 0.8, 0.0),  # PAN, strength 0.8
    1: (0.95, 0.0, 0.6),  # PAN, strength 0.6
    2: (0.99, 0.1, 0.0),  # edge detector, no PAN
    3: (0.2, 0.1, 0.0),  # regular neuron
}


def test_selection_ranks_pans_by_strength_and_edge_detectors_by_ks(tmp_path):
    ks = hand_ks(SELECTION_KS)
    labels = label_pans(ks, 0.5)
    selection = select_neurons(labels, ks, top_pans=2, top_edge_detectors=1)
    assert dict(zip(selection["slot"], selection["neuron"], strict=True)) == {
        "pan1": 0,
        "pan2": 1,
        "edge1": 2,
    }
    labels.write_parquet(tmp_path / "labels.parquet")
    ks.write_parquet(tmp_path / "ks.parquet")
    write_selection(tmp_path / "labels.parquet", [tmp_path / "ks.parquet"], tmp_path / "n.csv", 2, 1)
    assert slot_neuron("pan1", tmp_path / "n.csv").description == "strongest PAN #1 (type T, θ = 0.5)"
    assert "non-PAN edge detector #1" in slot_neuron("edge1", tmp_path / "n.csv").description


def test_selection_says_when_a_slot_holds_no_pan(tmp_path):
    ks = hand_ks(SELECTION_KS)
    selection = select_neurons(label_pans(ks, 0.5), ks, top_pans=3, top_edge_detectors=1)
    assert selection["neuron"].to_list() == [0, 1, 2, 3]  # slot 3 gets the closest neuron
    selection.write_csv(tmp_path / "n.csv")
    assert "none at θ = 0.5" in slot_neuron("pan3", tmp_path / "n.csv").description
    assert "no non-PAN edge detector left" in slot_neuron("edge1", tmp_path / "n.csv").description
    with pytest.raises(ValueError, match="neurons"):
        select_neurons(label_pans(ks, 0.5), ks, top_pans=4, top_edge_detectors=1)


def test_configured_slots_name_their_neuron():
    settings = FigureSettings.from_config(
        {
            "neurons": [{"model": "m", "layer": "features.3.conv", "neuron": 7}],
            "top_pans": 1,
            "top_edge_detectors": 0,
        },
        ["m", "other"],
    )
    assert settings.slots("m") == ["pan1", "features.3.conv_n7"] and settings.slots("other") == ["pan1"]
    neuron = slot_neuron("features.3.conv_n7")
    assert (neuron.layer, neuron.neuron) == ("features.3.conv", 7)
    with pytest.raises(ValueError, match="not under models"):
        FigureSettings.from_config({"neurons": [{"model": "x", "layer": "c", "neuron": 0}]}, ["m"])


def test_reflect_maps_change_the_border_only(tmp_path):
    """The reflect model's conv1 equals the zero-padded one away from the border, not on it."""
    write_images(tmp_path / "images", 4)
    spec = ModelSpec.from_config(
        "tiny", {**tiny_config()["models"]["tiny"], "builder": f"{TESTS}/tiny_net.py:build"}
    )
    loaded = load_model(spec)
    records = image_records(ImageSpec(source="folder", path=str(tmp_path / "images"), batch_size=None))
    reflected = reflect_maps(
        loaded, records, "conv1", 0, micro_batch=3, device="cpu", progress=open("/dev/null", "w")
    )
    batch = torch.stack([loaded.transform(r.load()) for r in records])
    with torch.inference_mode():
        zero = loaded.model.conv1(batch)[:, 0].numpy()
    assert reflected.shape == zero.shape == (4, 32, 32)
    np.testing.assert_allclose(reflected[:, 1:, :], zero[:, 1:, :], rtol=1e-6)  # neuron 0 taps upwards
    assert np.abs(reflected[:, 0, :] - zero[:, 0, :]).min() > 0.5  # the top PAN no longer sees zeros


FIGURE_CONFIG = {
    "neurons": [{"model": "tiny", "layer": "conv1", "neuron": 9}],
    "top_pans": 2,
    "top_edge_detectors": 1,
    "heatmap_images": [0, 1],
}
THETA_FREE = ["results/figures/tiny/ks_distributions.png", "results/figures/tiny/theta_sweep.png"]
LABELLED = ["results/figures/tiny/pan_depth.png"]
NEURON_PNGS = [
    f"results/figures/tiny/neurons/{slot}/{figure}.png"
    for slot in ("pan1", "pan2", "edge1", "conv1_n9")
    for figure in ("activation_pdfs", "truncated_centre", "card")
]


@pytest.mark.workflow
def test_workflow_draws_every_figure_and_theta_rerenders_only_labelled_ones(tmp_path):
    shutil.copy(TESTS / "tiny_net.py", tmp_path / "tiny_net.py")
    write_images(tmp_path / "images", 20)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tiny_config(figures=FIGURE_CONFIG)))
    targets = THETA_FREE + LABELLED + NEURON_PNGS
    run_snakemake(tmp_path, *targets)
    for target in targets:
        with Image.open(tmp_path / target) as image:
            assert image.width > 400
        assert (tmp_path / target).with_suffix(".html").stat().st_size > 1000
    selection = pl.read_csv(tmp_path / "results/figures/tiny/neurons.csv")
    assert selection["slot"].to_list() == ["pan1", "pan2", "edge1"]
    assert selection.row(2, named=True)["neuron"] == 9  # the planted regular edge detector

    rerun = run_snakemake(tmp_path, "-n", *targets, "--config", "theta=0.4")
    assert scheduled_jobs(rerun.stdout + rerun.stderr) == {
        "label_pans": 1,
        "figure_neurons": 1,
        "pan_depth": 1,
        "activation_pdfs": 3,
        "truncated_centre": 3,
        "pan_card": 3,  # pan1, pan2, edge1; not conv1_n9
    }

    run_snakemake(tmp_path, "--report", "report.html", *targets)
    report = (tmp_path / "report.html").read_text()
    assert "Fig. 3: border and centre PDFs" in report and "PAN cards" in report
