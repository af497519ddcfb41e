"""Figures of the paper (and a few beyond it), rendered with Altair from the pipeline's outputs.

- :mod:`pan.figures.selection`      which neurons get figures (config + strongest PANs)
- :mod:`pan.figures.distributions`  border/centre activation PDFs (Fig. 3, Fig. 5)
- :mod:`pan.figures.cards`          PAN cards: zero vs reflect padding, heatmaps, kernel (Figs. 6-8)
- :mod:`pan.figures.ks_plots`       KS distributions (Fig. 4), theta sweep, PAN share by depth
- :mod:`pan.figures.odds`           ordered log-odds and their histograms (Figs. 9-10)
- :mod:`pan.figures.render`         saving a chart as interactive HTML and as PNG

Only :mod:`pan.figures.cards` needs torch.
"""
