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
    ### BEGIN SOLUTION
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                           weight_decay=weight_decay)
    ### END SOLUTION


def make_scheduler(optimizer: Optimizer, epochs: int = 200) -> LRScheduler:
    """Cosine annealing from the initial lr to 0 over ``epochs`` scheduler steps (T_max)."""
    ### BEGIN SOLUTION
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    ### END SOLUTION


def train_one_epoch(model: nn.Module, loader: Iterable, optimizer: Optimizer,
                    criterion: nn.Module, device: torch.device | str) -> tuple[float, float]:
    """One pass over ``loader`` in train mode; returns (mean batch loss, accuracy in percent).

    Per batch: move to ``device``, zero the gradients (else they accumulate across batches),
    forward, loss, backward, step. Accuracy counts argmax predictions equal to the labels.
    """
    ### BEGIN SOLUTION
    model.train()  # BatchNorm uses batch statistics and updates its running averages
    total_loss, correct, seen, batches = 0.0, 0, 0, 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)  # (N, 3, H, W), (N,)
        optimizer.zero_grad()
        outputs = model(images)  # (N, classes)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        total_loss += loss.item()
        correct += (outputs.argmax(dim=1) == labels).sum().item()
        seen += labels.size(0)
        batches += 1
    return total_loss / max(batches, 1), 100.0 * correct / max(seen, 1)
    ### END SOLUTION


def evaluate(model: nn.Module, loader: Iterable, criterion: nn.Module,
             device: torch.device | str) -> tuple[float, float]:
    """Eval mode, no gradients; returns (mean batch loss, accuracy in percent) on ``loader``."""
    ### BEGIN SOLUTION
    model.eval()  # BatchNorm uses its running statistics; nothing is updated
    total_loss, correct, seen, batches = 0.0, 0, 0, 0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            outputs = model(images)
            total_loss += criterion(outputs, labels).item()
            correct += (outputs.argmax(dim=1) == labels).sum().item()
            seen += labels.size(0)
            batches += 1
    return total_loss / max(batches, 1), 100.0 * correct / max(seen, 1)
    ### END SOLUTION
