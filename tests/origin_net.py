"""A two-layer CNN with hand-set kernels: one planted PAN per cell of the origin 2x2 and per
verdict of the flip control (pan.beyond.origin, pan.beyond.flip).

Inputs (:func:`batch`): 3x32x32, channels 0 and 2 uniform in [0.8, 1]; channel 1 the same
but 0 on row 0 of every image: a *content* feature at a fixed place (a horizon, a sky), no
padding. ``c1`` (3 -> 6, 3x3, padding 1, bias) makes:

- 0 ``ones``: bias 1, no taps: constant 1 (no PAN);
- 1 ``t_edge``: tap up on input 0: 0 on row 0: a T PAN of its own padding (nascent);
- 2 ``noise``: ``5 x input 2 - 4``, uniform in [0, 1] (no PAN);
- 3 ``content``: centre tap on input 1: a T "PAN" of content (no padding needed; moves with a flip);
- 4 ``l_edge``: tap left on input 0: an L PAN (nascent);
- 5 ``lr``: taps left and right on input 0: an LR PAN (nascent; symmetric for the flip).

``c2`` (6 -> 6, 3x3, padding 1) reads them:

- 0: tap up on ``ones``: row 0 is 0 only through its own padding (nascent);
- 1: centre tap on ``t_edge``: T only through upstream padding (downstream);
- 2: ``noise`` + 0.35 x (tap up on ``ones``) + 0.35 x (centre on ``t_edge``): each padding
  alone moves row 0 by about a third of the noise's range (KS about 0.33), both by two
  thirds (needs_both);
- 3: tap up on ``ones`` + centre on ``t_edge``: each padding alone moves row 0 clear of the
  centre (either);
- 4: centre tap on ``content``: passes with reflect everywhere (no_padding; flip: content);
- 5: tap up on ``ones`` + centre on ``l_edge``: T through its own padding, L through upstream
  padding: a TL PAN whose borders disagree (mixed).
"""

import torch
from torch import nn

UP, LEFT, RIGHT, MIDDLE = (0, 1), (1, 0), (1, 2), (1, 1)

EXPECTED_TYPES = {
    ("c1", 1): "T",
    ("c1", 3): "T",
    ("c1", 4): "L",
    ("c1", 5): "LR",
    ("c2", 0): "T",
    ("c2", 1): "T",
    ("c2", 2): "T",
    ("c2", 3): "T",
    ("c2", 4): "T",
    ("c2", 5): "TL",
}
"""(layer, neuron) -> PAN type of every PAN (all other neurons are no PAN)."""
EXPECTED_ORIGIN = {
    ("c1", 1): "nascent",
    ("c1", 3): "no_padding",
    ("c1", 4): "nascent",
    ("c1", 5): "nascent",
    ("c2", 0): "nascent",
    ("c2", 1): "downstream",
    ("c2", 2): "needs_both",
    ("c2", 3): "either",
    ("c2", 4): "no_padding",
    ("c2", 5): "mixed",
}
EXPECTED_VERDICT = {
    ("c1", 1): "padding",
    ("c1", 3): "content",
    ("c1", 4): "padding",
    ("c1", 5): "unclear",  # LR: a left-right flip cannot tell padding from content
    ("c2", 0): "padding",
    ("c2", 1): "padding",
    ("c2", 2): "padding",
    ("c2", 3): "padding",
    ("c2", 4): "content",
    ("c2", 5): "padding",
}


class OriginNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, padding=1)
        self.c2 = nn.Conv2d(6, 6, 3, padding=1, bias=False)
        self.head = nn.Linear(12, 2)
        nn.init.zeros_(self.c1.weight)
        nn.init.zeros_(self.c1.bias)
        nn.init.zeros_(self.c2.weight)
        w1, b1, w2 = self.c1.weight.data, self.c1.bias.data, self.c2.weight.data
        b1[0] = 1.0
        w1[1, 0][UP] = 1.0
        w1[2, 2][MIDDLE], b1[2] = 5.0, -4.0
        w1[3, 1][MIDDLE] = 1.0
        w1[4, 0][LEFT] = 1.0
        w1[5, 0][LEFT] = w1[5, 0][RIGHT] = 1.0
        w2[0, 0][UP] = 1.0
        w2[1, 1][MIDDLE] = 1.0
        w2[2, 2][MIDDLE], w2[2, 0][UP], w2[2, 1][MIDDLE] = 1.0, 0.35, 0.35
        w2[3, 0][UP], w2[3, 1][MIDDLE] = 1.0, 1.0
        w2[4, 3][MIDDLE] = 1.0
        w2[5, 0][UP], w2[5, 4][MIDDLE] = 1.0, 1.0
        self.head.weight.data = torch.randn(
            self.head.weight.shape, generator=torch.Generator().manual_seed(0)
        )
        self.head.bias.data.zero_()

    def forward(self, x):
        first = self.c1(x)
        second = self.c2(first)
        return self.head(torch.cat([first.mean(dim=(2, 3)), second.mean(dim=(2, 3))], dim=1))


def build() -> nn.Module:
    return OriginNet()


def batch(count: int = 32, seed: int = 0) -> torch.Tensor:
    """Inputs as described above, seeded."""
    x = 0.8 + 0.2 * torch.rand(count, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    x[:, 1, 0, :] = 0.0
    return x
