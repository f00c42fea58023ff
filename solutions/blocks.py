"""The residual BasicBlock (ResNet-18/34): y = relu(F(x) + shortcut(x)).

    x ──► conv3x3(stride) ─► BN ─► ReLU ─► conv3x3 ─► BN ──► (+) ─► ReLU ─► y
    └──────────── identity, or 1x1 conv(stride) + BN ──────────┘

The gradient through a block is dF/dx + I: even when the residual branch contributes
nothing, the identity carries the gradient back unchanged (the "gradient highway").

Usage:
    >>> block = BasicBlock(64, 128, stride=2)
    >>> block(torch.randn(8, 64, 32, 32)).shape
    torch.Size([8, 128, 16, 16])
"""

from __future__ import annotations

import torch  # noqa: F401  (used in the usage example above)
import torch.nn.functional as F
from torch import Tensor, nn


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a shortcut; ``expansion = 1`` (output width = out_channels).

    in: (N, in_channels, H, W) -> out: (N, out_channels, H/stride, W/stride).
    The shortcut is the identity when shapes already match (stride 1, same width) and a
    1x1 conv with the block's stride followed by BatchNorm otherwise (the "projection").
    Convs carry no bias: each is followed by a BatchNorm whose shift does that job.
    """

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()  # identity: an empty Sequential returns its input
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        ### END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); the add comes before the ReLU."""
        ### BEGIN SOLUTION
        out = F.relu(self.bn1(self.conv1(x)))  # (N, C_out, H/s, W/s)
        out = self.bn2(self.conv2(out))  # (N, C_out, H/s, W/s)
        out = out + self.shortcut(x)  # THE residual connection
        return F.relu(out)
        ### END SOLUTION
