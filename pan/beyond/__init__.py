"""Beyond the paper: where PANs come from, how far padding reaches, and the zero-line attack.

- :mod:`pan.beyond.origin`: nascent vs downstream PANs, by a 2x2 of own x upstream padding;
- :mod:`pan.beyond.flip`: the flip control, padding or content at a fixed place;
- :mod:`pan.beyond.probe`: PAN border strength under interventions, with bootstrap intervals;
- :mod:`pan.beyond.reach`: how far from each border a neuron still tells the border apart;
- :mod:`pan.beyond.attack` and :mod:`pan.beyond.firing`: the zero-line attack (paper §5), on
  predictions and inside the network; :mod:`pan.beyond.firing_pans`: which PANs fire at theta;
  :mod:`pan.beyond.attack_summary`: its rates with bootstrap intervals and the paired differences;
- :mod:`pan.beyond.audit` (with :mod:`pan.beyond.shapes`): where a model pads, and unevenly;
- :mod:`pan.beyond.neurons` and :mod:`pan.beyond.selection`: one neuron up close (PAN cards).
"""
