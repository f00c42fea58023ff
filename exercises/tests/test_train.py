"""Self-check of ``train.py`` (exercise ``training``).

Oracles: ``torch.optim.SGD``'s param_groups, the cosine schedule's closed form
lr_k = lr_0 (1 + cos(pi k / T)) / 2, and a correct training step written out here, all on tiny
models and in-memory loaders (lists of batches) built in this file.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

LOOP_HINT = ("per batch: move to device, optimizer.zero_grad(), forward, loss, backward, "
             "optimizer.step(); return (mean of the batch losses, 100 * correct / samples)")


def _msg(tried: str, got: object, expected: object, hint: str = "") -> str:
    return f"Tried: {tried}\nGot: {got}\nExpected: {expected}\nHint: {hint}"


def linear_model(seed: int = 0, dtype: torch.dtype = torch.float32) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 3, dtype=dtype))


def bn_model(seed: int = 0) -> nn.Module:
    """A model with BatchNorm whose running statistics differ from a batch's own."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(16, 3))
    with torch.no_grad():
        model[1].running_mean.uniform_(-1.0, 1.0)
        model[1].running_var.uniform_(0.5, 2.0)
    return model


def loader(batches: int = 3, seed: int = 0, dtype: torch.dtype = torch.float32) -> list:
    """A list of (images (8, 3, 2, 2), labels (8,)): learnable, labels from a fixed rule."""
    g = torch.Generator().manual_seed(seed)
    rule = torch.randn(12, 3, generator=g, dtype=dtype)
    data = []
    for _ in range(batches):
        x = torch.randn(8, 3, 2, 2, generator=g, dtype=dtype)  # (N, C, H, W)
        data.append((x, (x.flatten(1) @ rule).argmax(dim=1)))  # labels (N,)
    return data


def _oracle(model: nn.Module, data: list) -> tuple[float, float]:
    """Mean batch loss and accuracy (percent) of ``model`` as it is, without changing it."""
    losses, correct, seen = [], 0, 0
    with torch.no_grad():
        for x, y in data:
            out = model(x)
            losses.append(F.cross_entropy(out, y).item())
            correct += int((out.argmax(dim=1) == y).sum())
            seen += len(y)
    return sum(losses) / len(losses), 100.0 * correct / seen


def _result(got: object, call: str) -> tuple[float, float]:
    ok = isinstance(got, tuple) and len(got) == 2 and all(type(v) is float for v in got)
    assert ok, _msg(call, repr(got), "a tuple (mean_loss, accuracy_percent) of two floats",
                    "return Python floats (loss.item(), 100.0 * correct / total)")
    return got


# -- optimizer and schedule ----------------------------------------------------------------------
@pytest.mark.training
@pytest.mark.points(1)
def test_make_optimizer(load_exercise):
    """make_optimizer is SGD over all parameters with the given lr, momentum, weight decay"""
    train = load_exercise("train")
    model = bn_model()
    for kwargs, want in (({}, (0.1, 0.9, 5e-4)),
                         ({"lr": 0.05, "momentum": 0.8, "weight_decay": 1e-4}, (0.05, 0.8, 1e-4))):
        opt = train.make_optimizer(model, **kwargs)
        call = f"make_optimizer(model, {', '.join(f'{k}={v}' for k, v in kwargs.items())})"
        assert isinstance(opt, torch.optim.SGD), _msg(call, type(opt).__name__, "torch.optim.SGD")
        got = [(g["lr"], g["momentum"], g["weight_decay"]) for g in opt.param_groups]
        assert got == [want], _msg(call + ": (lr, momentum, weight_decay) per param group", got,
                                   [want], "pass all three to torch.optim.SGD")
        params = {id(p) for g in opt.param_groups for p in g["params"]}
        assert params == {id(p) for p in model.parameters()}, _msg(
            call, f"{len(params)} parameters optimised", f"all {len(list(model.parameters()))}",
            "give SGD model.parameters()")


@pytest.mark.training
@pytest.mark.points(1)
def test_make_scheduler_is_cosine(load_exercise):
    """make_scheduler anneals lr_0 to 0 along (1 + cos(pi k / T)) / 2 over T epochs"""
    train = load_exercise("train")
    epochs, lr0 = 10, 0.1
    opt = torch.optim.SGD(linear_model().parameters(), lr=lr0)
    sched = train.make_scheduler(opt, epochs=epochs)
    for k in range(epochs + 1):
        want = lr0 * (1 + math.cos(math.pi * k / epochs)) / 2
        got = opt.param_groups[0]["lr"]
        assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12), _msg(
            f"make_scheduler(SGD(lr={lr0}), epochs={epochs}), then {k} x scheduler.step()",
            f"lr {got:.6g}", f"{want:.6g} = {lr0} * (1 + cos(pi * {k} / {epochs})) / 2",
            "cosine annealing with T_max = epochs (torch.optim.lr_scheduler has it)")
        opt.step()  # no gradients: a no-op, but it keeps the step order torch expects
        sched.step()


# -- train_one_epoch -----------------------------------------------------------------------------
@pytest.mark.training
@pytest.mark.points(2)
def test_train_one_epoch_returns_loss_and_accuracy(load_exercise):
    """train_one_epoch returns the mean batch loss and the accuracy in percent"""
    train = load_exercise("train")
    model, data = linear_model(), loader()
    with torch.no_grad():  # relabel half of each batch so the model is exactly 50% right
        data = [(x, torch.where(torch.arange(8) < 4, model(x).argmax(1),
                                (model(x).argmax(1) + 1) % 3)) for x, _ in data]
    want = _oracle(model, data)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the model stays as it is
    call = "train_one_epoch(model, 3 batches of 8, SGD(lr=0), CrossEntropyLoss(), 'cpu')"
    got = _result(train.train_one_epoch(model, data, opt, nn.CrossEntropyLoss(), "cpu"), call)
    assert math.isclose(got[0], want[0], rel_tol=1e-5), _msg(
        call + ": the loss", got[0], f"{want[0]:.6g} (mean of the 3 batch losses)", LOOP_HINT)
    assert math.isclose(got[1], want[1], rel_tol=1e-9), _msg(
        call + ": the accuracy", got[1], f"{want[1]} (12 of 24 predictions right, in percent)",
        "count argmax(outputs) == labels over all samples; report 100 * correct / total")


@pytest.mark.training
@pytest.mark.points(1)
def test_train_one_epoch_learns(load_exercise):
    """train_one_epoch lowers the loss epoch after epoch"""
    train = load_exercise("train")
    model, data = linear_model(), loader(batches=4)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = [_result(train.train_one_epoch(model, data, opt, nn.CrossEntropyLoss(), "cpu"),
                      "train_one_epoch(...)")[0] for _ in range(5)]
    assert losses[-1] < 0.9 * losses[0], _msg(
        "5 epochs of train_one_epoch on a learnable 4-batch problem, SGD(lr=0.5)",
        [round(v, 4) for v in losses], "a clearly lower loss in the last epoch", LOOP_HINT)


@pytest.mark.training
@pytest.mark.points(2)
def test_train_one_epoch_zeroes_gradients(load_exercise):
    """train_one_epoch takes one clean SGD step per batch (gradients zeroed each time)"""
    train = load_exercise("train")
    model = linear_model(dtype=torch.float64)
    batch = loader(batches=1, dtype=torch.float64)[0]
    data = [batch, batch]  # two identical batches: accumulated gradients would be doubled
    reference = copy.deepcopy(model)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.5)
    for x, y in data:  # the correct loop, written out
        ref_opt.zero_grad()
        F.cross_entropy(reference(x), y).backward()
        ref_opt.step()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    train.train_one_epoch(model, data, opt, nn.CrossEntropyLoss(), "cpu")
    diff = max((a - b).abs().max().item()
               for a, b in zip(model.parameters(), reference.parameters(), strict=True))
    assert diff < 1e-10, _msg(
        "train_one_epoch on 2 identical batches with SGD(lr=0.5); compare the weights with "
        "two clean SGD steps", f"weights differ by up to {diff:.3g}", "the same weights",
        "zero the gradients before each backward (backward adds into .grad), and step once "
        "per batch")


@pytest.mark.training
@pytest.mark.points(1)
def test_train_one_epoch_train_mode(load_exercise):
    """train_one_epoch runs the model in train mode"""
    train = load_exercise("train")
    model = bn_model().eval()  # left in eval mode by an earlier evaluate()
    modes: list[bool] = []
    model[1].register_forward_hook(lambda m, i, o: modes.append(m.training))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    train.train_one_epoch(model, loader(batches=2), opt, nn.CrossEntropyLoss(), "cpu")
    assert modes and all(modes), _msg(
        "train_one_epoch on a model left in eval mode", f"BatchNorm ran with training={modes}",
        "training=True in every batch", "call model.train() at the start: BatchNorm must use "
        "batch statistics while training")


# -- evaluate ------------------------------------------------------------------------------------
@pytest.mark.training
@pytest.mark.points(1)
def test_evaluate_eval_mode_no_grad(load_exercise):
    """evaluate runs in eval mode without building a graph"""
    train = load_exercise("train")
    model = bn_model()  # in train mode
    seen: list[tuple[bool, bool]] = []
    model[1].register_forward_hook(
        lambda m, i, o: seen.append((m.training, torch.is_grad_enabled())))
    train.evaluate(model, loader(batches=2), nn.CrossEntropyLoss(), "cpu")
    assert seen and not any(t for t, _ in seen), _msg(
        "evaluate on a model in train mode", f"BatchNorm ran with training={[t for t, _ in seen]}",
        "training=False", "call model.eval(): BatchNorm must use its running statistics")
    assert not any(g for _, g in seen), _msg(
        "evaluate: torch.is_grad_enabled() during the forward", [g for _, g in seen], False,
        "wrap the loop in torch.no_grad(): no graph, less memory, faster")


@pytest.mark.training
@pytest.mark.points(1)
def test_evaluate_values_and_no_side_effects(load_exercise):
    """evaluate returns eval-mode loss and accuracy and changes no parameter or statistic"""
    train = load_exercise("train")
    model, data = bn_model(), loader(batches=3)
    before = copy.deepcopy(model.state_dict())
    want = _oracle(copy.deepcopy(model).eval(), data)
    call = "evaluate(model with BatchNorm, 3 batches of 8, CrossEntropyLoss(), 'cpu')"
    got = _result(train.evaluate(model, data, nn.CrossEntropyLoss(), "cpu"), call)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert not changed, _msg(call, f"changed {changed}", "no change to parameters or buffers",
                             "no optimizer step, and eval mode so BatchNorm's running "
                             "statistics stay put")
    assert math.isclose(got[0], want[0], rel_tol=1e-5) and math.isclose(got[1], want[1]), _msg(
        call, got, f"({want[0]:.6g}, {want[1]}) (eval mode: mean batch loss, accuracy %)",
        "eval mode, no gradients; mean of the batch losses and 100 * correct / total")
