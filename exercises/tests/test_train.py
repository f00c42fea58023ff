"""Self-check of ``train.py`` (exercises ``training`` and, at the end, ``smoke_test``).

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

from .feedback import msg

LOOP_HINT = ("per batch: move to device, optimizer.zero_grad(), forward, loss, backward, "
             "optimizer.step(); return (mean of the batch losses, 100 * correct / samples)")


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
    assert ok, msg(call, repr(got), "a tuple (mean_loss, accuracy_percent) of two floats",
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
        assert isinstance(opt, torch.optim.SGD), msg(call, type(opt).__name__, "torch.optim.SGD",
                                                      "return torch.optim.SGD(model.parameters(), "
                                                      "lr=..., momentum=..., weight_decay=...)")
        got = [(g["lr"], g["momentum"], g["weight_decay"]) for g in opt.param_groups]
        assert got == [want], msg(call + ": (lr, momentum, weight_decay) per param group", got,
                                   [want], "pass all three to torch.optim.SGD")
        params = {id(p) for g in opt.param_groups for p in g["params"]}
        assert params == {id(p) for p in model.parameters()}, msg(
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
        assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12), msg(
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
    assert math.isclose(got[0], want[0], rel_tol=1e-5), msg(
        call + ": the loss", got[0], f"{want[0]:.6g} (mean of the 3 batch losses)", LOOP_HINT)
    assert math.isclose(got[1], want[1], rel_tol=1e-9), msg(
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
    assert losses[-1] < 0.9 * losses[0], msg(
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
    assert diff < 1e-10, msg(
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
    assert modes and all(modes), msg(
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
    assert seen and not any(t for t, _ in seen), msg(
        "evaluate on a model in train mode", f"BatchNorm ran with training={[t for t, _ in seen]}",
        "training=False", "call model.eval(): BatchNorm must use its running statistics")
    assert not any(g for _, g in seen), msg(
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
    assert not changed, msg(call, f"changed {changed}", "no change to parameters or buffers",
                             "no optimizer step, and eval mode so BatchNorm's running "
                             "statistics stay put")
    assert math.isclose(got[0], want[0], rel_tol=1e-5) and math.isclose(got[1], want[1]), msg(
        call, got, f"({want[0]:.6g}, {want[1]}) (eval mode: mean batch loss, accuracy %)",
        "eval mode, no gradients; mean of the batch losses and 100 * correct / total")


# -- smoke_test: your ResNet18 trained by your train_one_epoch -------------------------------------
# A short CPU run (a few seconds): a small fixed batch of CIFAR-shaped images that a ResNet-18
# can overfit. The hidden grader runs the same kind of run and also compares the gradient
# norms with the reference's.
SMOKE_TRIED = ("training your ResNet18 with your train_one_epoch on 16 fixed CIFAR-shaped "
               "images (4 steps x 2 epochs, SGD lr 0.05)")
_SMOKE: dict = {}


class _RecordingLoss(nn.Module):
    """Cross-entropy that remembers every value it returns (the run's loss curve)."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[float] = []

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(logits, labels)
        self.history.append(float(loss.detach()))
        return loss


def _learnable_batch(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """n images (n, 3, 32, 32): each class a fixed colour template plus noise."""
    g = torch.Generator().manual_seed(0)
    templates = torch.randn(10, 3, 32, 32, generator=g)  # (10, 3, 32, 32)
    labels = torch.arange(n) % 10  # (n,): every class present
    return templates[labels] + 0.3 * torch.randn(n, 3, 32, 32, generator=g), labels


def _smoke_run(load_exercise) -> dict:
    """Run once per session (all smoke properties read it): your ResNet18, your loop."""
    resnet, train = load_exercise("resnet"), load_exercise("train")
    key = (id(resnet), id(train))
    if _SMOKE.get("key") != key:
        torch.manual_seed(0)
        model = resnet.ResNet18(num_classes=10)
        images, labels = _learnable_batch()
        model.train()
        F.cross_entropy(model(images), labels).backward()  # step 0: who gets a gradient?
        norms = [(name, p.grad.norm().item() if p.grad is not None else math.nan)
                 for name, p in model.named_parameters() if p.dim() == 4]
        for param in model.parameters():  # the run starts from no gradient at all
            param.grad = None
        before = [m.running_mean.clone() for m in model.modules()
                  if isinstance(m, nn.BatchNorm2d)]
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        criterion = _RecordingLoss()
        epochs = [train.train_one_epoch(model, [(images, labels)] * 4, optimizer, criterion,
                                        torch.device("cpu")) for _ in range(2)]
        after = [m.running_mean for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        moved = any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
        _SMOKE.update(key=key, norms=norms, losses=criterion.history, epochs=epochs,
                      finite=all(bool(torch.isfinite(p).all()) for p in model.parameters()),
                      bn_moved=moved, training=model.training)
    return _SMOKE


@pytest.mark.smoke_test
@pytest.mark.points(2)
def test_smoke_loss_falls(load_exercise):
    """the training loss falls (a small fixed batch can be overfitted)"""
    losses = _smoke_run(load_exercise)["losses"]
    assert len(losses) == 8, msg(SMOKE_TRIED, f"{len(losses)} loss values computed",
                                 "8: one per batch", "call criterion(outputs, labels) once "
                                 "per batch of the loader")
    first, last = losses[0], sum(losses[-3:]) / 3
    assert last < 0.5 * first, msg(SMOKE_TRIED, f"loss went from {first:.3f} to {last:.3f}",
                                   "at least a halving", LOOP_HINT)


@pytest.mark.smoke_test
@pytest.mark.points(1)
def test_smoke_stays_finite(load_exercise):
    """no NaN or inf in the losses or the weights"""
    run = _smoke_run(load_exercise)
    assert run["finite"] and all(math.isfinite(v) for v in run["losses"]), msg(
        SMOKE_TRIED, "NaN or inf appeared", "finite losses and weights",
        "check that nothing divides by zero and that the loss is computed on the logits")


@pytest.mark.smoke_test
@pytest.mark.points(2)
def test_smoke_every_conv_gets_gradient(load_exercise):
    """every conv weight of ResNet18 gets a finite, non-zero gradient at the first step"""
    norms = _smoke_run(load_exercise)["norms"]
    dead = [name for name, n in norms if not (math.isfinite(n) and n > 0)]
    assert norms and not dead, msg(
        "one forward/backward of your ResNet18 on the batch, then each conv weight's "
        "gradient norm", f"no usable gradient for {dead[:4] or 'any conv (none found)'}",
        "a finite, non-zero gradient norm for every conv weight",
        "every conv you build must be used in forward(): a layer never called gets no gradient")


@pytest.mark.smoke_test
@pytest.mark.points(1)
def test_smoke_batchnorm_statistics_move(load_exercise):
    """BatchNorm running statistics move during training, and the model stays in train mode"""
    run = _smoke_run(load_exercise)
    assert run["bn_moved"] and run["training"], msg(
        SMOKE_TRIED, f"running means moved: {run['bn_moved']}; model.training after: "
        f"{run['training']}", "both True", "call model.train() at the start of train_one_epoch")


@pytest.mark.smoke_test
@pytest.mark.points(2)
def test_smoke_epoch_summary(load_exercise):
    """each epoch returns its mean batch loss and an accuracy in percent"""
    run = _smoke_run(load_exercise)
    for i, got in enumerate(run["epochs"]):
        loss, acc = _result(got, f"train_one_epoch (epoch {i} of the smoke run)")
        mean = sum(run["losses"][4 * i: 4 * i + 4]) / 4
        assert math.isclose(loss, mean, rel_tol=1e-3, abs_tol=1e-5) and 0 <= acc <= 100, msg(
            f"{SMOKE_TRIED}: epoch {i}", f"({loss:.4g}, {acc:.4g})",
            f"mean loss {mean:.4g} and an accuracy in [0, 100]", LOOP_HINT)
