"""A dense-output net (one output map per image) whose padding bias is known in advance.

``conv`` has two hand-set 3x3 channels over input channel 0: channel 0 reads the pixel above
(weight -1 at the top tap), so on the top row it reads the zero padding (a T PAN); channel 1
reads the pixel itself (it sees no padding). A 1x1 ``head`` adds them into one map. Switching
channel 0 to reflect padding changes the top row of the output, by the input's second row, and
nothing else; switching channel 1 changes nothing.
"""

import torch
from torch import nn


class DenseNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1, bias=False)
        self.head = nn.Conv2d(2, 1, 1, bias=False)
        nn.init.zeros_(self.conv.weight)
        self.conv.weight.data[0, 0, 0, 1] = -1.0  # the pixel above: the zero padding on the top row
        self.conv.weight.data[1, 0, 1, 1] = -1.0  # the pixel itself
        self.head.weight.data = torch.ones(1, 2, 1, 1)

    def forward(self, x):
        return self.head(self.conv(x))


def build() -> nn.Module:
    return DenseNet()
