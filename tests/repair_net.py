"""Hand-set nets for the repair tests (inputs as tests/tiny_net.py: 32x32, channels 0 and 2
uniform in [0.8, 1]).

``RepairNet``: four PANs (T, B, L, R: one tap of weight -1 on channel 0 pointing at the
padding) and two blind neurons, ``relu(-conv1)`` averaged over the map, then a linear head
with large seeded weights, so the zero border rows of the PANs move the logits: reflect
padding changes the predictions, and distillation has something to undo.

``DeadPanNet``: the same PANs with a bias of -0.5 and ``relu(+conv1)``: the conv's output is
negative everywhere (-0.5 on the zero border, about -1.4 inside, and as low inside with
reflect padding), so the PANs die at the ReLU and a padding swap changes no logit; a blind
``valid`` conv gives the head something that varies by image.
"""

import torch
from torch import nn

UP, DOWN, LEFT, RIGHT, MIDDLE = (0, 1), (2, 1), (1, 0), (1, 2), (1, 1)
PAN_TAPS = {
    0: (0, UP, "T"),
    1: (0, DOWN, "B"),
    2: (0, LEFT, "L"),
    3: (0, RIGHT, "R"),
    4: (0, MIDDLE, ""),
    5: (2, MIDDLE, ""),
}
EXPECTED_TYPES = {("conv1", n): kind for n, (_, _, kind) in PAN_TAPS.items()}


def _planted_conv(bias: float | None) -> nn.Conv2d:
    conv = nn.Conv2d(3, len(PAN_TAPS), 3, padding=1, bias=bias is not None)
    nn.init.zeros_(conv.weight)
    for neuron, (channel, (row, col), _) in PAN_TAPS.items():
        conv.weight.data[neuron, channel, row, col] = -1.0
    if bias is not None:
        conv.bias.data.fill_(bias)
    return conv


class RepairNet(nn.Module):
    def __init__(self, classes: int = 2, scale: float = 40.0):
        super().__init__()
        self.conv1 = _planted_conv(None)
        self.head = nn.Linear(len(PAN_TAPS), classes)
        generator = torch.Generator().manual_seed(1)
        self.head.weight.data = torch.randn(self.head.weight.shape, generator=generator) * scale
        self.head.bias.data = -self.head.weight.data.sum(1) * 0.9  # logits near 0 on typical images

    def forward(self, x):
        return self.head(torch.relu(-self.conv1(x)).mean(dim=(2, 3)))


class DeadPanNet(nn.Module):
    def __init__(self, classes: int = 2):
        super().__init__()
        self.conv1 = _planted_conv(-0.5)
        self.valid = nn.Conv2d(3, 2, 3, padding=0)
        self.head = nn.Linear(len(PAN_TAPS) + 2, classes)
        generator = torch.Generator().manual_seed(2)
        for layer in (self.valid, self.head):
            layer.weight.data = torch.randn(layer.weight.shape, generator=generator)

    def forward(self, x):
        features = [torch.relu(self.conv1(x)).mean(dim=(2, 3)), self.valid(x).mean(dim=(2, 3))]
        return self.head(torch.cat(features, dim=1))


def build() -> nn.Module:
    return RepairNet()


def build_dead() -> nn.Module:
    return DeadPanNet()
