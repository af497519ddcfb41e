"""Figures of the paper (and a few beyond it): Altair charts of the pipeline's results.

This package only turns tables and arrays into charts; the numbers come from the analysis
modules (:mod:`pan.core.scoring`, :mod:`pan.core.labelling`, :mod:`pan.bias.odds`, :mod:`pan.beyond.neurons`).

- :mod:`pan.figures.distributions`  border/centre activation PDFs (Fig. 3, Fig. 5)
- :mod:`pan.figures.cards`          PAN cards: zero vs reflect padding, heatmaps, kernel (Figs. 6-8)
- :mod:`pan.figures.neurons`        every neuron figure of a model (Figs. 3, 5, 6-8) in one process
- :mod:`pan.figures.ks_plots`       KS distributions (Fig. 4), theta sweep, PAN share by depth
- :mod:`pan.figures.odds`           ordered log-odds and their histograms (Figs. 9-10)
- :mod:`pan.figures.trust`          PAN share by depth per control, PAN frequency over draws
- :mod:`pan.figures.render`         saving a chart as interactive HTML and as PNG
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from pan.figures.ks_plots import write_depth, write_ks_distributions, write_theta_sweep
from pan.figures.odds import write_log_odds_histogram, write_ordered_log_odds

Files = Sequence[str | Path]
MODEL_FIGURES: dict[str, Callable[[Files, str, str | Path, str | Path], None]] = {
    "ks_distributions": write_ks_distributions,
    "theta_sweep": write_theta_sweep,
    "pan_depth": lambda files, *out: write_depth(files[0], *out),
    "log_odds": lambda files, *out: write_ordered_log_odds(files[0], *out),
    "log_odds_histogram": lambda files, *out: write_log_odds_histogram(files[0], *out),
}
"""Per-model figures: name -> writer of ``(input files, model, html, png)``."""


def write_model_figure(figure: str, inputs: Files, model: str, html: str | Path, png: str | Path) -> None:
    """Render the per-model figure ``figure`` (a key of :data:`MODEL_FIGURES`) of ``model``."""
    MODEL_FIGURES[figure](list(inputs), model, html, png)
