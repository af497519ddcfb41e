"""A CSV table of the workflow as a small, self-contained HTML table for the report.

Snakemake's report shows HTML inline but offers CSV only as a download; these pages put
Tables 1-3, the controls, stability, origin, reach, the attack summary and the padding audit
in front of the reader. Long tables are cut at ``max_rows`` with a note (the CSV stays whole).
"""

from __future__ import annotations

import html
from pathlib import Path

import polars as pl

from pan.report.html import cell, page

__all__ = ["MAX_ROWS", "table_html", "write_table_html"]

MAX_ROWS = 400
"""Rows shown per table; the rest is named in a note (the CSV beside it holds every row)."""


def table_html(frame: pl.DataFrame, max_rows: int = MAX_ROWS) -> str:
    """The rows of ``frame`` (at most ``max_rows``) as an HTML ``<table>``, numbers right-aligned."""
    numeric = [dtype.is_numeric() for dtype in frame.dtypes]
    head = "".join(
        f'<th class="num">{html.escape(name)}</th>' if num else f"<th>{html.escape(name)}</th>"
        for name, num in zip(frame.columns, numeric, strict=True)
    )
    rows = []
    for row in frame.head(max_rows).iter_rows():
        cells = "".join(
            f'<td class="num">{cell(value)}</td>' if num else f"<td>{cell(value)}</td>"
            for value, num in zip(row, numeric, strict=True)
        )
        rows.append(f"<tr>{cells}</tr>")
    note = ""
    if frame.height > max_rows:
        note = f'<p class="note">First {max_rows} of {frame.height} rows; the CSV holds every row.</p>\n'
    return (
        f"{note}<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table>"
    )


def write_table_html(csv: str | Path, out: str | Path, title: str, max_rows: int = MAX_ROWS) -> None:
    """Write the CSV table ``csv`` as the HTML page ``out`` headed ``title``.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "t.csv").write_text("model,pans,pan_pct\\nlite0,191,2.124\\n")
    >>> write_table_html(folder / "t.csv", folder / "t.html", "Table 2")
    >>> "<td class=\\"num\\">191</td>" in (folder / "t.html").read_text()
    True
    """
    frame = pl.read_csv(csv, infer_schema_length=None)
    body = f'<p class="note">{frame.height} rows from <code>{html.escape(Path(csv).name)}</code>.</p>\n'
    body += table_html(frame, max_rows)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page(title, body))
