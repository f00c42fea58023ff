"""Probes of ``blocks.py``: the student's ``BasicBlock`` run with the weights of its roles.

``run_block`` builds a fresh block from the case (channels, stride) under a seeded RNG, counts
its parameters, moves it to float64 (tight tolerances, no thread-count noise), gives every
conv and BatchNorm the weights and buffers of its *role* (``roles.assign_by_role``: run order
plus the preceding conv, never the attribute name) and runs it on an input drawn from the
case's seed. Only plain data comes back: tensors, role names, counts, flags.

A conv bias is taken out while roles are assigned and put back as zeros. In front of a
BatchNorm it is redundant (train mode subtracts the batch mean; in eval mode the running mean
absorbs it), so a block whose convs keep ``bias=True`` is compared on its architecture and
differs only in its parameter count.

    got = student.run(run_block, {"in": 4, "out": 8, "stride": 2, "batch": 2, "h": 5,
                                  "w": 6, "seed": 0, "mode": "train", "backward": True})
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from grader.packs.day02.probes.roles import NORMS, assign_by_role, strip_conv_biases, zero_biases
from grader.probes import ProbeFailure, one_thread, probe


def block_input(case: dict) -> torch.Tensor:
    """The input batch of a case, float64: (N, C_in, H, W)."""
    g = torch.Generator().manual_seed(case["seed"])
    shape = (case["batch"], case["in"], case["h"], case["w"])
    return torch.randn(shape, generator=g, dtype=torch.float64)  # (N, C_in, H, W)


def upstream(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """The gradient fed back into the block's output, float64, from the case's seed."""
    g = torch.Generator().manual_seed(seed + 1)
    return torch.randn(shape, generator=g, dtype=torch.float64)  # (N, C_out, H', W')


def call(case: dict) -> str:
    return f"BasicBlock({case['in']}, {case['out']}, stride={case['stride']})"


def build(mod, case: dict) -> nn.Module:
    """The student's block, built with the global RNG seeded (layers that never run keep their
    initial values, so those must not depend on what ran before in this process)."""
    with torch.random.fork_rng():
        torch.manual_seed(case["seed"])
        block = mod.BasicBlock(case["in"], case["out"], stride=case["stride"])
    if not isinstance(block, nn.Module):
        raise ProbeFailure("invalid_result", f"{call(case)} is a {type(block).__name__}, "
                           "not an nn.Module")
    return block


def _layers(block: nn.Module, assigned: dict[str, str]) -> list[list]:
    """[role, name, kind, kernel] of each layer that ran, in run order."""
    modules = dict(block.named_modules())
    rows = []
    for role, name in assigned.items():
        module = modules.get(name)
        if isinstance(module, nn.Conv2d):
            rows.append([role, name, "conv", [int(k) for k in module.kernel_size]])
        else:
            rows.append([role, name, "bn" if isinstance(module, NORMS) else "linear", []])
    return rows


def residual_bn_role(layers: list[list]) -> str | None:
    """The role of the BatchNorm after the last 3x3 conv that ran: the end of the residual
    branch (None when no such BatchNorm ran)."""
    convs = [role for role, _, kind, kernel in layers if kind == "conv" and kernel == [3, 3]]
    if not convs:
        return None
    role = f"bn<{convs[-1]}>"
    return role if any(r == role for r, *_ in layers) else None


def _unassigned(block: nn.Module, assigned: dict[str, str]) -> list[str]:
    """Parameters outside every layer that ran: the grader could not set them by role."""
    owners = set(assigned.values())
    names = [n for n, _ in block.named_parameters()
             if n.rpartition(".")[0] not in owners]
    return names[:6]


def _zero_residual(block: nn.Module, assigned: dict[str, str], layers: list[list]) -> bool:
    """Set weight and bias of the residual branch's last BatchNorm to 0 (True if found)."""
    role = residual_bn_role(layers)
    module = dict(block.named_modules()).get(assigned.get(role, "\0")) if role else None
    if module is None or getattr(module, "weight", None) is None:
        return False
    with torch.no_grad():
        module.weight.zero_()
        module.bias.zero_()
    return True


def _gradients(block: nn.Module, assigned: dict[str, str]) -> dict:
    """{"<role>.<param>": gradient or "no gradient"} for every layer that ran."""
    modules = dict(block.named_modules())
    grads: dict = {}
    for role, name in assigned.items():
        for pname, p in modules[name].named_parameters(recurse=False):
            grads[f"{role}.{pname}"] = p.grad.detach() if p.grad is not None else "no gradient"
    return grads


@contextmanager
def record_outputs(block: nn.Module, assigned: dict[str, str]) -> Iterator[list]:
    """[[role, output]] of each layer's first call during the ``with`` body, in run order:
    the evidence behind a structural claim (each layer gave the reference layer's output)."""
    modules = dict(block.named_modules())
    outputs: list[list] = []
    seen: set[str] = set()

    def hook(role: str):
        def record(_module, _args, output) -> None:
            if role not in seen and type(output) is torch.Tensor:
                seen.add(role)
                outputs.append([role, output.detach().clone()])
        return record

    handles = [modules[name].register_forward_hook(hook(role))
               for role, name in assigned.items() if name in modules]
    try:
        yield outputs
    finally:
        for h in handles:
            h.remove()


@probe("blocks")
def run_block(mod, case: dict) -> dict:
    """Build, assign weights by role, run in ``case["mode"]``; with ``case["backward"]``
    also backward an upstream gradient; with ``case["zero_residual"]`` zero the affine of the
    residual branch's last BatchNorm first."""
    with one_thread():
        return _run_block(mod, case)


def _run_block(mod, case: dict) -> dict:
    block = build(mod, case)
    count = sum(int(p.numel()) for p in block.parameters())
    x = block_input(case)  # (N, C_in, H, W)
    biased = strip_conv_biases(block)
    block.double()
    assigned = assign_by_role(block, x.clone(), seed=case["seed"])
    zero_biases(biased)
    layers = _layers(block, assigned)
    result: dict = {"param_count": count, "layers": layers,
                    "unassigned": _unassigned(block, assigned)}
    if case.get("zero_residual") and not _zero_residual(block, assigned, layers):
        result["error"] = "no BatchNorm with a weight ran after the second 3x3 conv"
        return result
    block.train(case["mode"] == "train")
    leaf = x.clone().requires_grad_(bool(case.get("backward")))
    with record_outputs(block, assigned) as outputs:
        out = block(leaf)
    result["layer_outputs"] = outputs
    if type(out) is not torch.Tensor:
        result["error"] = f"forward returned a {type(out).__name__}, not a tensor"
        return result
    result["input_changed"] = not torch.equal(leaf.detach(), x)
    result["shape"] = [int(d) for d in out.shape]
    result["output"] = out.detach()
    if case.get("backward"):
        if not out.requires_grad:
            result["error"] = "the output does not require grad (the autograd graph is broken)"
            return result
        out.backward(upstream(tuple(out.shape), case["seed"]))
        result["grad_input"] = leaf.grad if leaf.grad is not None else "no gradient"
        result["grads"] = _gradients(block, assigned)
    return result


@probe("blocks")
def expansion(mod, case: dict) -> dict:
    """``BasicBlock.expansion`` (class attribute) and the output width of a built block."""
    block = build(mod, case)
    value = getattr(type(block), "expansion", None)
    shown = value if type(value) in (int, float, bool) else repr(value)[:60]
    if not hasattr(type(block), "expansion"):
        shown = "no class attribute expansion"
    with one_thread():
        out = block(block_input(case).float())
    width = int(out.shape[1]) if type(out) is torch.Tensor and out.dim() == 4 else None
    return {"expansion": shown, "type": type(value).__name__, "out_channels": width}
