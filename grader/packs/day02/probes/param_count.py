"""Probes of ``param_count.py``: closed forms, and counts on models the grader builds.

The models are plain ``torch.nn`` stacks built here from a spec (shapes only), never the
student's ResNet, so a broken ``BasicBlock`` cannot cost points in this exercise.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from grader.probes import probe


def build_layer(spec: dict) -> nn.Module:
    """One layer from its spec: conv, bn, linear or relu (weights are irrelevant here)."""
    kind = spec["kind"]
    if kind == "conv":
        layer = nn.Conv2d(spec["in"], spec["out"], spec["k"], bias=spec["bias"])
    elif kind == "bn":
        layer = nn.BatchNorm2d(spec["c"])  # 2C parameters and 2C + 1 buffers
    elif kind == "linear":
        layer = nn.Linear(spec["in"], spec["out"], bias=spec["bias"])
    else:
        layer = nn.ReLU()
    if spec.get("frozen"):
        layer.requires_grad_(False)
    return layer


def build_model(spec: dict) -> nn.Module:
    """Named groups of layers (``features.0.weight``, ``head.1.bias``...), nested one deep."""
    groups = OrderedDict((name, nn.Sequential(*[build_layer(s) for s in layers]))
                         for name, layers in spec["groups"])
    return nn.Sequential(groups)


@probe("param_count")
def closed_form(mod, case: dict):
    """``conv2d_params`` / ``batchnorm2d_params`` / ``linear_params`` on ``case["args"]``;
    ``case["bias"]`` is passed by keyword, or left to the default when None."""
    fn = getattr(mod, case["fn"])
    kwargs = {} if case.get("bias") is None else {"bias": case["bias"]}
    return fn(*case["args"], **kwargs)


@probe("param_count")
def count(mod, case: dict):
    """``count_parameters`` on a grader-built model; ``trainable_only`` None means the default."""
    model = build_model(case["spec"])
    if case["trainable_only"] is None:
        return mod.count_parameters(model)
    return mod.count_parameters(model, trainable_only=case["trainable_only"])


def _shape(shape):
    """A tuple, torch.Size or list of ints becomes a tuple of ints (all three are benign)."""
    if isinstance(shape, (tuple, list, torch.Size)) and all(type(v) is int for v in shape):
        return tuple(shape)
    return f"{shape!r} (a {type(shape).__name__})"[:80]


def _row(row):
    """A (name, shape, count) row as plain data; anything malformed is described instead."""
    if not isinstance(row, (tuple, list)) or len(row) != 3:
        return f"{row!r}"[:80]
    name, shape, n = row
    return (name if type(name) is str else f"{name!r}"[:80], _shape(shape),
            n if type(n) is int else f"{n!r} (a {type(n).__name__})"[:80])


@probe("param_count")
def table(mod, case: dict):
    """``parameter_table`` on a grader-built model, rows as (str, tuple of ints, int)."""
    rows = mod.parameter_table(build_model(case["spec"]))
    if not isinstance(rows, (list, tuple)):
        return f"a {type(rows).__name__}"
    return [_row(row) for row in rows]


@probe("param_count")
def resnet18_count(mod, case: dict):
    """``resnet18_param_count`` with ``num_classes`` (None: the default)."""
    if case["num_classes"] is None:
        return mod.resnet18_param_count()
    return mod.resnet18_param_count(num_classes=case["num_classes"])
