"""Probes of ``gradients.py``: gradient norms of a small CNN the grader builds, and spreads.

The model is defined here (never the student's ResNet) and built fresh from the case's seed
on every call, so each call measures the first backward of a fresh model: whether a student
clears old gradients first (the reference does, the lesson's code does not) cannot matter.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from grader.probes import probe


def tiny_cnn(case: dict) -> nn.Module:
    """conv-BN-ReLU blocks (the first without conv bias), global pool, a linear head.

    Parameter names are nested (``features.block0.conv.weight``, ``head.weight``); every
    tensor with ``dim() >= 2`` is a weight, so the lesson's ``'weight' in name`` filter and
    the contract's ``dim() >= 2`` filter select the same rows.
    """
    width, classes = case["width"], case["classes"]
    blocks, channels = [], 3
    for i in range(case["depth"]):
        block = nn.Sequential(OrderedDict(
            conv=nn.Conv2d(channels, width, 3, stride=1 + (i % 2), padding=1,
                           bias=case["conv_bias"] and i > 0),
            bn=nn.BatchNorm2d(width), relu=nn.ReLU()))
        blocks.append((f"block{i}", block))
        channels = width
    return nn.Sequential(OrderedDict(
        features=nn.Sequential(OrderedDict(blocks)),
        pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
        head=nn.Linear(width, classes)))


def model_and_batch(case: dict) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The model (train mode, as in the lesson) and a batch, all from the case's seed."""
    with torch.random.fork_rng():  # deterministic init without touching the caller's RNG
        torch.manual_seed(case["seed"])
        model = tiny_cnn(case)
    g = torch.Generator().manual_seed(case["seed"] + 1)
    x = torch.randn(case["batch"], 3, case["size"], case["size"], generator=g)  # (N, 3, H, W)
    y = torch.randint(0, case["classes"], (case["batch"],), generator=g)  # (N,)
    return model, x, y


def _number(value):
    """(value as a float or None, the name of its type): a 0-d tensor still gets its value
    graded, and the type is reported separately (the contract asks for Python floats)."""
    kind = "float" if isinstance(value, float) else type(value).__name__  # numpy's float64 too
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), kind
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach().reshape(())), kind
    return None, kind


@probe("gradients")
def gradient_norms(mod, case: dict) -> dict:
    """``measure_gradient_norms`` on a fresh grader model: names, values and value types."""
    model, x, y = model_and_batch(case)
    rows = mod.measure_gradient_norms(model, x, y)
    if not isinstance(rows, (list, tuple)):
        return {"error": f"returned a {type(rows).__name__}, not a list of (name, norm) rows"}
    names, values, kinds = [], [], []
    for row in rows:
        if not isinstance(row, (list, tuple)) or len(row) != 2:
            return {"error": f"a row is {row!r}"[:120] + ", not a (name, norm) pair"}
        name, value = row
        number, kind = _number(value)
        names.append(name if type(name) is str else repr(name)[:80])
        values.append(number)
        kinds.append(kind)
    return {"names": names, "values": values, "types": kinds}


@probe("gradients")
def spread(mod, case: dict) -> dict:
    """``gradient_norm_spread`` on ``case["norms"]`` (a list of (name, float)): value, type."""
    value, kind = _number(mod.gradient_norm_spread(list(case["norms"])))
    return {"value": value, "type": kind}
