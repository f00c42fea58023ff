"""Hidden graders for ``train.py``: exercise ``training`` (10 points).

Everything runs on the grader's tiny conv-BN-ReLU CNN and a list of equal-size batches
(probes/train.py), never the student's ResNet. Each property isolates one mistake:

* return values of ``train_one_epoch`` are checked with lr=0 (the model does not change), so
  a forgotten ``zero_grad`` costs only the "clean SGD step" property;
* the weights after an epoch are checked on a model that starts in train mode, so a
  forgotten ``model.train()`` costs only the "train mode" property;
* ``evaluate`` starts in train mode, as it does right after ``train_one_epoch``: evaluating
  in train mode gives other numbers and moves BatchNorm's statistics, and is graded so.

The lesson's own loop (``zero_grad`` after the forward, ``outputs.max(1)``,
``total_loss / len(loader)``) and a per-sample mean loss both earn full marks.
"""

from __future__ import annotations

import pytest
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

from grader.feedback import agrees, check_number, check_tensor, fail
from grader.packs.day02.probes import train as P

LOOP_HINT = ("per batch: move images and labels to the device, optimizer.zero_grad(), "
             "forward, loss, loss.backward(), optimizer.step(); return (mean of the batch "
             "losses, 100 * correct / total) as two Python floats")
EVAL_HINT = ("model.eval() and torch.no_grad(); per batch: forward and loss, no backward, no "
             "step; return (mean of the batch losses, 100 * correct / total) as two floats")
COSINE_HINT = ("cosine annealing from the optimizer's lr to 0 over T_max = epochs scheduler "
               "steps: lr_k = lr_0 (1 + cos(pi k / epochs)) / 2 "
               "(torch.optim.lr_scheduler has it)")
OPT_HINT = "torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=...)"
# Float32 arithmetic in another order (or a float32 tensor accumulator, as much example code
# keeps its running accuracy) differs from the reference's float64 sums around 1e-7; a
# miscounted sample changes an accuracy by at least 100 / 40 percent.
LOSS_RTOL = 1e-5
ACCURACY_RTOL = 1e-6
# No shrinking: the first failing case is already a small one, and shrinking a failing epoch
# would cost seconds per property (the whole exercise must stay well under 5 s).
NO_SHRINK = (Phase.explicit, Phase.generate)


@st.composite
def epoch_case(draw, *, start: str = "train", lr: float | None = None,
               relabel: bool = False) -> dict:
    """A tiny CNN and 2-4 equal batches of 4-10 images (probes/train.py), from one seed."""
    batch = draw(st.integers(4, 10))
    return {"seed": draw(st.integers(0, 2**20)), "batches": draw(st.integers(2, 4)),
            "batch": batch, "size": draw(st.sampled_from([4, 6, 8])),
            "width": draw(st.integers(2, 6)), "classes": draw(st.integers(2, 5)),
            "lr": draw(st.sampled_from([0.05, 0.1, 0.2, 0.5])) if lr is None else lr,
            "momentum": 0.9, "weight_decay": 5e-4, "start": start,
            "device_object": draw(st.booleans()),
            "right": draw(st.integers(1, batch - 1)) if relabel else None}


def _describe(case: dict, call: str) -> str:
    device = "torch.device('cpu')" if case["device_object"] else "'cpu'"
    return (f"{call.replace('DEVICE', device)} on a tiny CNN (conv-BN-ReLU, pool, "
            f"conv-BN-ReLU, pool, linear; width {case['width']}, {case['classes']} classes, "
            f"seed {case['seed']}), a list of {case['batches']} batches of {case['batch']} "
            f"images 3x{case['size']}x{case['size']}, the model starting in "
            f"{case['start']} mode")


def _train_call(case: dict) -> str:
    return (f"train_one_epoch(model, loader, SGD(lr={case['lr']}, momentum=0.9, "
            f"weight_decay=5e-4), CrossEntropyLoss(), DEVICE)")


EVAL_CALL = "evaluate(model, loader, CrossEntropyLoss(), DEVICE)"


def _check_pair(got: dict, expected: dict, tried: str, hint: str) -> None:
    """(mean_loss, accuracy_percent): two floats equal to the reference's."""
    if "error" in got:
        fail(tried, got["error"], "a tuple (mean_loss, accuracy_percent)", hint, raw=True)
    for i, what in enumerate(("mean loss", "accuracy")):
        if got["types"][i] != "float":
            fail(tried, f"the {what} is of type {got['types'][i]}", "a Python float",
                 "call .item() on a 0-d tensor; 100.0 * correct / total is a float", raw=True)
    (loss, acc), (want_loss, want_acc) = got["values"], expected["result"]["values"]
    check_number(loss, want_loss, tried, hint + " (the mean of the batch losses)",
                 rtol=LOSS_RTOL, atol=1e-7, what="mean loss")
    if not agrees(acc, want_acc, rtol=ACCURACY_RTOL):
        why = ("it looks like a fraction: report a percentage, 100 * correct / total"
               if agrees(acc * 100, want_acc, rtol=ACCURACY_RTOL) else
               "count argmax(outputs, dim=1) == labels over all samples, "
               "then 100 * correct / total")
        check_number(acc, want_acc, tried, why, rtol=ACCURACY_RTOL, what="accuracy (percent)")


def pair_agrees(got: dict, expected: dict) -> bool:
    """The evidence behind a claim about evaluate: it computed the reference's pair."""
    values = got["result"].get("values")
    if type(values) is not list or len(values) != 2:
        return False
    (loss, acc), (want_loss, want_acc) = values, expected["result"]["values"]
    return agrees(loss, want_loss, rtol=LOSS_RTOL, atol=1e-7) and agrees(
        acc, want_acc, rtol=ACCURACY_RTOL)


def require_pair(got: dict, expected: dict, tried: str) -> None:
    if not pair_agrees(got, expected):
        fail(tried, "the claim cannot be verified: evaluate's (mean loss, accuracy) differ from "
             f"the reference's ({got['result'].get('values', got['result'])} vs "
             f"{expected['result']['values']})", "the reference's mean loss and accuracy",
             "how evaluate runs is scored with what it computed behind it: see the property "
             "on evaluate's return values", raw=True)


# -- make_optimizer ------------------------------------------------------------------------------
MODEL_CASE = {"seed": 3, "width": 4, "classes": 3}


def _optimizer(student, reference, kwargs: dict) -> tuple[dict, dict, str]:
    case = {**MODEL_CASE, "kwargs": kwargs}
    args = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    got = student.run(P.optimizer_info, case)
    tried = f"make_optimizer(model{args}) on a tiny CNN with {got['n_params']} parameter tensors"
    if not got["is_sgd"]:
        fail(tried, f"a {got['type']}", "a torch.optim.SGD", OPT_HINT, raw=True)
    if not got["groups"]:
        fail(tried, "an optimizer without param groups", "one param group", OPT_HINT, raw=True)
    return got, reference.run(P.optimizer_info, case), tried


def require_steps(got: dict, expected: dict, tried: str, hint: str) -> None:
    """What the optimizer claims to be scores only with its steps behind it: two steps with
    the grader's gradients move every parameter as the reference's SGD does."""
    mine = got.get("stepped")
    for i, want in enumerate(expected["stepped"]):
        value = mine[i] if type(mine) is list and i < len(mine) else None
        if not agrees(value, want, rtol=1e-5, atol=1e-7):
            fail(tried + "; then two optimizer.step() with gradients the grader chose",
                 f"parameter tensor {i} moved differently from the reference's SGD",
                 "the same two steps as the reference's optimizer", hint, raw=True)


def _check_hyper(got: dict, expected: dict, tried: str, keys: tuple[str, ...], hint: str):
    want = expected["groups"][0]
    for group in got["groups"]:
        for key in keys:
            value = group[key]
            ok = (type(value) is type(want[key]) and
                  (value == want[key] if isinstance(value, bool) else
                   agrees(value, want[key], rtol=1e-9, atol=1e-15)))
            if not ok:
                fail(tried + f": param_groups[...]['{key}']", value, want[key], hint)


@pytest.mark.training
@pytest.mark.points(0.5)
def test_optimizer_is_sgd_over_all_parameters(student, reference):
    """make_optimizer is plain SGD over all the model's parameters

    Evidence: what the optimizer reports, scored with two steps on the grader's gradients
    moving every parameter as the reference's SGD does.
    """
    got, expected, tried = _optimizer(student, reference, {})
    indices, n = got["indices"], got["n_params"]
    if sorted(indices) != list(range(n)):
        missing = n - len({i for i in indices if i >= 0})
        fail(tried, f"{len(indices)} parameter tensors optimised ({missing} of the model's "
             "missing, or extra/duplicate ones)", f"each of the model's {n} exactly once",
             "give SGD model.parameters(): BatchNorm weights and biases are trained too",
             raw=True)
    _check_hyper(got, expected, tried, ("dampening", "nesterov"),
                 "the lesson's SGD: momentum without dampening or Nesterov")
    require_steps(got, expected, tried, OPT_HINT)


@pytest.mark.training
@pytest.mark.points(1)
def test_optimizer_defaults(student, reference):
    """make_optimizer defaults to lr=0.1, momentum=0.9, weight_decay=5e-4

    Evidence: the hyperparameters it reports, scored with two steps on the grader's
    gradients moving every parameter as the reference's SGD does.
    """
    got, expected, tried = _optimizer(student, reference, {})
    _check_hyper(got, expected, tried, ("lr", "momentum", "weight_decay"),
                 "the lesson's recipe: SGD(lr=0.1, momentum=0.9, weight_decay=5e-4), as "
                 "the defaults of make_optimizer's arguments")
    require_steps(got, expected, tried, OPT_HINT)


@pytest.mark.training
@pytest.mark.points(0.5)
@settings(max_examples=4, phases=NO_SHRINK)
@given(lr=st.sampled_from([0.01, 0.05, 0.3]), momentum=st.sampled_from([0.0, 0.5, 0.95]),
       weight_decay=st.sampled_from([0.0, 1e-4, 1e-3]))
def test_optimizer_custom_values(student, reference, lr, momentum, weight_decay):
    """make_optimizer passes custom lr, momentum and weight_decay through

    Evidence: the hyperparameters it reports, scored with two steps on the grader's
    gradients moving every parameter as the reference's SGD does.
    """
    got, expected, tried = _optimizer(
        student, reference, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})
    _check_hyper(got, expected, tried, ("lr", "momentum", "weight_decay"),
                 "pass the function's lr, momentum and weight_decay arguments to SGD, "
                 "not fixed numbers")
    require_steps(got, expected, tried, OPT_HINT)


# -- make_scheduler ------------------------------------------------------------------------------
def _check_lrs(student, reference, case: dict, call: str) -> None:
    got = student.run(P.schedule, case)["lrs"]
    want = reference.run(P.schedule, case)["lrs"]
    for k, (lr, lr_want) in enumerate(zip(got, want, strict=True)):
        if not agrees(lr, lr_want, rtol=1e-6, atol=1e-10):
            fail(f"{call} with SGD(lr={case['lr']}), then optimizer.step(); scheduler.step() "
                 f"once per epoch: the lr in epoch {k}", lr, lr_want, COSINE_HINT)


@pytest.mark.training
@pytest.mark.points(1)
@settings(max_examples=8, phases=NO_SHRINK)
@given(epochs=st.integers(1, 40), lr=st.sampled_from([0.01, 0.1, 0.4]))
def test_scheduler_is_cosine_over_epochs(student, reference, epochs, lr):
    """make_scheduler anneals the lr to 0 along a cosine over T_max=epochs steps

    Evidence: the lr after each scheduler step against the reference's.
    """
    case = {"lr": lr, "epochs": epochs, "steps": epochs}
    _check_lrs(student, reference, case, f"make_scheduler(optimizer, epochs={epochs})")


@pytest.mark.training
@pytest.mark.points(0.5)
def test_scheduler_default_epochs(student, reference):
    """make_scheduler defaults to epochs=200

    Evidence: the lr after each scheduler step against the reference's.
    """
    case = {"lr": 0.1, "epochs": None, "steps": 12}
    _check_lrs(student, reference, case, "make_scheduler(optimizer)")


# -- train_one_epoch -----------------------------------------------------------------------------
# 2 of every 7 right: 28.571428571... percent, which no float32 holds exactly (a float32
# running count gives 28.5714283): honest float32 arithmetic must still pass
SEVENTHS = {"seed": 5, "batches": 3, "batch": 7, "size": 6, "width": 4, "classes": 3,
            "lr": 0.0, "momentum": 0.9, "weight_decay": 5e-4, "start": "train",
            "device_object": False, "right": 2}


@pytest.mark.training
@pytest.mark.points(1.5)
@settings(max_examples=4, phases=NO_SHRINK)
@example(case=SEVENTHS)
@given(case=epoch_case(lr=0.0, relabel=True))
def test_train_returns_mean_loss_and_accuracy(student, reference, case):
    """train_one_epoch returns (mean batch loss, accuracy in percent) as floats

    Evidence: the returned pair against the reference's on the grader's model and batches
    (lr 0; the labels set so the accuracy is known).
    """
    tried = _describe(case, _train_call(case)) + (
        f"; lr=0 keeps the weights, and the model predicts exactly {case['right']} of each "
        f"{case['batch']} labels right")
    got = student.run(P.train_epoch, case)
    _check_pair(got["result"], reference.run(P.train_epoch, case), tried, LOOP_HINT)


@pytest.mark.training
@pytest.mark.points(1.5)
@settings(max_examples=4, phases=NO_SHRINK)
@given(case=epoch_case())
def test_train_takes_one_clean_step_per_batch(student, reference, case):
    """train_one_epoch takes one clean SGD step per batch (weights match after an epoch)

    Evidence: every parameter after the epoch against the reference's.
    """
    got = student.run(P.train_epoch, case)
    expected = reference.run(P.train_epoch, case)
    tried = _describe(case, _train_call(case)) + "; then compare the weights"
    for i, (mine, want) in enumerate(zip(got["params"], expected["params"], strict=True)):
        check_tensor(mine, want, tried, "zero the gradients in every batch (backward adds "
                     "into .grad, so they would pile up across batches), then loss.backward() "
                     "before optimizer.step(): one step per batch", rtol=1e-4, atol=1e-6,
                     what=f"parameter tensor {i} (in model.parameters() order)")


@pytest.mark.training
@pytest.mark.points(1)
@settings(max_examples=3, phases=NO_SHRINK)
@given(case=epoch_case(start="eval", lr=0.0))
def test_train_runs_in_train_mode(student, reference, case):
    """train_one_epoch puts the model in train mode (BatchNorm updates its statistics)

    Evidence: BatchNorm's mode during the forwards, scored with its running statistics after
    the epoch equal to the reference's.
    """
    got = student.run(P.train_epoch, case)
    expected = reference.run(P.train_epoch, case)
    tried = _describe(case, _train_call(case)) + " (as after an evaluate())"
    hint = ("call model.train() at the start: evaluate() left the model in eval mode, and "
            "BatchNorm must normalise with batch statistics and update its running averages "
            "while training")
    modes = [training for training, _ in got["modes"]]
    if not modes or not all(modes):
        fail(tried, f"BatchNorm ran with training={modes[:8]}", "training=True in every "
             "forward", hint, raw=True)
    for i, (mine, want) in enumerate(zip(got["buffers"], expected["buffers"], strict=True)):
        check_tensor(mine, want, tried + "; then compare BatchNorm's running statistics",
                     hint + " (one forward per batch)", rtol=1e-5, atol=1e-7,
                     what=f"BatchNorm buffer {i} (running mean, var, num_batches_tracked)")


# -- evaluate ------------------------------------------------------------------------------------
@pytest.mark.training
@pytest.mark.points(1)
@settings(max_examples=4, phases=NO_SHRINK)
@example(case={**SEVENTHS, "lr": 0.1})
@given(case=epoch_case(relabel=True))
def test_evaluate_returns_loss_and_accuracy(student, reference, case):
    """evaluate returns the eval-mode (mean batch loss, accuracy in percent) as floats

    Evidence: the returned pair against the reference's on the grader's model and batches.
    """
    tried = _describe(case, EVAL_CALL) + (
        f" (as after train_one_epoch); in eval mode the model predicts exactly "
        f"{case['right']} of each {case['batch']} labels right")
    got = student.run(P.evaluate_run, case)
    _check_pair(got["result"], reference.run(P.evaluate_run, case), tried, EVAL_HINT)


def _evaluate_modes(student, reference, case: dict) -> tuple[list, list]:
    """(BatchNorm's training flags, grad-enabled flags) during evaluate's forwards: claims,
    returned only with evaluate's own (loss, accuracy) agreeing with the reference's."""
    got = student.run(P.evaluate_run, case)
    require_pair(got, reference.run(P.evaluate_run, case), _describe(case, EVAL_CALL))
    return [t for t, _ in got["modes"]], [g for _, g in got["modes"]]


EVAL_MODE_CASE = {"seed": 11, "batches": 2, "batch": 6, "size": 6, "width": 4, "classes": 3,
                  "lr": 0.0, "momentum": 0.9, "weight_decay": 5e-4, "start": "train",
                  "device_object": False, "right": None}


@pytest.mark.training
@pytest.mark.points(0.5)
def test_evaluate_eval_mode(student, reference):
    """evaluate runs the model in eval mode

    Evidence: BatchNorm's mode during evaluate's forwards, scored with evaluate's (loss,
    accuracy) equal to the reference's behind it.
    """
    modes, _ = _evaluate_modes(student, reference, EVAL_MODE_CASE)
    if not modes or any(modes):
        fail(_describe(EVAL_MODE_CASE, EVAL_CALL), f"BatchNorm ran with training={modes[:8]}",
             "training=False in every forward", "call model.eval() first: BatchNorm must use "
             "its running statistics, not the test batch's", raw=True)


@pytest.mark.training
@pytest.mark.points(0.5)
def test_evaluate_without_gradients(student, reference):
    """evaluate runs its forward passes with gradients disabled

    Evidence: torch.is_grad_enabled() during evaluate's forwards, scored with evaluate's (loss,
    accuracy) equal to the reference's behind it.
    """
    _, grads = _evaluate_modes(student, reference, EVAL_MODE_CASE)
    if not grads or any(grads):
        fail(_describe(EVAL_MODE_CASE, EVAL_CALL),
             f"torch.is_grad_enabled() was {grads[:8]} during the forward passes",
             "False in every forward", "wrap the loop in `with torch.no_grad():` (or "
             "torch.inference_mode()): no graph is built, saving memory and time", raw=True)


@pytest.mark.training
@pytest.mark.points(0.5)
@settings(max_examples=3, phases=NO_SHRINK)
@given(case=epoch_case())
def test_evaluate_changes_nothing(student, reference, case):
    """evaluate changes no parameter, BatchNorm statistic or gradient

    Evidence: the parameters, statistics and gradients after the call against the
    reference's, scored with evaluate's (loss, accuracy) equal to the reference's behind them
    (the untouched state alone is known without running evaluate).
    """
    got = student.run(P.evaluate_run, case)
    expected = reference.run(P.evaluate_run, case)
    tried = _describe(case, EVAL_CALL) + " with every .grad set, as after a training step"
    require_pair(got, expected, tried)
    hint = ("evaluation must leave the model as it was: eval mode (BatchNorm's running "
            "statistics stay put), no backward, no optimizer step, no zero_grad")
    for key, what in (("params", "parameter"), ("buffers", "BatchNorm buffer"),
                      ("grads", "the .grad of parameter")):
        for i, (mine, want) in enumerate(zip(got[key], expected[key], strict=True)):
            if isinstance(mine, str):
                fail(tried, f"{what} {i} is {mine}", "unchanged", hint, raw=True)
            check_tensor(mine, want, tried, hint, rtol=0, atol=0, what=f"{what} {i}")
