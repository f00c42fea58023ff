"""Probes behind ``python -m grader figures``: the numbers the pictures are drawn from.

Measured on the submission's own models with the submission's own ``measure_gradient_norms``
(this file ships with the student release, so it must not hold the answer to ``grad_norms``);
what crosses back is plain data (names and floats), so the grader draws the pictures without
touching student objects. The smoke test (probes/smoke.py) trains on the same fixed batch.
"""

from __future__ import annotations

import importlib

import torch
import torch.nn.functional as F
from torch import nn

from grader.limits import TRAINING_PROBE_TIMEOUT_S
from grader.probes import probe

MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)


def learnable_batch(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n CIFAR-shaped images whose class is a colour/texture template plus noise."""
    g = torch.Generator().manual_seed(seed)
    templates = torch.rand(10, 3, 32, 32, generator=g)  # (10, 3, 32, 32)
    labels = torch.arange(n) % 10  # every class present
    images = (templates[labels] + 0.15 * torch.randn(n, 3, 32, 32, generator=g)).clamp(0, 1)
    return (images - MEAN) / STD, labels  # (n, 3, 32, 32), (n,)


class RecordingLoss(nn.Module):
    """Cross-entropy that remembers every value it returns (the smoke run's loss curve)."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[float] = []

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(logits.float(), labels)
        self.history.append(float(loss.detach()))
        return loss



@probe("resnet", timeout=120, uses=("gradients",))
def gradient_profiles(mod, case: dict) -> dict:
    """Per-layer gradient norms at initialisation of PlainNet(depth) and ResidualNet(depth)."""
    gradients = importlib.import_module(f"{mod.__package__}.gradients")
    g = torch.Generator().manual_seed(case["seed"])
    x = torch.randn(case["batch"], 3, case["size"], case["size"], generator=g)  # (N, 3, H, W)
    y = torch.randint(0, 10, (case["batch"],), generator=g)  # (N,)
    out = {}
    for key, cls in (("plain", mod.PlainNet), ("residual", mod.ResidualNet)):
        torch.manual_seed(case["seed"])
        model = cls(num_classes=10, depth=case["depth"]).train()
        measured = gradients.measure_gradient_norms(model, x, y)
        out[key] = [[str(name), float(norm)] for name, norm in measured]
    return out


@probe("train", timeout=TRAINING_PROBE_TIMEOUT_S, uses=("resnet",))
def short_training(mod, case: dict) -> dict:
    """The submission's ResNet18 trained by its train_one_epoch on a fixed learnable batch."""
    resnet = importlib.import_module(f"{mod.__package__}.resnet")
    torch.manual_seed(case["seed"])
    net = resnet.ResNet18(num_classes=10)
    batch = learnable_batch(case["batch"], case["seed"])  # (N, 3, 32, 32), (N,)
    recorder = RecordingLoss()
    sgd = torch.optim.SGD(net.parameters(), lr=case["lr"], momentum=0.9, weight_decay=5e-4)
    for _ in range(case["epochs"]):
        mod.train_one_epoch(net, [batch] * case["steps"], sgd, recorder, "cpu")
    first_conv = next(p for p in net.parameters() if p.dim() == 4)  # (C_out, 3, k, k)
    return {"losses": recorder.history, "conv1_weight": first_conv.detach().float()}
