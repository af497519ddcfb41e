"""Save a chart twice: self-contained interactive HTML (opens offline) and a PNG (vl-convert).

Every figure of the workflow goes through :func:`save_chart`, so all share one look (fonts,
sizes) and none is written without data. PNGs are sized for a screen (at most
:data:`PNG_MAX_WIDTH` pixels wide) and stored with a 256-colour palette: charts have few
colours, so a PAN card shrinks from about 1.1 MB to about 0.13 MB and the report stays light.
The HTML loads Vega from one shared bundle, ``vega-embed-<hash>.js`` in the nearest folder
named ``figures`` above it (else beside it), instead of carrying its own 0.9 MB copy.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import altair as alt
from PIL import Image

__all__ = [
    "BORDER_COLOURS",
    "PNG_COLOURS",
    "PNG_MAX_WIDTH",
    "PNG_SCALE",
    "data_rows",
    "save_chart",
    "shrink_png",
    "styled",
]

PNG_SCALE = 1.5
"""Pixels per chart unit in PNGs: sharp on screens, yet a report of every figure stays light."""
PNG_MAX_WIDTH = 2000
"""Widest PNG written (pixels); wider charts are scaled down to it."""
PNG_COLOURS = 256
"""Palette size of the PNGs: lines, text and heatmaps keep their look at a tenth of the bytes."""

BORDER_COLOURS: dict[str, str] = {
    "top": "#1f77b4",
    "bottom": "#ff7f0e",
    "left": "#2ca02c",
    "right": "#d62728",
    "centre": "#9467bd",
    "centre+": "#e377c2",
    "centre-": "#8c564b",
}
"""Region colours as in the paper's figures: centre purple, centre+ pink, centre- brown."""


def data_rows(chart: alt.TopLevelMixin) -> int:
    """How many data rows a chart carries, over all its datasets (inline values included)."""
    spec = chart.to_dict()
    rows = sum(len(values) for values in spec.get("datasets", {}).values())
    return rows + len(spec.get("data", {}).get("values", []))


def styled(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """The common look: readable fonts, left-aligned titles with subtitles, no view border."""
    return (
        chart.configure_axis(labelFontSize=11, titleFontSize=12)
        .configure_legend(labelFontSize=11, titleFontSize=12, labelLimit=400)
        .configure_header(labelFontSize=12, titleFontSize=12)
        .configure_title(fontSize=15, subtitleFontSize=12, anchor="start", subtitleColor="#555")
        .configure_view(stroke=None)
    )


def save_chart(chart: alt.TopLevelMixin, html: str | Path, png: str | Path) -> None:
    """Write ``chart`` as HTML (Vega bundled in, no internet needed) and as PNG.

    Raises ``ValueError`` for a chart without data: an empty figure is a bug upstream.
    """
    if data_rows(chart) == 0:
        raise ValueError(f"refusing to save an empty chart to {png}")
    chart = styled(chart)
    for path in (html, png):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    chart.save(str(html), inline=True)
    share_vega_bundle(html)
    chart.save(str(png), scale_factor=PNG_SCALE)
    shrink_png(png)


_BUNDLE_START = '<script type="text/javascript">\n    // vega-embed.js bundle'


def share_vega_bundle(html: str | Path) -> Path:
    """Move the Vega bundle that Altair inlined into ``html`` to a shared file; return its path.

    The file is named by a hash of its content and written once (atomically), in the nearest
    folder named ``figures`` above ``html`` or else beside it; ``html`` then loads it by a
    relative ``<script src>``, so it still opens offline.
    """
    html = Path(html)
    text = html.read_text()
    start = text.index(_BUNDLE_START)
    end = text.index("</script>", start) + len("</script>")
    script = text[text.index("\n", start + len(_BUNDLE_START)) + 1 : end - len("</script>")]
    folder = next((p for p in html.parents if p.name == "figures"), html.parent)
    bundle = folder / f"vega-embed-{hashlib.sha256(script.encode()).hexdigest()[:12]}.js"
    if not bundle.exists():
        partial = bundle.with_name(f"{bundle.name}.{os.getpid()}.part")
        partial.write_text(script)
        os.replace(partial, bundle)
    source = Path(os.path.relpath(bundle, html.parent)).as_posix()
    html.write_text(f'{text[:start]}<script type="text/javascript" src="{source}"></script>{text[end:]}')
    return bundle


def shrink_png(png: str | Path, max_width: int = PNG_MAX_WIDTH, colours: int = PNG_COLOURS) -> None:
    """Rewrite ``png`` at most ``max_width`` pixels wide with a ``colours``-colour palette."""
    with Image.open(png) as image:
        image.load()
    if image.width > max_width:
        height = round(image.height * max_width / image.width)
        image = image.resize((max_width, height), Image.Resampling.LANCZOS)
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA")
    palette = image.quantize(colours, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    palette.save(png, optimize=True)
