"""Padding bias (paper §4): what the PANs' reading of zero padding does to predictions.

- :mod:`pan.bias.reflect`: per-output-channel reflect padding (the variants' convs);
- :mod:`pan.bias.variants`: the four models ``original``, ``reflect``, ``pan_reflect``, ``rand_reflect``;
- :mod:`pan.bias.evaluation`: all variants over the same images in one pass;
  :mod:`pan.bias.logits`: their outputs on disk;
- :mod:`pan.bias.odds`: per-class odds (Eq. 1); :mod:`pan.bias.table3`: Table 3;
- :mod:`pan.bias.noise_family` and :mod:`pan.bias.noise`: §4 against a noise model (random
  perturbations of growing size, per-class intervals, the KL-matched null, the halves floor);
- :mod:`pan.bias.influence`: which images the PANs' padding moves most (§4.2);
- :mod:`pan.bias.export`: a variant exported as a standalone model to take away.
"""
