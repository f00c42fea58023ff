"""Hidden grader for ``smoke_test``: a short training run of the student's ResNet18 with the
student's ``train_one_epoch``, with gradient-norm checks (probes/smoke.py).

One run per submission (cached across the properties below); the reference runs the same case
in the grader, so the gradient-norm band is measured, not guessed. With a GPU in the worker the
run uses the lesson's fast setting; otherwise a reduced CPU run. The report says which ran.
"""

from __future__ import annotations

import math

import pytest
import torch

from grader.feedback import fail
from grader.packs.day02.probes import smoke as P
from grader.probes import ProbeFailure

CPU_CASE = {"seed": 0, "batch": 16, "steps": 4, "epochs": 3, "lr": 0.05, "device": "cpu"}
GPU_CASE = {"seed": 0, "batch": 512, "steps": 8, "epochs": 3, "lr": 0.05, "device": "cuda"}
TRIED = ("training your ResNet18 with your train_one_epoch on a small fixed batch of "
         "CIFAR-shaped images")
_RUN: dict = {}  # {"handle": the student handle, "got": ..., "expected": ...}


@pytest.fixture
def runs(student, reference, kit_note):
    """(student run, reference run), computed once per submission."""
    if _RUN.get("handle") is not student:
        case = GPU_CASE if torch.cuda.is_available() else CPU_CASE
        try:
            got: dict | ProbeFailure = student.run(P.smoke_run, case)
        except ProbeFailure as failure:
            got = failure
        if case is GPU_CASE and isinstance(got, dict) and got.get("no_gpu"):
            # the grader sees a GPU but the worker does not: say so, compare like with like
            kit_note("smoke_test: the grader has a GPU but the sandboxed worker could not use "
                     "it; the CPU run was graded instead.")
            case = CPU_CASE
            got = student.run(P.smoke_run, case)
        expected = reference.run(P.smoke_run, case)
        _RUN.update(handle=student, got=got, expected=expected)
        path = (f"GPU: {expected['device']}" if expected["device"] != "cpu"
                else "CPU fallback: no GPU found")
        kit_note(f"smoke_test ran on {path}.")
    got, expected = _RUN["got"], _RUN["expected"]
    if isinstance(got, ProbeFailure):
        raise got
    return got, expected


@pytest.mark.smoke_test
@pytest.mark.points(2)
def test_loss_falls(runs):
    """the training loss falls (a small fixed batch can be overfitted)"""
    got, _ = runs
    losses = got["losses"]
    if len(losses) < 2:
        fail(TRIED, f"{len(losses)} loss values were computed", "one per batch",
             "train_one_epoch must call criterion(outputs, labels) once per batch", raw=True)
    first, last = losses[0], sum(losses[-3:]) / len(losses[-3:])
    if not last < 0.5 * first:
        fail(TRIED, f"loss went from {first:.3f} to {last:.3f}", "at least a halving",
             "zero the gradients, call loss.backward() then optimizer.step() on every batch",
             raw=True)


@pytest.mark.smoke_test
@pytest.mark.points(1)
def test_no_nan_or_inf(runs):
    """no NaN or inf in losses or parameters"""
    got, _ = runs
    if not all(math.isfinite(v) for v in got["losses"]) or not got["params_finite"]:
        fail(TRIED, "NaN or inf appeared", "finite losses and weights",
             "check the learning rate and that nothing divides by zero", raw=True)


@pytest.mark.smoke_test
@pytest.mark.points(1)
def test_every_conv_gets_gradient(runs):
    """every conv weight receives a finite, non-zero gradient at the first step"""
    got, _ = runs
    dead = [i for i, n in enumerate(got["grad_norms"]) if not (math.isfinite(n) and n > 0)]
    if dead or not got["grad_norms"]:
        fail("one forward/backward of your ResNet18 on the fixed batch",
             f"conv weights number {dead} got no usable gradient", "all convs reached",
             "every conv must be used in forward (a layer built but never called gets none)",
             raw=True)


@pytest.mark.smoke_test
@pytest.mark.points(1)
def test_grad_norms_in_reference_band(runs):
    """per-layer gradient norms at step 0 lie within the reference's band"""
    got, expected = runs
    ref = [math.log10(n) for n in expected["grad_norms"]]
    low, high = min(ref) - 1.0, max(ref) + 1.0
    mine = [n for n in got["grad_norms"] if math.isfinite(n) and n > 0]
    outside = [f"{n:.3g}" for n in mine if not low <= math.log10(n) <= high]
    if len(got["grad_norms"]) != len(expected["grad_norms"]) or outside or not mine:
        fail("gradient norms of every conv weight at step 0",
             f"{len(got['grad_norms'])} convs, outside the band: {outside[:5]}",
             f"{len(expected['grad_norms'])} convs with norms in [1e{low:.1f}, 1e{high:.1f}]",
             "the ResNet-18 has 20 convs (17 on the main path, 3 shortcuts), BN after each",
             raw=True)


@pytest.mark.smoke_test
@pytest.mark.points(1)
def test_batchnorm_statistics_move(runs):
    """BatchNorm running statistics move during training"""
    got, _ = runs
    if not got["bn_moved"]:
        fail(TRIED, "running means unchanged", "updated running statistics",
             "train_one_epoch must put the model in train mode (model.train())", raw=True)


@pytest.mark.smoke_test
@pytest.mark.points(1)
def test_left_in_train_mode(runs):
    """the model is in train mode after train_one_epoch"""
    got, _ = runs
    if not got["training_after"]:
        fail(TRIED, "model.training is False after train_one_epoch", "True",
             "call model.train() at the start of train_one_epoch", raw=True)


@pytest.mark.smoke_test
@pytest.mark.points(1)
def test_epoch_summary_matches_losses(runs):
    """train_one_epoch returns the epoch's mean loss and an accuracy in percent"""
    got, _ = runs
    steps = len(got["losses"]) // max(len(got["epochs"]), 1)
    for i, summary in enumerate(got["epochs"]):
        if len(summary) != 2:
            fail(TRIED, f"epoch {i} returned {summary!r}", "(mean_loss, accuracy_percent)",
                 raw=True)
        mean = sum(got["losses"][i * steps:(i + 1) * steps]) / steps
        loss, acc = summary
        if not (math.isclose(loss, mean, rel_tol=1e-3, abs_tol=1e-5) and 0 <= acc <= 100):
            fail(TRIED, f"epoch {i}: ({loss:.4g}, {acc:.4g})",
                 f"mean loss {mean:.4g} and an accuracy in [0, 100]",
                 "average the batch losses; accuracy = 100 * correct / seen", raw=True)
