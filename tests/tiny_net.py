"""A tiny CNN with hand-set kernels whose PAN labels are known in advance.

Inputs are 32x32 RGB images whose channel 0 and 2 are uniform in [0.8, 1], so sums of 1, 2, 3
and 4 pixels never overlap, and whose channel 1 holds two black rows inside the image: the
edges a regular edge detector finds in the centre as well as on the border.

Each planted neuron reads channel 0 through single kernel taps: a tap pointing up reads
the zero padding on the top row only, so the top row's activations all lie beyond the
centre's (a T PAN), and so on for every combination of taps.
"""

import torch
from torch import nn

UP, DOWN, LEFT, RIGHT, MIDDLE = (0, 1), (2, 1), (1, 0), (1, 2), (1, 1)

CONV1_TAPS = {  # neuron: (input channel, kernel taps of weight -1), expected PAN type
    0: (0, [UP], "T"),
    1: (0, [DOWN], "B"),
    2: (0, [LEFT], "L"),
    3: (0, [RIGHT], "R"),
    4: (0, [UP, DOWN], "TB"),
    5: (0, [LEFT, RIGHT], "LR"),
    6: (0, [UP, DOWN, LEFT], "TBL"),
    7: (0, [UP, DOWN, LEFT, RIGHT], "TBLR"),
    8: (0, [MIDDLE], ""),  # sees no padding
    9: (1, [UP], ""),  # an edge detector, not a PAN: black rows give the centre the same edges
    10: (0, [], ""),  # constant output: all ties
    11: (2, [MIDDLE], ""),
}

VALID_TAPS = {0: [UP, DOWN, LEFT, RIGHT], 1: [UP]}  # padding=0: cannot see padding at all
ASYMMETRIC_TAPS = {0: ([(0, 2)], "R"), 1: ([(2, 2)], "BR"), 2: ([(0, 0)], "")}  # pad right/bottom by 1

EXPECTED_TYPES = {
    **{("conv1", n): kind for n, (_, _, kind) in CONV1_TAPS.items()},
    **{("valid", n): "" for n in VALID_TAPS},
    **{("asymmetric.1", n): kind for n, (_, kind) in ASYMMETRIC_TAPS.items()},
}
"""(layer, neuron) -> PAN type for every analysed neuron (the 1x1 ``mix`` conv is not analysed)."""

EDGE_DETECTORS = {key for key, kind in EXPECTED_TYPES.items() if kind} | {("conv1", 9)}
"""Neurons with KS > theta on some border: every PAN, and the planted regular edge detector."""


def _set_taps(conv: nn.Conv2d, neuron: int, channel: int, taps) -> None:
    for row, col in taps:
        conv.weight.data[neuron, channel, row, col] = -1.0


class TinyNet(nn.Module):
    def __init__(self, classes: int = 2):
        super().__init__()
        self.conv1 = nn.Conv2d(3, len(CONV1_TAPS), 3, padding=1, bias=False)
        self.valid = nn.Conv2d(3, len(VALID_TAPS), 3, padding=0, bias=False)
        self.asymmetric = nn.Sequential(
            nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(3, len(ASYMMETRIC_TAPS), 3, bias=False)
        )
        self.mix = nn.Conv2d(len(CONV1_TAPS), 4, 1)
        self.head = nn.Linear(4 + len(VALID_TAPS) + len(ASYMMETRIC_TAPS), classes)
        for conv in (self.conv1, self.valid, self.asymmetric[1]):
            nn.init.zeros_(conv.weight)
        for neuron, (channel, taps, _) in CONV1_TAPS.items():
            _set_taps(self.conv1, neuron, channel, taps)
        for neuron, taps in VALID_TAPS.items():
            _set_taps(self.valid, neuron, 0, taps)
        for neuron, (taps, _) in ASYMMETRIC_TAPS.items():
            _set_taps(self.asymmetric[1], neuron, 0, taps)
        generator = torch.Generator().manual_seed(0)
        for layer in (self.mix, self.head):
            layer.weight.data = torch.randn(layer.weight.shape, generator=generator) * 0.5
            layer.bias.data.zero_()

    def forward(self, x):
        mixed = self.mix(torch.relu(-self.conv1(x)))
        features = [mixed, self.valid(x), self.asymmetric(x)]
        return self.head(torch.cat([f.mean(dim=(2, 3)) for f in features], dim=1))


def build() -> nn.Module:
    return TinyNet()
