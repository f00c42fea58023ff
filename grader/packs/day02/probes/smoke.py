"""Probes of the training smoke test: the student's ResNet18 trained by the student's
``train_one_epoch`` on a small fixed, learnable batch, starting from the grader's weights.

The reply is evidence, not a verdict (graders/test_smoke.py re-evaluates it): the run starts
from weights given *by role* (probes/roles.py: the reference gets the same ones), and returns
the trained weights by role, the losses its criterion saw, the step-0 loss and gradient norms,
and the stem BatchNorm's statistics around one forward on a second batch after training. The
grader loads the trained weights into the reference ResNet-18 and computes the loss itself.

CPU path: batch 8, 2 steps x 2 epochs (about 2 s on 2 cores). CUDA path (when the worker sees
a GPU): the lesson's setting at speed — channels_last, bf16 autocast, fused SGD,
cudnn.benchmark, larger batches; step 0 and the grader's checks use the first
``case["check"]`` images.
"""

from __future__ import annotations

import importlib
import time

import torch
import torch.nn.functional as F
from torch import nn

from grader.limits import TRAINING_PROBE_TIMEOUT_S
from grader.packs.day02.probes.figures import RecordingLoss, learnable_batch
from grader.packs.day02.probes.roles import (
    NORMS,
    assign_by_role,
    role_state,
    roles,
    strip_conv_biases,
    zero_biases,
)
from grader.probes import probe


def start_model(factory, case: dict) -> tuple[nn.Module, list]:
    """``factory(num_classes=10)`` with the grader's weights by role: (model, found roles).

    Conv biases are taken out while roles are assigned and given back as zeros (they sit in
    front of a BatchNorm, so they change nothing), as in the block and ResNet probes."""
    torch.manual_seed(case["seed"])
    model = factory(num_classes=10)
    images, _ = learnable_batch(2, case["seed"])  # (2, 3, 32, 32): enough to see the run order
    biased = strip_conv_biases(model)
    assign_by_role(model, images, seed=case["seed"])
    found = roles(model, images)  # before the biases come back: the reference's have none
    zero_biases(biased)
    return model, found


def check_batch(case: dict) -> torch.Tensor:
    """The batch of the train-mode check after training: 8 other images (N, 3, 32, 32)."""
    return learnable_batch(8, case["seed"] + 1)[0]


def step0(model: nn.Module, found: list, images: torch.Tensor,
          labels: torch.Tensor) -> dict:
    """One train-mode forward/backward from the start weights: the loss and, per role, the L2
    norm of the weight's gradient (nan when it got none). BatchNorm's running statistics are
    put back afterwards, so training starts from the grader's values."""
    saved = {role: (m.running_mean.clone(), m.running_var.clone()) for role, _, m in found
             if isinstance(m, NORMS) and m.running_mean is not None}
    model.train()
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(images).float(), labels)
    loss.backward()
    norms = [[role, float(m.weight.grad.norm()) if m.weight.grad is not None else float("nan")]
             for role, _, m in found if not isinstance(m, NORMS)]
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        for role, _, m in found:
            if role in saved:
                m.running_mean.copy_(saved[role][0])
                m.running_var.copy_(saved[role][1])
    return {"loss": float(loss.detach()), "norms": norms}


def stem_norm(found: list) -> tuple[str, nn.Module] | None:
    """(role, module) of the first BatchNorm that runs: the stem's."""
    return next(((role, m) for role, _, m in found if isinstance(m, NORMS)), None)


@probe("train", timeout=TRAINING_PROBE_TIMEOUT_S, uses=("resnet",))
def smoke_run(mod, case: dict) -> dict:
    """Train the student's ResNet18 with the student's train_one_epoch from the grader's
    weights; return the evidence graders/test_smoke.py re-evaluates."""
    if case["device"] == "cuda" and not torch.cuda.is_available():
        return {"device": "cpu", "no_gpu": True}  # the grader falls back to the CPU case
    resnet = importlib.import_module(f"{mod.__package__}.resnet")
    device = torch.device(case["device"])
    gpu = device.type == "cuda"
    model, found = start_model(resnet.ResNet18, case)
    images, labels = learnable_batch(case["batch"], case["seed"])  # (N, 3, 32, 32), (N,)
    model = model.to(device)
    images, labels = images.to(device), labels.to(device)
    if gpu:
        torch.backends.cudnn.benchmark = True
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    n = case["check"]
    first = step0(model, found, images[:n], labels[:n])

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
    # the gradients and momentum (90 MB on a ResNet-18) are not evidence: gone before the
    # reply is built, so a 768 MB container holds the trained weights only once or twice
    model.zero_grad(set_to_none=True)
    optimizer.state.clear()
    trained = role_state(found)  # (before the check below moves the statistics once more)

    # the mode train_one_epoch left: one forward, no grad, the model's mode untouched; in
    # train mode the stem BatchNorm's running statistics take one step toward this batch
    stem = stem_norm(found)
    check: dict = {}
    if stem is not None and stem[1].running_mean is not None:
        role, bn = stem
        before = [bn.running_mean.detach().float().cpu().clone(),
                  bn.running_var.detach().float().cpu().clone()]
        with torch.no_grad():
            model(check_batch(case).to(device))
        check = {"role": role, "before": before,
                 "after": [bn.running_mean.detach().float().cpu().clone(),
                           bn.running_var.detach().float().cpu().clone()]}
    return {
        "device": torch.cuda.get_device_name(device) if gpu else "cpu",
        "roles": [[role, name] for role, name, _ in found],
        "step0": first,
        "losses": criterion.history,
        "epochs": epochs,
        "trained": trained,
        "check": check,
        "images_per_s": case["batch"] * case["steps"] * case["epochs"] / max(seconds, 1e-9),
    }


@probe("resnet", timeout=TRAINING_PROBE_TIMEOUT_S)
def smoke_start(mod, case: dict) -> dict:
    """The reference's side of the smoke test, independent of any student: its roles, its
    start weights (the same by role as the student's), step 0 on the check images and the
    train-mode loss on the whole batch (what the student's first criterion call must see)."""
    model, found = start_model(mod.ResNet18, case)
    statistics = {role: [m.running_mean.clone(), m.running_var.clone()]
                  for role, _, m in found if isinstance(m, NORMS)}
    images, labels = learnable_batch(case["batch"], case["seed"])  # (N, 3, 32, 32), (N,)
    n = case["check"]
    first = step0(model, found, images[:n], labels[:n])
    with torch.no_grad():
        model.train()
        whole = F.cross_entropy(model(images).float(), labels)  # batch statistics, as step 1
    return {"roles": [role for role, _, _ in found], "step0": first,
            "loss_whole": float(whole), "statistics": statistics}
