"""A small CNN with hand-set kernels for the analyses beyond the paper (origin, reach, lines).

Inputs as in tests/tiny_net.py: 32x32 RGB, channels 0 and 2 uniform in [0.8, 1]. Kernel taps
of weight -1 (conv1) or +1 read channel 0 of the input unless said otherwise:

- ``conv1`` 0: tap up: a T PAN that reads its own padding (nascent);
- ``conv1`` 1: tap left: an L PAN (nascent), the one the zero-line test draws a column for;
- ``conv1`` 2, 3: centre taps on channels 2 and 0: no PAN;
- ``conv2`` 0: reads ``relu(-conv1)`` channel 0 through its centre tap only, which never
  touches its own padding: a T PAN only because its input is (downstream);
- ``conv2`` 1: centre tap on ``relu(-conv1)`` channel 3: no PAN;
- ``reach`` 0: a 5x5 conv (padding 2) with taps +1, -1, +1 two rows up, one row up and in
  the centre: row 0 sums to ``x`` (like the centre, ``x - x + x``), row 1 to ``x - x`` (about
  0): padding-aware at distance 1, not at 0;
- ``reach`` 1: centre tap on channel 2: nothing.
"""

import torch
from torch import nn

UP, LEFT, MIDDLE = (0, 1), (1, 0), (1, 1)

EXPECTED_TYPES = {("conv1", 0): "T", ("conv1", 1): "L", ("conv2", 0): "T"}
"""(layer, neuron) -> PAN type of every PAN (all other analysed neurons are no PAN)."""
EXPECTED_ORIGIN = {("conv1", 0): "nascent", ("conv1", 1): "nascent", ("conv2", 0): "downstream"}
REACH_NEURON = ("reach", 0)
"""Padding-aware at distance 1 (T) and at no other distance."""
L_PAN = ("conv1", 1)


class BeyondNet(nn.Module):
    def __init__(self, classes: int = 2):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(4, 2, 3, padding=1, bias=False)
        self.reach = nn.Conv2d(3, 2, 5, padding=2, bias=False)
        self.head = nn.Linear(4 + 2 + 2, classes)
        for conv in (self.conv1, self.conv2, self.reach):
            nn.init.zeros_(conv.weight)
        w1 = self.conv1.weight.data
        w1[0, 0, UP[0], UP[1]] = -1.0
        w1[1, 0, LEFT[0], LEFT[1]] = -1.0
        w1[2, 2, MIDDLE[0], MIDDLE[1]] = 1.0
        w1[3, 0, MIDDLE[0], MIDDLE[1]] = -1.0
        self.conv2.weight.data[0, 0, 1, 1] = 1.0
        self.conv2.weight.data[1, 3, 1, 1] = 1.0
        w3 = self.reach.weight.data
        w3[0, 0, 0, 2], w3[0, 0, 1, 2], w3[0, 0, 2, 2] = 1.0, -1.0, 1.0
        w3[1, 2, 2, 2] = 1.0
        generator = torch.Generator().manual_seed(0)
        self.head.weight.data = torch.randn(self.head.weight.shape, generator=generator)
        self.head.bias.data.zero_()

    def forward(self, x):
        first = torch.relu(-self.conv1(x))
        features = [first, self.conv2(first), self.reach(x)]
        return self.head(torch.cat([f.mean(dim=(2, 3)) for f in features], dim=1))


def build() -> nn.Module:
    return BeyondNet()


def batch(count: int = 16, seed: int = 0) -> torch.Tensor:
    """Inputs as the PNGs of tests/conftest.py's write_images, straight as a tensor."""
    generator = torch.Generator().manual_seed(seed)
    x = 0.8 + 0.2 * torch.rand(count, 3, 32, 32, generator=generator)
    for i in range(count):
        rows = torch.randperm(26, generator=generator)[:2] + 2
        x[i, 1, rows, :] = 0.0
    return x
