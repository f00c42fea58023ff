# Student stub generated from the reference by `python -m grader stubs`; fill in the NotImplementedError parts.
"""The lesson's training recipe: SGD with momentum and weight decay, cosine schedule, one epoch.

    optimizer = SGD(lr=0.1, momentum=0.9, weight_decay=5e-4)
    scheduler = CosineAnnealingLR(optimizer, T_max=epochs)   # stepped once per epoch
    for epoch in range(epochs):
        train_one_epoch(...); evaluate(...); scheduler.step()

Usage:
    >>> opt = make_optimizer(model); sched = make_scheduler(opt, epochs=200)
    >>> loss, acc = train_one_epoch(model, train_loader, opt, nn.CrossEntropyLoss(), device)
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


def make_optimizer(model: nn.Module, lr: float = 0.1, momentum: float = 0.9,
                   weight_decay: float = 5e-4) -> torch.optim.SGD:
    """SGD over all of ``model``'s parameters with the given lr, momentum and weight decay."""
    raise NotImplementedError("exercise training: write make_optimizer (see the docstring above)")


def make_scheduler(optimizer: Optimizer, epochs: int = 200) -> LRScheduler:
    """Cosine annealing from the initial lr to 0 over ``epochs`` scheduler steps (T_max)."""
    raise NotImplementedError("exercise training: write make_scheduler (see the docstring above)")


def train_one_epoch(model: nn.Module, loader: Iterable, optimizer: Optimizer,
                    criterion: nn.Module, device: torch.device | str) -> tuple[float, float]:
    """One pass over ``loader`` in train mode; returns (mean batch loss, accuracy in percent).

    Per batch: move to ``device``, zero the gradients (else they accumulate across batches),
    forward, loss, backward, step. Accuracy counts argmax predictions equal to the labels.
    """
    raise NotImplementedError("exercise training: write train_one_epoch (see the docstring above)")


def evaluate(model: nn.Module, loader: Iterable, criterion: nn.Module,
             device: torch.device | str) -> tuple[float, float]:
    """Eval mode, no gradients; returns (mean batch loss, accuracy in percent) on ``loader``."""
    raise NotImplementedError("exercise training: write evaluate (see the docstring above)")
