"""Probes of ``train.py``: the optimizer, the schedule, one training epoch and evaluation.

Everything runs on a tiny conv-BN-ReLU-pool-linear CNN and an in-memory list of equal-size
batches, both built here from the case's seed (never the student's ResNet), so the exercise
depends on ``train.py`` only. Equal batch sizes make the mean of the batch losses and the
per-sample mean agree, so both definitions earn full marks. The loader is a list, so the
lesson's ``total_loss / len(loader)`` works.

Forward hooks on every BatchNorm record ``module.training`` and ``torch.is_grad_enabled()``
during the student's forward passes; the grader compares only the returned tensors and flags.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from grader.probes import probe

HYPER = ("lr", "momentum", "weight_decay", "dampening", "nesterov")


def tiny_cnn(case: dict) -> nn.Module:
    """conv-BN-ReLU, max-pool, conv-BN-ReLU, global pool, linear; BN running statistics
    moved away from (0, 1) so eval mode and train mode give clearly different outputs."""
    width, classes = case["width"], case["classes"]
    with torch.random.fork_rng():  # deterministic init without touching the caller's RNG
        torch.manual_seed(case["seed"])
        model = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(3, width, 3, padding=1, bias=False), bn1=nn.BatchNorm2d(width),
            relu1=nn.ReLU(), pool=nn.MaxPool2d(2),
            conv2=nn.Conv2d(width, width, 3, padding=1), bn2=nn.BatchNorm2d(width),
            relu2=nn.ReLU(), gap=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
            fc=nn.Linear(width, classes)))
        with torch.no_grad():
            for bn in (model.bn1, model.bn2):
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.2, 0.2)
    return model


class ListLoader(list):
    """A list of (images, labels) batches that also answers the DataLoader questions students
    ask: ``len(loader)`` (batches, the lesson's), ``len(loader.dataset)`` (samples) and
    ``loader.batch_size``."""

    def __init__(self, data: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        super().__init__(data)
        self.batch_size = len(data[0][1])
        self.dataset = torch.utils.data.TensorDataset(torch.cat([x for x, _ in data]),
                                                      torch.cat([y for _, y in data]))


def batches(case: dict) -> ListLoader:
    """``case["batches"]`` batches of ``case["batch"]`` images and random labels."""
    g = torch.Generator().manual_seed(case["seed"] + 1)
    n, size = case["batch"], case["size"]
    return ListLoader([(torch.randn(n, 3, size, size, generator=g),  # (N, 3, H, W)
                        torch.randint(0, case["classes"], (n,), generator=g))  # (N,)
                       for _ in range(case["batches"])])


def relabel(model: nn.Module, data: ListLoader, right: int, train: bool) -> ListLoader:
    """New labels such that ``model`` as it is, in train or eval mode, predicts exactly the
    first ``right`` samples of each batch correctly: a known accuracy strictly between 0 and
    100 (the probe's own forward; the model's state is restored afterwards)."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.train(train)
    out = []
    with torch.no_grad():
        for x, _ in data:
            pred = model(x).argmax(dim=1)  # (N,)
            wrong = (pred + 1) % model.fc.out_features
            keep = torch.arange(len(pred)) < right
            out.append((x, torch.where(keep, pred, wrong)))
    model.load_state_dict(state)  # undo the BN statistics this forward updated
    return ListLoader(out)


def watch_modes(model: nn.Module) -> list[list[bool]]:
    """Hooks recording [training, grad enabled] at every BatchNorm forward."""
    seen: list[list[bool]] = []

    def hook(module: nn.Module, inputs, output) -> None:
        seen.append([bool(module.training), bool(torch.is_grad_enabled())])

    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.register_forward_hook(hook)
    return seen


def device_of(case: dict) -> torch.device | str:
    """The device argument: the string "cpu" or a torch.device, both must work."""
    return torch.device("cpu") if case.get("device_object") else "cpu"


def number(value) -> tuple[float | None, str]:
    """(value as a float or None, the name of its type): a 0-d tensor still gets its value
    compared, and its type is reported separately (the contract asks for Python floats)."""
    kind = "float" if isinstance(value, float) else type(value).__name__  # numpy float64 too
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), kind
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach().reshape(())), kind
    return None, kind


def pair(returned) -> dict:
    """The returned (mean_loss, accuracy_percent) as plain values, types and a shape note."""
    if not isinstance(returned, (tuple, list)) or len(returned) != 2:
        what = f"a {type(returned).__name__}"
        if isinstance(returned, (tuple, list)):
            what += f" of length {len(returned)}"
        return {"error": what}
    (loss, loss_kind), (acc, acc_kind) = number(returned[0]), number(returned[1])
    return {"values": [loss, acc], "types": [loss_kind, acc_kind]}


def state_tensors(model: nn.Module) -> dict:
    """Parameters and BatchNorm buffers as plain tensors (detached copies), in model order."""
    return {"params": [p.detach().clone() for p in model.parameters()],
            "buffers": [b.detach().clone() for b in model.buffers()]}


def hyper(group: dict) -> dict:
    """One param group's hyperparameters as plain floats/bools (or the type's name)."""
    out: dict[str, bool | float | str] = {}
    for key in HYPER:
        value = group.get(key)
        if isinstance(value, bool):
            out[key] = value
        else:
            num, kind = number(value)
            out[key] = num if num is not None and math.isfinite(num) else f"a {kind}"
    return out


@probe("train")
def optimizer_info(mod, case: dict) -> dict:
    """``make_optimizer(model, **case["kwargs"])``: its class, each param group's
    hyperparameters, and which of the model's parameters it holds (indices, -1: not one)."""
    model = tiny_cnn(case)
    opt = mod.make_optimizer(model, **case["kwargs"])
    kind = type(opt)
    info = {"type": f"{kind.__module__}.{kind.__qualname__}",
            "is_sgd": isinstance(opt, torch.optim.SGD),
            "n_params": len(list(model.parameters()))}
    groups = getattr(opt, "param_groups", None)
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        return {**info, "groups": [], "indices": []}
    index = {id(p): i for i, p in enumerate(model.parameters())}
    info["groups"] = [hyper(g) for g in groups]
    info["indices"] = [index.get(id(p), -1) for g in groups for p in g.get("params", [])]
    info["stepped"] = two_steps(model, opt, case["seed"])
    return info


def two_steps(model: nn.Module, opt, seed: int) -> list[torch.Tensor]:
    """The parameters after two ``opt.step()`` with gradients the grader chose (momentum and
    weight decay show in the second): the evidence of what the optimizer is."""
    g = torch.Generator().manual_seed(seed + 7)
    for _ in range(2):
        for p in model.parameters():
            p.grad = torch.randn(p.shape, generator=g)
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


@probe("train")
def schedule(mod, case: dict) -> dict:
    """The lr an SGD(lr=case["lr"]) optimizer uses in epochs 0..steps of
    ``make_scheduler(opt, epochs)`` (``epochs`` omitted when the case has none), stepped
    once per epoch the way the lesson does (optimizer.step(), then scheduler.step())."""
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=case["lr"], momentum=0.9)
    if case.get("epochs") is None:
        sched = mod.make_scheduler(opt)
    else:
        sched = mod.make_scheduler(opt, epochs=case["epochs"])
    lrs: list = []
    for _ in range(case["steps"] + 1):
        lrs.append(number(opt.param_groups[0]["lr"])[0])
        opt.step()  # no gradients: a no-op, in the order torch expects
        sched.step()
    return {"lrs": lrs}


def _epoch_setup(case: dict, train_labels: bool) -> tuple[nn.Module, ListLoader, list]:
    """Model, batches (relabelled when the case gives ``right``) and the mode recorder."""
    model = tiny_cnn(case)
    data = batches(case)
    if case.get("right") is not None:
        data = relabel(model, data, case["right"], train=train_labels)
    model.train(case["start"] == "train")
    return model, data, watch_modes(model)


@probe("train")
def train_epoch(mod, case: dict) -> dict:
    """One ``train_one_epoch`` on the grader's model and batches with the probe's own SGD;
    the model starts in ``case["start"]`` mode ("train" or "eval")."""
    model, data, seen = _epoch_setup(case, train_labels=True)
    opt = torch.optim.SGD(model.parameters(), lr=case["lr"], momentum=case["momentum"],
                          weight_decay=case["weight_decay"])
    returned = mod.train_one_epoch(model, data, opt, nn.CrossEntropyLoss(), device_of(case))
    return {"result": pair(returned), **state_tensors(model), "modes": seen}


@probe("train")
def evaluate_run(mod, case: dict) -> dict:
    """``evaluate`` on the grader's model (in ``case["start"]`` mode, every parameter holding
    a known .grad, as after a training step) and batches."""
    model, data, seen = _epoch_setup(case, train_labels=False)
    g = torch.Generator().manual_seed(case["seed"] + 2)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=g)
    returned = mod.evaluate(model, data, nn.CrossEntropyLoss(), device_of(case))
    grads = [p.grad.detach().clone() if isinstance(p.grad, torch.Tensor) else "None"
             for p in model.parameters()]
    return {"result": pair(returned), **state_tensors(model), "grads": grads, "modes": seen}
