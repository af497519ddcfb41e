"""What a reader sees in Snakemake's report: tables as HTML, and one padding card per model.

This package reads the workflow's CSV tables (polars only, no torch) and writes small,
self-contained HTML pages that the report shows inline, so that nobody has to download a CSV
to read Tables 1-3.

- :mod:`pan.report.html`   the shared page frame and number formatting (deterministic output)
- :mod:`pan.report.tables` a CSV table as an HTML table (:func:`write_table_html`)
- :mod:`pan.report.card`   the padding card of a model, as JSON and HTML, from whatever tables exist
"""

from __future__ import annotations

from pan.report.card import CARD_KEYS, NOT_RUN, padding_card, write_card
from pan.report.tables import write_table_html

__all__ = ["CARD_KEYS", "NOT_RUN", "padding_card", "write_card", "write_table_html"]
