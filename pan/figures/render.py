"""Save a chart twice: self-contained interactive HTML (opens offline) and a PNG (vl-convert).

Every figure of the workflow goes through :func:`save_chart`, so all share one look (fonts,
sizes) and none is written without data. PNGs are sized for a screen (at most
:data:`PNG_MAX_WIDTH` pixels wide) and stored with a 256-colour palette: charts have few
colours, so a PAN card shrinks from about 1.1 MB to about 0.13 MB and the report stays light.
The HTML loads Vega from one shared bundle, ``vega-embed-<versions>.js`` in the nearest folder
named ``figures`` above it (else beside it), instead of carrying its own 0.9 MB copy; the bundle
is built (1.2 s in vl-convert) only by the first figure job that finds it missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import altair as alt
import jinja2
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
    source = Path(os.path.relpath(shared_vega_bundle(html), Path(html).parent)).as_posix()
    chart.save(str(html), template=jinja2.Template(_PAGE.replace("BUNDLE_SOURCE", source)))
    chart.save(str(png), scale_factor=PNG_SCALE)
    shrink_png(png)


_PAGE = """\
<!DOCTYPE html>
<html>
<head>
  <meta charset="UTF-8">
  <style>
    #{{ output_div }}.vega-embed {
      width: 100%;
      display: flex;
    }

    #{{ output_div }}.vega-embed details,
    #{{ output_div }}.vega-embed details summary {
      position: relative;
    }
  </style>
  <script type="text/javascript" src="BUNDLE_SOURCE"></script>
</head>
<body>
<div class="vega-visualization" id="{{ output_div }}"></div>
<script type="text/javascript">
  const spec = {{ spec }};
  const embedOpt = {{ embed_options }};
  vegaEmbed('#{{ output_div }}', spec, embedOpt).catch(console.error);
</script>
</body>
</html>
"""
"""Altair's offline ("inline") page with the Vega bundle loaded from a file instead of inlined."""


def shared_vega_bundle(html: str | Path) -> Path:
    """The Vega, Vega-Lite and vega-embed bundle that the page ``html`` loads: one file in the
    nearest folder named ``figures`` above ``html`` (else beside it), named by the Vega-Lite
    and vl-convert versions that make it, and built and written (atomically) when missing."""
    import vl_convert

    html = Path(html)
    folder = next((p for p in html.parents if p.name == "figures"), html.parent)
    vega_lite = "_".join(alt.SCHEMA_VERSION.split(".")[:2])  # as Altair names it for vl-convert
    bundle = folder / f"vega-embed-{vega_lite}-vlc{vl_convert.__version__}.js"
    if not bundle.exists():
        partial = bundle.with_name(f"{bundle.name}.{os.getpid()}.part")
        partial.write_text(vl_convert.javascript_bundle(vl_version=vega_lite))
        os.replace(partial, bundle)
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
