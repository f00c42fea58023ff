"""Probe of the training smoke test: the student's ResNet18 trained by the student's
``train_one_epoch`` on a small fixed, learnable batch, with gradient-norm checks.

CPU path: batch 16, a few steps (seconds). CUDA path (when the worker sees a GPU): the
lesson's setting at speed — channels_last, bf16 autocast, fused SGD, cudnn.benchmark, larger
batches. Everything is measured here with the probe's own code (not the student's
``gradients.py``: smoke_test depends on resnet, blocks and train only).
"""

from __future__ import annotations

import importlib
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from grader.limits import TRAINING_PROBE_TIMEOUT_S
from grader.packs.day02.probes.figures import RecordingLoss, learnable_batch
from grader.probes import probe


def conv_grad_norms(model: nn.Module) -> list[float]:
    """L2 norm of every 4-d weight's gradient, in named_parameters order (nan if missing)."""
    return [float(p.grad.norm()) if p.grad is not None else math.nan
            for _, p in model.named_parameters() if p.dim() == 4]


def bn_state(model: nn.Module) -> torch.Tensor:
    stats = [m.running_mean.detach().flatten().cpu() for m in model.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None]
    return torch.cat(stats) if stats else torch.zeros(0)


@probe("train", timeout=TRAINING_PROBE_TIMEOUT_S, uses=("resnet",))
def smoke_run(mod, case: dict) -> dict:
    """Train the student's ResNet18 with the student's train_one_epoch; report measurements."""
    if case["device"] == "cuda" and not torch.cuda.is_available():
        return {"device": "cpu", "no_gpu": True}  # the grader falls back to the CPU case
    resnet = importlib.import_module(f"{mod.__package__}.resnet")
    device = torch.device(case["device"])
    gpu = device.type == "cuda"
    torch.manual_seed(case["seed"])
    model = resnet.ResNet18(num_classes=10).to(device)
    images, labels = learnable_batch(case["batch"], case["seed"])
    images, labels = images.to(device), labels.to(device)
    if gpu:
        torch.backends.cudnn.benchmark = True
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)

    # step 0: one forward/backward on the fixed batch, gradient norms per conv
    model.train()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(images).float(), labels).backward()
    norms0 = conv_grad_norms(model)
    model.zero_grad(set_to_none=True)

    bn_before = bn_state(model)
    opt_args = {"lr": case["lr"], "momentum": 0.9, "weight_decay": 5e-4}
    optimizer = torch.optim.SGD(model.parameters(), **opt_args, **({"fused": True} if gpu else {}))
    criterion = RecordingLoss()
    loader = [(images, labels)] * case["steps"]  # the same batch: overfitting must work
    epochs = []
    started = time.perf_counter()
    for _ in range(case["epochs"]):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=gpu):
            returned = mod.train_one_epoch(model, loader, optimizer, criterion, device)
        epochs.append([float(v) for v in returned] if isinstance(returned, tuple) else [])
    if gpu:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    finite = all(torch.isfinite(p).all() for p in model.parameters())
    bn_after = bn_state(model)
    moved = len(bn_before) > 0 and bool((bn_after - bn_before).abs().max() > 0)
    return {
        "device": torch.cuda.get_device_name(device) if gpu else "cpu",
        "grad_norms": norms0,
        "losses": criterion.history,
        "epochs": epochs,
        "params_finite": bool(finite),
        "bn_moved": moved,
        "training_after": bool(model.training),
        "images_per_s": case["batch"] * case["steps"] * case["epochs"] / max(seconds, 1e-9),
        "conv1_weight": next(p for p in model.parameters() if p.dim() == 4).detach().float().cpu(),
    }
