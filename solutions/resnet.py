"""ResNet-18 for CIFAR-10, a plain deep net, its residual twin, and Kaiming initialisation.

CIFAR images are 32x32, so the stem is a 3x3 stride-1 conv with no max-pool (the ImageNet
ResNet's 7x7 stride-2 conv + max-pool would shrink 32x32 to 8x8 before layer1).

    stage    blocks  width  stride  output (N, C, H, W) for N x 3 x 32 x 32
    conv1    -        64     1      (N,  64, 32, 32)
    layer1   2        64     1      (N,  64, 32, 32)
    layer2   2       128     2      (N, 128, 16, 16)
    layer3   2       256     2      (N, 256,  8,  8)
    layer4   2       512     2      (N, 512,  4,  4)
    pool+fc  -        10     -      (N, 10)          11,173,962 parameters in all

Plain vs residual, honestly. The usual story is "gradients vanish in deep plain nets". With
BatchNorm at PyTorch's default init that is not what you measure: in a 50-layer plain
conv-BN-ReLU stack the per-layer gradient norms *grow* toward the input (first/last conv
about 10^3 apart), because BN at initialisation makes the backward pass explode with depth
(Yang et al. 2019, "A Mean Field Theory of Batch Normalization"); without BN they vanish
instead. Either way the spread log10(max/min) across layers is huge, and the optimiser cannot
use one learning rate for all layers: that is the degradation He et al. (2015) observed. The
residual twin keeps the spread within about one order of magnitude, because each block adds
to an identity path (dy/dx = I + dF/dx), and behaves like an ensemble of shallower paths
(Veit et al. 2016).

Usage:
    >>> model = ResNet18()
    >>> model(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .blocks import BasicBlock


class ResNet18(nn.Module):
    """CIFAR ResNet-18: 3x3 stem, four stages of two BasicBlocks (strides 1, 2, 2, 2), fc.

    Attributes: conv1, bn1, layer1..layer4 (each an nn.Sequential of two BasicBlocks), fc.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(64, 64, num_blocks=2, stride=1)
        self.layer2 = self._make_layer(64, 128, num_blocks=2, stride=2)
        self.layer3 = self._make_layer(128, 256, num_blocks=2, stride=2)
        self.layer4 = self._make_layer(256, 512, num_blocks=2, stride=2)
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * BasicBlock.expansion, num_classes)
        ### END SOLUTION

    @staticmethod
    def _make_layer(in_ch: int, out_ch: int, num_blocks: int, stride: int) -> nn.Sequential:
        """One stage: the first block may downsample (stride) and widen; the rest keep shape."""
        ### BEGIN SOLUTION
        blocks = [BasicBlock(in_ch, out_ch, stride)]
        blocks += [BasicBlock(out_ch, out_ch, stride=1) for _ in range(1, num_blocks)]
        return nn.Sequential(*blocks)
        ### END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, 32, 32) -> logits (N, num_classes)."""
        ### BEGIN SOLUTION
        x = torch.relu(self.bn1(self.conv1(x)))  # (N, 64, 32, 32)
        x = self.layer1(x)  # (N, 64, 32, 32)
        x = self.layer2(x)  # (N, 128, 16, 16)
        x = self.layer3(x)  # (N, 256, 8, 8)
        x = self.layer4(x)  # (N, 512, 4, 4)
        x = self.avg_pool(x).flatten(1)  # (N, 512)
        return self.fc(x)  # (N, num_classes)
        ### END SOLUTION


class PlainNet(nn.Module):
    """The lesson's plain stack: ``depth - 1`` conv3x3-BN-ReLU layers at width 64, pool, fc.

    ``depth`` counts weight layers: a stem conv (3 -> 64), ``depth - 2`` convs 64 -> 64, and
    the fc layer. Convs keep their default bias, as in the lesson. No shortcut anywhere.
    """

    def __init__(self, num_classes: int = 10, depth: int = 18) -> None:
        super().__init__()
        ### BEGIN SOLUTION
        if depth < 2:
            raise ValueError(f"depth counts the stem conv and the fc layer: >= 2, got {depth}")
        layers: list[nn.Module] = [nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
        ### END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) -> logits (N, num_classes)."""
        ### BEGIN SOLUTION
        x = self.features(x)  # (N, 64, H, W)
        x = self.pool(x).flatten(1)  # (N, 64)
        return self.fc(x)
        ### END SOLUTION


class ResidualNet(nn.Module):
    """PlainNet's residual twin: the same stem, ``(depth - 2) // 2`` BasicBlock(64, 64), pool, fc.

    Same depth in weight layers and the same width as ``PlainNet(depth)``; the only change is
    that every two convs are wrapped in an identity shortcut. ``depth`` must be even, >= 4.
    """

    def __init__(self, num_classes: int = 10, depth: int = 18) -> None:
        super().__init__()
        ### BEGIN SOLUTION
        if depth < 4 or depth % 2:
            raise ValueError(f"ResidualNet depth must be even and >= 4, got {depth}")
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU())
        self.blocks = nn.Sequential(*[BasicBlock(64, 64) for _ in range((depth - 2) // 2)])
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
        ### END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) -> logits (N, num_classes)."""
        ### BEGIN SOLUTION
        x = self.blocks(self.stem(x))  # (N, 64, H, W)
        x = self.pool(x).flatten(1)  # (N, 64)
        return self.fc(x)
        ### END SOLUTION


def kaiming_init_(model: nn.Module) -> nn.Module:
    """Initialise in place and return ``model``:

    convs: Kaiming-normal, mode="fan_out", nonlinearity="relu" (std = sqrt(2 / (C_out k k))),
    drawn from torch's global generator as torch.nn.init does (the grader seeds it and replays
    the draw); conv biases (if any) 0; BatchNorm: weight 1, bias 0. Linear layers keep their
    default.
    """
    ### BEGIN SOLUTION
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model
    ### END SOLUTION
