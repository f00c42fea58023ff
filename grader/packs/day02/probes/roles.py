"""Identical weights by *role*, not by name: the fair way to compare two networks.

A student may call the block's convs ``c1``/``c2``, keep them in a ``ModuleList``, build the
shortcut first, or use ``nn.Identity``; none of that may cost points. So weights are not copied
through ``state_dict`` keys. Instead one forward (eval mode, no grad) with hooks records the order
in which leaf layers run, and each layer gets a role:

- a conv or linear: ``conv[64x3x3x3]#0``: its kind, parameter shape, bias or not, and its
  occurrence among layers of the same signature *in run order*;
- a BatchNorm: ``bn<conv[...]#k>``: the conv that ran just before it (plain run order alone
  breaks on the lesson's "shortcut first" forward; pairing with the preceding conv does not).

Every role then gets values drawn from a generator seeded by (seed, role), so the reference and
the student receive identical weights, buffers included, whatever their names.

    roles = assign_by_role(model, torch.randn(2, 16, 8, 8), seed=0)  # {role: module name}
"""

from __future__ import annotations

import math
import zlib
from collections import Counter

import torch
from torch import nn

WEIGHTED = (nn.Conv2d, nn.Linear)
NORMS = (nn.BatchNorm2d, nn.BatchNorm1d)


def _signature(module: nn.Module) -> str:
    kind = "conv" if isinstance(module, nn.Conv2d) else "linear"
    shape = "x".join(str(d) for d in module.weight.shape)
    bias = "+b" if module.bias is not None else ""
    return f"{kind}[{shape}{bias}]"


def run_order(model: nn.Module, *inputs: torch.Tensor) -> list[tuple[str, nn.Module]]:
    """(name, module) of the leaf convs, linears and BatchNorms in the order one forward runs
    them (each module once, at its first call). Runs in eval mode without grad, so neither the
    running statistics nor any gradient changes; every module's mode is restored after."""
    names = {m: n for n, m in model.named_modules()}
    order: list[tuple[str, nn.Module]] = []
    seen: set[int] = set()

    def hook(module: nn.Module, _args, _out) -> None:
        if id(module) not in seen:
            seen.add(id(module))
            order.append((names.get(module, "?"), module))

    modes = {m: m.training for m in model.modules()}
    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, WEIGHTED + NORMS)]
    try:
        model.eval()
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode
    return order


def roles(model: nn.Module, *inputs: torch.Tensor) -> list[tuple[str, str, nn.Module]]:
    """(role, name, module) for each leaf layer that holds weights, in run order."""
    counts: Counter[str] = Counter()
    out: list[tuple[str, str, nn.Module]] = []
    last_weighted = "input"
    for name, module in run_order(model, *inputs):
        if isinstance(module, WEIGHTED):
            sig = _signature(module)
            role = f"{sig}#{counts[sig]}"
            counts[sig] += 1
            last_weighted = role
        else:
            role = f"bn<{last_weighted}>"
            if any(r == role for r, _, _ in out):  # two norms after one conv: keep them apart
                role += f"#{sum(r.startswith(role) for r, _, _ in out)}"
        out.append((role, name, module))
    return out


def _generator(seed: int, role: str) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(role.encode()))


@torch.no_grad()
def _fill(module: nn.Module, role: str, seed: int) -> None:
    g = _generator(seed, role)
    if isinstance(module, WEIGHTED):
        fan_in = module.weight[0].numel()
        module.weight.copy_(torch.randn(module.weight.shape, generator=g) * math.sqrt(2 / fan_in))
        if module.bias is not None:
            module.bias.copy_(torch.randn(module.bias.shape, generator=g) * 0.1)
        return
    c = module.num_features
    # non-trivial affine and statistics, so a BN that is skipped or misplaced shows
    if module.weight is not None:
        module.weight.copy_(1 + 0.2 * torch.randn(c, generator=g))
        module.bias.copy_(0.1 * torch.randn(c, generator=g))
    if module.running_mean is not None:
        module.running_mean.copy_(0.1 * torch.randn(c, generator=g))
        module.running_var.copy_(0.5 + torch.rand(c, generator=g))
        module.num_batches_tracked.zero_()


def assign_by_role(model: nn.Module, *inputs: torch.Tensor, seed: int = 0) -> dict[str, str]:
    """Give every conv, linear and BatchNorm that runs on ``inputs`` the values of its role.

    Returns {role: the module's name in this model}, for notes about naming. Layers that never
    run keep their values (they cannot change an output anyway).
    """
    assigned = {}
    for role, name, module in roles(model, *inputs):
        _fill(module, role, seed)
        assigned[role] = name
    return assigned


def strip_conv_biases(model: nn.Module) -> list[nn.Conv2d]:
    """Remove conv biases (the reference has none), so roles match a bias-free conv; returns
    the convs that had one, for ``zero_biases`` after the weights are assigned."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.bias is not None]
    for conv in convs:
        conv.bias = None
    return convs


def zero_biases(convs: list[nn.Conv2d]) -> None:
    """Give back the stripped biases as zeros: the same function as the bias-free reference."""
    for conv in convs:
        conv.bias = nn.Parameter(torch.zeros(conv.out_channels, dtype=conv.weight.dtype))


# -- weights by role, as data: what a probe returns and what the grader loads ------------------
def role_state(found: list[tuple[str, str, nn.Module]]) -> dict[str, dict[str, torch.Tensor]]:
    """{role: {"weight", "bias", "running_mean", "running_var": float32 CPU tensors}} of the
    layers that ran. Conv biases are left out: the reference's convs have none (a student's,
    stripped and given back as zeros by ``zero_biases``, cannot change an output).

    Running statistics are copies (a forward in train mode moves them); weights are the
    layers' own float32 CPU tensors, detached, not a second copy of 45 MB: the reply is
    copied once anyway when it is sent (grader.probes.sanitize)."""
    state: dict[str, dict[str, torch.Tensor]] = {}
    for role, _, module in found:
        names = ["weight"] if isinstance(module, nn.Conv2d) else ["weight", "bias"]
        if isinstance(module, NORMS):
            names += ["running_mean", "running_var"]
        state[role] = {}
        for n in names:
            value = getattr(module, n, None)
            if isinstance(value, torch.Tensor):
                value = value.detach().float().cpu().contiguous()
                state[role][n] = value.clone() if n.startswith("running_") else value
    return state


def load_role_state(model: nn.Module, state: dict, *inputs: torch.Tensor) -> list[str]:
    """Copy ``state`` (as ``role_state`` makes it) into ``model``'s layers of the same roles.

    Returns what did not fit, in words: roles ``model`` runs that ``state`` lacks, roles of
    ``state`` that ``model`` does not run, and tensors of another shape. Empty: every layer of
    ``model`` now holds ``state``'s values.
    """
    found = {role: module for role, _, module in roles(model, *inputs)}
    problems = [f"no values for {role}" for role in found if role not in state]
    problems += [f"{role} does not run in the reference" for role in state if role not in found]
    with torch.no_grad():
        for role, module in found.items():
            for name, value in state.get(role, {}).items():
                target = getattr(module, name, None)
                if not isinstance(target, torch.Tensor) or type(value) is not torch.Tensor \
                        or value.shape != target.shape:
                    problems.append(f"{role}.{name} has another shape")
                    continue
                target.copy_(value)
    return problems
