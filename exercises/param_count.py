# Student stub generated from the reference by `python -m grader stubs`; fill in the NotImplementedError parts.
"""Counting parameters, in closed form and on a model.

    conv   k x k, C_in -> C_out:  C_in * C_out * k * k  (+ C_out with a bias)
    BatchNorm2d(C):               2C  (gamma and beta; running mean/var are buffers, not
                                       parameters: they are not trained by the optimizer)
    Linear F_in -> F_out:         F_in * F_out  (+ F_out with a bias)

The CIFAR ResNet-18, row by row (convs have no bias: the BatchNorm after them has its own):

    component                    shape            parameters
    conv1 + bn1                  3->64, 3x3       1,728 + 128
    layer1 (2 blocks)            64->64, 3x3 x4   4 x 36,864 + 4 x 128        =   147,968
    layer2 block0                64->128          73,728 + 147,456 + 8,192 (1x1 shortcut)
                                                  + 3 x 256 (three BNs)       =   230,144
    layer2 block1                128->128 x2      2 x 147,456 + 2 x 256       =   295,424
    layer3 (block0 + block1)     128->256         919,040 + 1,180,672         = 2,099,712
    layer4 (block0 + block1)     256->512         3,673,088 + 4,720,640       = 8,393,728
    fc                           512->10          5,120 + 10                  =     5,130
    total                                                                      11,173,962
"""

from __future__ import annotations

from torch import nn

KernelSize = int | tuple[int, int]


def conv2d_params(in_channels: int, out_channels: int, kernel_size: KernelSize,
                  bias: bool = True) -> int:
    """in * out * kh * kw (+ out for the bias). Example: 3->64, 3x3, no bias -> 1,728."""
    raise NotImplementedError("exercise param_count: write conv2d_params (see the docstring above)")


def batchnorm2d_params(num_features: int) -> int:
    """2 * C: a scale and a shift per channel (running statistics are buffers)."""
    raise NotImplementedError("exercise param_count: write batchnorm2d_params (see the docstring above)")


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """in * out (+ out for the bias). Example: 512 -> 10 with bias -> 5,130."""
    raise NotImplementedError("exercise param_count: write linear_params (see the docstring above)")


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Total number of scalars in ``model.parameters()`` (only ``requires_grad`` ones if asked).

    Buffers such as BatchNorm's running mean and variance are not parameters.
    """
    raise NotImplementedError("exercise param_count: write count_parameters (see the docstring above)")


def parameter_table(model: nn.Module) -> list[tuple[str, tuple[int, ...], int]]:
    """One row ``(name, shape, count)`` per parameter, in ``named_parameters()`` order.

    Example row for ResNet-18: ("conv1.weight", (64, 3, 3, 3), 1728).
    """
    raise NotImplementedError("exercise param_count: write parameter_table (see the docstring above)")


def resnet18_param_count(num_classes: int = 10) -> int:
    """Parameters of the CIFAR ResNet-18 in closed form (no model built): 11,173,962 for 10.

    stem conv + BN, then per stage two BasicBlocks (two 3x3 convs + two BNs each) and a
    1x1 conv + BN projection where the width changes, then the fc layer.
    """
    raise NotImplementedError("exercise param_count: write resnet18_param_count (see the docstring above)")
