# Student stub generated from the reference by `python -m grader stubs`; fill in the NotImplementedError parts.
"""Measuring per-layer gradient norms, and their spread across depth.

After one forward and backward pass on a batch, the L2 norm of each weight tensor's gradient
tells how strongly that layer is being pushed. What matters for trainability is how *uneven*
the norms are across layers: one learning rate must suit them all. We summarise that as

    spread = log10(max_l ||g_l|| / min_l ||g_l||)

A 50-layer plain conv-BN-ReLU net at PyTorch's default init has a spread near 3 (norms grow
toward the input: BatchNorm's backward explodes with depth); its residual twin stays far
flatter, about 1.2-1.7 (most of that is the classifier head's own scale). Usage:
    >>> norms = measure_gradient_norms(model, x, y)   # [("features.0.weight", 0.41), ...]
    >>> gradient_norm_spread(norms)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn


def measure_gradient_norms(model: nn.Module, x: Tensor, y: Tensor) -> list[tuple[str, float]]:
    """``[(name, ||grad||_2), ...]`` for every weight tensor with ``dim() >= 2``.

    One forward, cross-entropy against the integer labels ``y`` (N,), one backward; rows in
    ``named_parameters()`` order (biases and BatchNorm vectors are skipped: dim 1). Old
    gradients are cleared first so that a second call measures the same thing again.
    """
    raise NotImplementedError("exercise grad_norms: write measure_gradient_norms (see the docstring above)")


def gradient_norm_spread(norms: Sequence[tuple[str, float]]) -> float:
    """log10(max / min) over the norms of ``measure_gradient_norms``; 0 when all are equal.

    Example: norms 0.01 and 10 -> 3.0 (three orders of magnitude). A zero norm makes the
    spread infinite; an empty list raises ValueError.
    """
    raise NotImplementedError("exercise grad_norms: write gradient_norm_spread (see the docstring above)")
