"""The torch-free core of the §3 method: border regions, KS statistics, per-layer scoring,
PAN labelling, Tables 1-2 and the activation-dump format.

Nothing here imports torch (an import-linter contract in ``pyproject.toml``, checked in CI), so a
KS or labelling job starts in a fraction of a second and a reanalysis at another θ needs only
numpy, polars and pyarrow.

- :mod:`pan.core.borders`: the border regions T, B, L, R and the centre (paper §3.1);
- :mod:`pan.core.ks`: KS, KS+ and KS- of border against centre samples, many neurons at once;
- :mod:`pan.core.scoring`: every neuron x border of one layer's dump, as a KS table;
- :mod:`pan.core.labelling`: the PAN rules at θ (the paper's and the share rule) and the 15
  PAN types (paper §3.2);
- :mod:`pan.core.interior`: the interior-line null, each rule's false-positive rate per map size;
- :mod:`pan.core.bootstrap`: image-bootstrap intervals of each neuron's border strength;
- :mod:`pan.core.tables`: Table 1 (PANs per layer) and Table 2 (PAN types per model);
- :mod:`pan.core.dumps`: the on-disk format of activation dumps.
"""
