"""The page frame shared by every report page: inline CSS, no script, no timestamp.

Pages are byte-for-byte the same for the same input, so that two runs can be diffed.
"""

from __future__ import annotations

import html
import math

__all__ = ["cell", "page", "rounded"]

_STYLE = """
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 12px; color: #222; }
h1 { font-size: 18px; margin: 0 0 4px; } h2 { font-size: 15px; margin: 16px 0 4px; }
p.note { color: #555; margin: 4px 0 8px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 4px 0 8px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; white-space: nowrap; }
th { background: #f3f3f3; position: sticky; top: 0; }
td.num, th.num { text-align: right; }
tr:hover td { background: #fafafa; }
.notrun { color: #999; font-style: italic; }
.headline { font-size: 16px; font-weight: 600; }
.sections { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 0 24px; }
.sections table { font-size: 13px; } .sections h2 { margin-top: 10px; } .sections td { white-space: normal; }
"""


def rounded(value, digits: int = 4):
    """``value`` with floats rounded to ``digits`` decimals (NaN and inf as None); others as they are."""
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, digits)
    return value


def cell(value, digits: int = 4) -> str:
    """One value as HTML text: floats rounded (trailing zeros kept off), missing as an empty cell."""
    value = rounded(value, digits)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value)}"
    return html.escape(str(value))


def page(title: str, body: str) -> str:
    """A complete HTML document: ``title`` as heading, ``body`` (HTML) below it."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n"
        f"<body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )
