"""pan.report and the report rules: tables as HTML, padding cards, a report from a partial run."""

from __future__ import annotations

import base64
import json
import re

import polars as pl
import pytest
import yaml
from conftest import tiny_config

from pan.report import CARD_KEYS, NOT_RUN, padding_card, write_card, write_table_html
from pan.report.card import SECTIONS
from pan.workflow.run import run_workflow, scheduled_jobs


def test_table_html_shows_every_value_and_cuts_long_tables(tmp_path):
    pl.DataFrame(
        {"model": ["a", "b", "c"], "pans": [3, 1, 2], "pan_pct": [2.125, 0.5, float("nan")]}
    ).write_csv(tmp_path / "t.csv")
    write_table_html(tmp_path / "t.csv", tmp_path / "t.html", "T <1>", max_rows=2)
    text = (tmp_path / "t.html").read_text()
    assert "<h1>T &lt;1&gt;</h1>" in text and "<script" not in text
    assert re.findall(r"<td[^>]*>([^<]*)</td>", text) == ["a", "3", "2.125", "b", "1", "0.5"]
    assert "First 2 of 3 rows" in text


def test_card_reads_what_exists_keeps_new_columns_and_is_diffable(tmp_path):
    pl.DataFrame(
        {
            "model": ["m", "n"],
            "pans": [5, 7],
            "neurons": [200, 300],
            "pan_pct": [2.5, 2.33],
            "pan_pct_low": [1.1, 1.0],
        }
    ).write_csv(tmp_path / "table2.csv")
    pl.DataFrame(
        {
            "model": ["m", "m", "m"],
            "condition": ["trained", "reflect", "random_init"],
            "pans": [5, 0, 1],
            "neurons": [200, 200, 200],
            "pan_pct": [2.5, 0.0, 0.5],
            "note": [None, None, None],
        }
    ).write_csv(tmp_path / "controls.csv")
    tables = {
        "table2": tmp_path / "table2.csv",
        "controls": tmp_path / "controls.csv",
        "stability": tmp_path / "no.csv",
    }
    card = write_card("m", tables, tmp_path / "m.json", tmp_path / "m.html", theta=0.5)
    assert tuple(sorted(card)) == CARD_KEYS and list(card["sections"]) == list(SECTIONS)
    pans = card["sections"]["pans"]
    assert pans["headline"] == {"pans": 5, "neurons": 200, "pan_pct": 2.5}
    assert pans["rows"][0]["pan_pct_low"] == 1.1  # a column the card does not know yet
    assert card["sections"]["controls"]["headline"]["random_init"] == {
        "pans": 1,
        "neurons": 200,
        "pan_pct": 0.5,
    }
    assert (
        card["sections"]["interval"]["status"] == NOT_RUN and card["sections"]["audit"]["status"] == NOT_RUN
    )
    text = (tmp_path / "m.json").read_text()
    assert json.loads(text) == card and text == json.dumps(card, sort_keys=True, indent=2) + "\n"
    page = (tmp_path / "m.html").read_text()
    assert "5 PANs of 200 neurons (2.5 %)" in page and "random_init: 1 (0.5 %)" in page
    assert "not run (<code>snakemake trust</code>)" in page
    assert padding_card("m", tables, 0.5) == card  # the same numbers give the same card


def _report_items(report_html: str) -> dict[str, str]:
    """path -> decoded content of each HTML item embedded in Snakemake's self-contained report."""
    items = {}
    for path, uri in re.findall(
        r'"(results/[^"]+\.html)": \{.*?"data_uri": "(data:text/html[^"]*)"', report_html
    ):
        items[path] = base64.b64decode(uri.split("base64,", 1)[1]).decode()
    return items


@pytest.mark.workflow
def test_report_of_a_partial_run_shows_tables_as_html_and_cards(tiny_workdir):
    (tiny_workdir / "config.yaml").write_text(yaml.safe_dump(tiny_config(stability={"draws": 2})))
    run_workflow(tiny_workdir, "results/tables/table2.csv", "results/tables/stability.csv")
    run_workflow(tiny_workdir, "report_items", "--report", "report.html", "--report-after-run")
    report = (tiny_workdir / "report.html").read_text()
    items = _report_items(report)
    tables = {path for path in items if path.startswith("results/report/tables/")}
    assert tables == {f"results/report/tables/{t}.html" for t in ("table1", "table2", "stability")}
    table2 = pl.read_csv(tiny_workdir / "results/tables/table2.csv").row(0, named=True)
    assert f'<td class="num">{table2["pans"]}</td>' in items["results/report/tables/table2.html"]
    assert "<table>" in items["results/cards/tiny.html"]

    card = json.loads((tiny_workdir / "results/cards/tiny.json").read_text())
    assert tuple(sorted(card)) == CARD_KEYS and set(card["sections"]) == set(SECTIONS)
    sections = card["sections"]
    assert sections["pans"]["headline"]["pans"] == table2["pans"]
    assert sections["interval"]["status"] == "ok" and sections["interval"]["headline"]["draws"] == 2
    assert {name for name, s in sections.items() if s["status"] == NOT_RUN} == set(SECTIONS) - {
        "pans",
        "interval",
    }

    # The report is up to date with what was run: a dry run of its items schedules nothing.
    assert scheduled_jobs(run_workflow(tiny_workdir, "-n", "report_items").stdout) == {}
