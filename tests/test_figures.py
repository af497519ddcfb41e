"""Figures: every chart renders to a non-empty PNG from tiny real inputs; the workflow draws them
and re-renders only the label-dependent ones when theta changes."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import altair as alt
import numpy as np
import polars as pl
import pytest
import yaml
from conftest import TESTS, ks_table, tiny_config, write_images
from PIL import Image

from pan.beyond.neurons import RegionSamples, neuron_card
from pan.beyond.selection import slot_neuron
from pan.bias.odds import ODDS_SCHEMA, read_odds
from pan.capture.images import ImageSpec
from pan.capture.models import ModelSpec
from pan.core.labelling import label_pans
from pan.figures.cards import card_chart, write_card
from pan.figures.distributions import activation_pdf_chart, neuron_title, truncated_centre_chart
from pan.figures.ks_plots import depth_chart, ks_distribution_chart, theta_sweep_chart
from pan.figures.neurons import NEURON_FIGURES, neuron_figure_key, write_neuron_figures
from pan.figures.odds import (
    log_odds_histogram_chart,
    ordered_log_odds_chart,
    write_log_odds_histogram,
    write_ordered_log_odds,
)
from pan.figures.render import PNG_MAX_WIDTH, save_chart
from pan.trust.controls import dump_run
from pan.workflow.run import run_workflow, scheduled_jobs


def assert_renders(chart: alt.TopLevelMixin, tmp_path: Path, name: str) -> Image.Image:
    """Every dataset of ``chart`` has rows, and its PNG is a real picture: big, many colours."""
    datasets = chart.to_dict().get("datasets", {})
    assert datasets and all(len(rows) > 0 for rows in datasets.values())
    html, png = tmp_path / f"{name}.html", tmp_path / f"{name}.png"
    save_chart(chart, html, png)
    assert "vega" in html.read_text() and png.stat().st_size > 3_000
    with Image.open(png) as image:
        assert image.mode == "P" and image.width <= PNG_MAX_WIDTH  # sized for the screen, palette
        image.verify()
    image = Image.open(png).convert("RGB")
    assert image.width > 400 and image.height > 200
    assert len(image.getcolors(maxcolors=1 << 24)) > 20  # axes, lines, text: not a blank canvas
    return image


def planted_maps(images: int = 6, size: int = 12, seed: int = 0) -> np.ndarray:
    """Maps ``(images, size, size)`` whose top row lies above everything else: a top PAN."""
    maps = np.random.default_rng(seed).normal(size=(images, size, size)).astype(np.float32)
    maps[:, 0, :] += 8
    return maps


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


def test_theta_sweep_chart_renders(tmp_path):
    assert_renders(theta_sweep_chart(ks_table(), "toy"), tmp_path, "sweep")


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
    assert odds.columns == list(ODDS_SCHEMA)
    image = assert_renders(ordered_log_odds_chart(odds, "toy"), tmp_path, "fig9")
    assert image.width > 900  # 620 chart units at scale 1.5
    assert_renders(log_odds_histogram_chart(odds, "toy"), tmp_path, "fig10")


def test_a_dense_model_gets_a_note_instead_of_odds_figures(tmp_path):
    made_up_odds().clear().write_csv(tmp_path / "odds.csv")  # what write_odds writes for a map output
    for write, name in ((write_ordered_log_odds, "fig9"), (write_log_odds_histogram, "fig10")):
        write(tmp_path / "odds.csv", "dense", tmp_path / f"{name}.html", tmp_path / f"{name}.png")
        assert "a dense output has no classes" in (tmp_path / f"{name}.html").read_text()
        assert Image.open(tmp_path / f"{name}.png").width > 0


def test_odds_without_the_expected_columns_fail_clearly(tmp_path):
    made_up_odds().drop("log_odds_reflect").write_csv(tmp_path / "odds.csv")
    with pytest.raises(ValueError, match="log_odds_reflect"):
        read_odds(tmp_path / "odds.csv")


def test_figures_share_one_vega_bundle_and_open_offline(tmp_path):
    chart = alt.Chart(pl.DataFrame({"x": [1, 2, 3], "y": [3, 1, 2]})).mark_line().encode(x="x", y="y")
    pages = [tmp_path / "figures/m/a.html", tmp_path / "figures/m/neurons/s/b.html"]
    for page in pages:
        save_chart(chart, page, page.with_suffix(".png"))
    bundles = list((tmp_path / "figures").glob("vega-embed-*.js"))
    assert len(bundles) == 1 and bundles[0].stat().st_size > 100_000  # Vega, Vega-Lite, vega-embed
    for page in pages:
        text = page.read_text()
        source = re.search(r'<script type="text/javascript" src="([^"]+)"></script>', text)[1]
        assert (page.parent / source).resolve() == bundles[0].resolve()
        assert len(text) < 20_000 and "vegaEmbed(" in text  # the spec and the call, no copy of Vega


def test_an_empty_chart_is_never_saved(tmp_path):
    empty = alt.Chart(pl.DataFrame({"x": []}, schema={"x": pl.Float64})).mark_point().encode(x="x:Q")
    with pytest.raises(ValueError, match="empty chart"):
        save_chart(empty, tmp_path / "e.html", tmp_path / "e.png")
    assert not (tmp_path / "e.png").exists()


def test_one_process_renders_every_neuron_figure_as_one_process_per_figure_did(tmp_path):
    shutil.copy(TESTS / "tiny_net.py", tmp_path / "tiny_net.py")
    write_images(tmp_path / "images", 8)
    settings = tiny_config()["models"]["tiny"] | {"builder": str(tmp_path / "tiny_net.py:build")}
    spec, images = (
        ModelSpec.from_config("tiny", settings),
        ImageSpec("folder", str(tmp_path / "images"), 8, 0),
    )
    dump_run(spec, images, tmp_path / "dump", None, micro_batch=3, device="cpu")
    slots = ["conv1_n9", "asymmetric.1_n1"]
    outputs = {
        neuron_figure_key(slot, figure, ext): tmp_path / "figures/tiny/neurons" / slot / f"{figure}.{ext}"
        for slot in slots
        for figure in NEURON_FIGURES
        for ext in ("html", "png")
    }
    with pytest.raises(ValueError, match="asymmetric.1_n1/card.png"):  # before any model runs
        write_neuron_figures(spec, images, tmp_path / "dump", "tiny", slots, None, [0], {}, 3, "cpu")
    write_neuron_figures(spec, images, tmp_path / "dump", "tiny", slots, None, [0], outputs, 3, "cpu")
    for slot in slots:  # each figure as its own job drew it: the same chart of the same data
        card = neuron_card(spec, images, tmp_path / "dump", slot_neuron(slot), [0], 3, "cpu")
        alone = tmp_path / "alone/figures/tiny/neurons" / slot  # the same Vega bundle path
        save_chart(
            activation_pdf_chart(card.zero, neuron_title(card.found, "tiny", "Border and centre PDFs")),
            alone / "activation_pdfs.html",
            alone / "activation_pdfs.png",
        )
        save_chart(
            truncated_centre_chart(card.zero, neuron_title(card.found, "tiny", "Truncated centres")),
            alone / "truncated_centre.html",
            alone / "truncated_centre.png",
        )
        write_card(card, "tiny", alone / "card.html", alone / "card.png")
        for figure in NEURON_FIGURES:
            for ext in ("html", "png"):
                mine = outputs[neuron_figure_key(slot, figure, ext)].read_bytes()
                assert mine == (alone / f"{figure}.{ext}").read_bytes(), (slot, figure, ext)
        with Image.open(outputs[neuron_figure_key(slot, "card", "png")]) as image:
            assert image.width > 400


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
def test_workflow_draws_every_figure_and_theta_rerenders_only_what_the_labels_feed(tmp_path):
    shutil.copy(TESTS / "tiny_net.py", tmp_path / "tiny_net.py")
    write_images(tmp_path / "images", 20)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tiny_config(figures=FIGURE_CONFIG)))
    targets = THETA_FREE + LABELLED + NEURON_PNGS
    run_workflow(tmp_path, *targets)
    for target in targets:
        with Image.open(tmp_path / target) as image:
            assert image.width > 400
        assert (tmp_path / target).with_suffix(".html").stat().st_size > 1000
    selection = pl.read_csv(tmp_path / "results/figures/tiny/neurons.csv")
    assert selection["slot"].to_list() == ["pan1", "pan2", "edge1"]
    assert selection.row(2, named=True)["neuron"] == 9  # the planted regular edge detector

    rerun = run_workflow(tmp_path, "-n", *targets, "--config", "theta=0.4")
    assert scheduled_jobs(rerun.stdout + rerun.stderr) == {
        "label_pans": 1,
        "figure_neurons": 1,
        "pan_depth": 1,
        # every neuron figure of a model is one job (its cards' reflect pass included), and the
        # ranked slots follow the labels: a theta change reruns it, conv1_n9's figures included.
        # tiny has a configured neuron, so its slots are its own and so is its rule.
        "neuron_figures_tiny": 1,
    }

    run_workflow(tmp_path, "--report", "report.html", *targets)
    report = (tmp_path / "report.html").read_text()
    assert "Fig. 3: border and centre PDFs" in report and "PAN cards" in report
