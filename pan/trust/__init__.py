"""How far to trust a PAN count: controls (random init, reflect padding) and label stability
across image draws.

- :mod:`pan.trust.runs`: run names (``controls/{condition}``, ``stability/draw{n}``) and their images;
- :mod:`pan.trust.controls`: the control models and the controls table;
- :mod:`pan.trust.stability`: Jaccard and PAN frequency across draws, with intervals.
"""
