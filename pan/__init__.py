"""pan: find Padding Aware Neurons (PANs) in CNNs and measure the padding bias they carry.

Reproduces and extends "Padding Aware Neurons" (Garcia-Gasulla, Gimenez-Abalos,
Martin-Torres; ICCV 2023 workshops). Each paper concept lives in one module:

- :mod:`pan.layers`      which convolutions are analysed (kernel larger than 1x1)
- :mod:`pan.borders`     the border regions T, B, L, R and the centre
- :mod:`pan.ks`          vectorised KS, KS+ and KS- statistics
- :mod:`pan.labelling`   PAN labels and PAN types for a threshold theta
- :mod:`pan.padding`     per-channel reflect padding (PAN-reflect, RAND-reflect)
- :mod:`pan.figures`     the paper's figures, rendered with Altair
"""

__version__ = "0.1.0"
