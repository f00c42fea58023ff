"""Probes of ``resnet.py``: the student's ResNet18, PlainNet / ResidualNet and kaiming_init_.

- ResNet18: parameter counts and where the model's classes come from (``resnet18_build``),
  output and per-stage shapes (``resnet18_shapes``), and values with the weights of each
  layer's *role* (``resnet18_values``: ``roles.assign_by_role``, never attribute names), in
  float64 so that tolerances can be tight, with a fingerprint of every leaf layer's output so
  the grader can name the first layer that diverges.
- PlainNet / ResidualNet with the grader's weights by role: the layers that ran, the logits
  and per-layer gradient norms measured here, with the probe's own code (not the student's
  ``gradients.py``: this exercise depends on resnet and blocks only) (``net_profile``); and
  the output when every block's residual branch is switched off (``residual_off``).
- kaiming_init_: the tensors of a model defined here after the call, the generator seeded
  just before it (``init_stats``: the grader replays the draw), so a broken BasicBlock costs
  no init points.

Conv biases are taken out while roles are assigned and put back as zeros (as in
probes/blocks.py): in front of a BatchNorm a bias is redundant, so a stem conv that keeps
``bias=True`` is compared on its architecture (the parameter count still tells it apart).
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from grader.packs.day02.probes.roles import (
    NORMS,
    assign_by_role,
    roles,
    strip_conv_biases,
    zero_biases,
)
from grader.probes import ProbeFailure, one_thread, probe
from grader.sandbox.worker.guard import describe_exception

STAGES = ("layer1", "layer2", "layer3", "layer4")


def build(factory, case: dict, **kwargs) -> nn.Module:
    """``factory(**kwargs)`` with the global RNG seeded from the case (restored after)."""
    with torch.random.fork_rng():
        torch.manual_seed(case["seed"])
        model = factory(**kwargs)
    if not isinstance(model, nn.Module):
        raise ProbeFailure("invalid_result", f"{getattr(factory, '__name__', 'it')}(...) "
                           f"returned a {type(model).__name__}, not an nn.Module")
    return model


def images(case: dict, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The case's input batch: (N, 3, size, size) drawn from its seed."""
    g = torch.Generator().manual_seed(case["seed"] + 1)
    size = case.get("size", 32)
    return torch.randn(case["batch"], 3, size, size, generator=g, dtype=dtype)  # (N, 3, H, W)


def _shape(value) -> list[int] | str:
    if type(value) is torch.Tensor:
        return [int(d) for d in value.shape]
    return f"a {type(value).__name__}"


def _kind(module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        return "conv"
    return "linear" if isinstance(module, nn.Linear) else "bn"


# -- ResNet18 ---------------------------------------------------------------------------------
@probe("resnet")
@one_thread()
def resnet18_build(mod, case: dict) -> dict:
    """``ResNet18(num_classes)`` built, not run: parameter count, and the classes of its
    modules that come from ``torchvision.models`` (the contract forbids that package; a
    model built from it keeps its classes, whatever is swapped in afterwards)."""
    model = build(mod.ResNet18, case, num_classes=case["num_classes"])
    origins = sorted({f"{type(m).__module__}.{type(m).__qualname__}" for m in model.modules()
                      if type(m).__module__.startswith("torchvision.models")})
    return {"params": sum(int(p.numel()) for p in model.parameters()),
            "torchvision": origins[:5]}


@probe("resnet")
@one_thread()
def resnet18_shapes(mod, case: dict) -> dict:
    """Output shape, and the shape entering ``layer1`` (the stem's output) and leaving each
    of ``layer1`` ... ``layer4`` (forward hooks on the attributes the contract names)."""
    model = build(mod.ResNet18, case, num_classes=case["num_classes"]).eval()
    stages: dict = {name: "never ran" for name in ("conv1", *STAGES)}
    handles = []

    def record(key: str):
        def hook(_module, args, output=None):
            value = args[0] if output is None and args else output
            if stages[key] == "never ran":
                stages[key] = _shape(value)
        return hook

    for name in STAGES:
        stage = getattr(model, name, None)
        if not isinstance(stage, nn.Module):
            stages[name] = "missing"
            if name == "layer1":
                stages["conv1"] = "missing"
            continue
        if name == "layer1":
            handles.append(stage.register_forward_pre_hook(record("conv1")))
        handles.append(stage.register_forward_hook(record(name)))
    try:
        with torch.no_grad():
            out = model(images(case))
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001  (the stages that ran before it still count)
        return {"output": None, "error": describe_exception(exc, Path(mod.__file__).parent),
                "stages": stages}
    finally:
        for h in handles:
            h.remove()
    return {"output": _shape(out), "stages": stages}


def fingerprint(output: torch.Tensor, seed: int) -> torch.Tensor:
    """A small summary of a layer's output that still sees every position: (N, C) weighted
    sums over H x W with fixed random weights (an (N, F) output is returned whole)."""
    if output.dim() != 4:
        return output.detach().reshape(output.shape[0], -1).clone()
    h, w = output.shape[-2:]
    g = torch.Generator().manual_seed(seed * 7919 + h * 131 + w)
    weights = torch.randn(h, w, generator=g, dtype=output.dtype)  # (H, W)
    return torch.einsum("nchw,hw->nc", output.detach(), weights)  # (N, C)


def _layer_outputs(model: nn.Module, x: torch.Tensor, found: list,
                   seed: int) -> tuple[object, list[list]]:
    """Forward ``x`` without grad: (the output, [role, name, kind, output shape, fingerprint]
    of each role's first output, in run order)."""
    by_module = {id(module): (role, name) for role, name, module in found}
    seen: dict[str, list] = {}

    def hook(module, _args, output) -> None:
        role, name = by_module[id(module)]
        if role not in seen:
            seen[role] = [role, name, _kind(module), _shape(output),
                          fingerprint(output, seed) if type(output) is torch.Tensor else None]

    handles = [module.register_forward_hook(hook) for _, _, module in found]
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    return out, [seen[role] for role, _, _ in found if role in seen]


@probe("resnet", timeout=60)
@one_thread()
def resnet18_values(mod, case: dict) -> dict:
    """ResNet18 in float64 with the weights of its roles: per-layer fingerprints and output in
    eval mode, then output and input gradient in train mode."""
    model = build(mod.ResNet18, case, num_classes=case["num_classes"])
    x = images(case, torch.float64)  # (N, 3, 32, 32)
    biased = strip_conv_biases(model)
    model.double()
    assigned = assign_by_role(model, x.clone(), seed=case["seed"])
    zero_biases(biased)
    modules = dict(model.named_modules())
    found = [(role, name, modules[name]) for role, name in assigned.items()]
    model.eval()
    eval_out, layers = _layer_outputs(model, x.clone(), found, case["seed"])
    model.train()  # batch statistics; the running ones this pass moves are not used again
    _, train_layers = _layer_outputs(model, x.clone(), found, case["seed"])
    for p in model.parameters():
        p.requires_grad_(False)  # only the input gradient is compared
    leaf = x.clone().requires_grad_(True)
    train_out = model(leaf)
    result = {"layers": layers, "train_layers": train_layers, "eval": eval_out,
              "train": train_out}
    if type(train_out) is not torch.Tensor:
        return result
    if not train_out.requires_grad:
        result["grad_input"] = "the output does not require grad (the autograd graph is broken)"
        return result
    g = torch.Generator().manual_seed(case["seed"] + 2)
    train_out.backward(torch.randn(train_out.shape, generator=g, dtype=train_out.dtype))
    result["grad_input"] = leaf.grad if leaf.grad is not None else "no gradient"
    return result


# -- PlainNet and ResidualNet -----------------------------------------------------------------
def net_input(case: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) of a plain/residual case: (N, 3, size, size) and labels (N,)."""
    g = torch.Generator().manual_seed(case["seed"] + 1)
    x = torch.randn(case["batch"], 3, case["size"], case["size"], generator=g)
    y = torch.randint(0, case["num_classes"], (case["batch"],), generator=g)
    return x, y


def _describe_layers(model: nn.Module, x: torch.Tensor) -> list[list]:
    """[kind, name, in, out] of each conv, linear and BatchNorm that ran, in run order."""
    rows = []
    for _, name, module in roles(model, x):
        if isinstance(module, nn.Conv2d):
            rows.append(["conv", name, int(module.in_channels), int(module.out_channels)])
        elif isinstance(module, nn.Linear):
            rows.append(["linear", name, int(module.in_features), int(module.out_features)])
        else:
            rows.append(["bn", name, int(module.num_features), int(module.num_features)])
    return rows


def weighted_net(mod, case: dict) -> tuple[nn.Module, torch.Tensor, torch.Tensor, list]:
    """``case["net"](num_classes, depth)`` with the grader's weights by role (conv biases out
    while roles are assigned, back as zeros): (model, x, y, found roles). float32: a 50-layer
    net's backward in float64 takes 436 MiB against 81, which a 768 MB container cannot
    spare, and the same weights in the same layers agree to float32 rounding."""
    model = build(getattr(mod, case["net"]), case, num_classes=case["num_classes"],
                  depth=case["depth"])
    x, y = net_input(case)  # (N, 3, size, size)
    biased = strip_conv_biases(model)
    assign_by_role(model, x, seed=case["seed"])
    found = roles(model, x)  # before the biases come back: the reference's roles have none
    zero_biases(biased)
    return model, x, y, found


@probe("resnet", timeout=60)
@one_thread()
def net_profile(mod, case: dict) -> dict:
    """``case["net"](num_classes, depth)`` with the grader's weights by role, in train mode:
    the layers that ran, the logits, and per role the L2 norm of the weight's gradient after
    one cross-entropy backward on the case's batch (the probe's own code, not the student's
    ``gradients.py``: this exercise depends on resnet and blocks only)."""
    model, x, y, found = weighted_net(mod, case)
    layers = _describe_layers(model, x)
    model.train()
    model.zero_grad(set_to_none=True)
    out = model(x)
    result: dict = {"layers": layers, "roles": [role for role, _, _ in found],
                    "output": _shape(out)}
    if type(out) is not torch.Tensor or list(out.shape) != [case["batch"], case["num_classes"]]:
        return result
    result["logits"] = out.detach()
    F.cross_entropy(out, y).backward()
    result["norms"] = [[role, name, float(m.weight.grad.norm()) if m.weight.grad is not None
                        else 0.0] for role, name, m in found if not isinstance(m, NORMS)]
    return result


def residual_branch_ends(found: list) -> list[tuple[str, str, nn.Module]]:
    """The BatchNorms that end the residual branches of a ResidualNet's blocks: after the stem,
    the 3x3 C -> C convs come in pairs (one block each); the norm after the second conv of each
    pair ends its branch. Found by role (any width), whatever the names."""
    ends = []
    for role, name, module in found:
        match = re.fullmatch(r"bn<conv\[(\d+)x(\d+)x3x3(?:\+b)?\]#(\d+)>", role)
        if isinstance(module, NORMS) and match and match[1] == match[2] \
                and int(match[3]) % 2 == 1:
            ends.append((role, name, module))
    return ends


@probe("resnet")
@one_thread()
def residual_off(mod, case: dict) -> dict:
    """A ResidualNet with the grader's weights by role and every residual branch's
    last BatchNorm set to weight 0, bias 0, run in eval mode: the names of those norms and the
    output (identity skips keep the stem's features flowing to the head; without skips every
    sample gets the same logits)."""
    model, x, _, found = weighted_net(mod, {**case, "net": "ResidualNet"})
    ends = residual_branch_ends(found)
    with torch.no_grad():
        for _, _, module in ends:
            if module.weight is not None:
                module.weight.zero_()
                module.bias.zero_()
        out = model.eval()(x)
    return {"zeroed": [name for _, name, _ in ends],
            "output": out.detach() if type(out) is torch.Tensor else _shape(out)}


# -- kaiming_init_ ----------------------------------------------------------------------------
class InitModel(nn.Module):
    """The grader's model for kaiming_init_: convs with in != out (fan_in and fan_out differ
    by a factor of 3 or more), one with a bias; BatchNorms; a Linear head; nested modules."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(OrderedDict(
            wide=nn.Conv2d(16, 96, 5, padding=2, bias=True),  # fan_in 400, fan_out 2400
            bn_wide=nn.BatchNorm2d(96), relu=nn.ReLU()))
        self.narrow = nn.Sequential(nn.Conv2d(96, 32, 3, padding=1, bias=False),  # 864 / 288
                                    nn.BatchNorm2d(32), nn.ReLU())
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.narrow(self.features(x))  # (N, 32, H, W)
        return self.head(x.mean(dim=(2, 3)))


def init_model(case: dict) -> nn.Module:
    """The grader's model for kaiming_init_, built from the case's seed, its BatchNorms and
    conv biases first given values no initialiser would leave (weights in [2, 3], biases in
    [0.5, 1.5])."""
    with torch.random.fork_rng():
        torch.manual_seed(case["seed"])
        model = InitModel()
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, (nn.BatchNorm2d, nn.Conv2d)) and m.bias is not None:
                    m.bias.uniform_(0.5, 1.5)
                if isinstance(m, nn.BatchNorm2d):
                    m.weight.uniform_(2.0, 3.0)
    return model


@probe("resnet")
@one_thread()
def init_stats(mod, case: dict) -> dict:
    """kaiming_init_ on the grader's model, the global generator seeded with ``seed + 1`` just
    before the call: what it returned, and every conv, BatchNorm and Linear tensor after it
    (the grader computes the statistics, and replays the generator, itself)."""
    model = init_model(case)
    with torch.random.fork_rng():
        torch.manual_seed(case["seed"] + 1)
        returned = mod.kaiming_init_(model)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    return {
        "returned": "the model" if returned is model else f"a {type(returned).__name__}",
        "conv_weights": [m.weight.detach().clone() for m in convs],
        "conv_bias": next(m.bias.detach().clone() for m in convs if m.bias is not None),
        "bn_weight": torch.cat([m.weight.detach() for m in norms]),
        "bn_bias": torch.cat([m.bias.detach() for m in norms]),
        "head": [model.head.weight.detach().clone(), model.head.bias.detach().clone()],
    }


def kaiming_std(shape: list[int], mode: str) -> float:
    """std of Kaiming-normal with the ReLU gain: sqrt(2 / fan) for a conv weight shape."""
    out_c, in_c, kh, kw = shape
    return math.sqrt(2.0 / ((out_c if mode == "fan_out" else in_c) * kh * kw))

