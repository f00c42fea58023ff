"""Hidden grader for ``smoke_test``: a short training run of the student's ResNet18 with the
student's ``train_one_epoch`` (probes/smoke.py), re-evaluated by the grader.

The run happens in the sandbox, so what it reports is a claim. The grader proves what it
scores itself, in this process, with the reference's code:

* the run starts from the grader's weights, by role, so the reference computes the same step 0
  (``smoke_start``, cached like every reference result);
* **E0, the first step:** the student's step-0 loss on the grader's batch equals the
  reference's with the same weights;
* **E1, the training:** the student's trained weights, loaded by role into the reference
  ResNet-18, fit the batch: the grader's own loss on it at least halves.

A claim (the losses the criterion saw, finiteness, gradient norms, moved statistics, the epoch
summaries) scores only with E0 or E1 behind it; train mode is proved from how the stem
BatchNorm's statistics moved on a batch the grader chose. E0 and E1 prove that *a* ResNet-18
was trained from the grader's weights, and a worker could train a library's with a loop of its
own: so every property also needs the run to be the student's own code, proven on the
grader's other inputs (``components_problem``). One run per submission.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field

import pytest
import torch
import torch.nn.functional as F

from grader.feedback import agrees, fail
from grader.packs.day02.probes import resnet as R
from grader.packs.day02.probes import smoke as P
from grader.packs.day02.probes import train as T
from grader.packs.day02.probes.figures import learnable_batch
from grader.packs.day02.probes.roles import load_role_state
from grader.probes import ProbeFailure
from grader.sandbox.memory import give_back_freed

# The CPU case is as small as keeps E0 and E1 their power (loss 3.2 -> 0.05 in four steps; a
# loop that never steps stays at 3.2): 8 images, 2 steps x 2 epochs. It was 16 images and
# 4 x 3 steps: 9.9 s -> 1.7 s of training on 2 cores, and half the activations in a 768 MB box.
CPU_CASE = {"seed": 0, "batch": 8, "steps": 2, "epochs": 2, "lr": 0.05, "device": "cpu",
            "check": 8}
GPU_CASE = {"seed": 0, "batch": 512, "steps": 8, "epochs": 3, "lr": 0.05, "device": "cuda",
            "check": 64}
# Relative agreement of a float32 step 0 (another op order: ~1e-6) and of the criterion's
# first loss; on a GPU step 0 runs in TF32 and training under bf16 autocast.
TOLERANCE = {"cpu": {"step0": 1e-4, "claimed": 1e-3, "statistics": 1e-4},
             "cuda": {"step0": 2e-2, "claimed": 5e-2, "statistics": 2e-2}}
TRIED = ("training your ResNet18 with your train_one_epoch on a small fixed batch of "
         "CIFAR-shaped images, starting from the grader's weights (given by role)")
GATE_HINT = ("this property is scored on a run the grader can verify: fix your ResNet18's "
             "forward (see resnet18) or the training loop (see training) first")
_RUN: dict = {}  # {"handle": the student handle, "evidence": Evidence | ProbeFailure}
SMALL_TENSOR = 4096  # elements: the stem conv (64x3x3x3) and every BatchNorm tensor


@dataclass
class Evidence:
    """What the grader established about one smoke run (``got``: the student's reply)."""

    got: dict
    start: dict  # the reference's smoke_start on the same case
    case: dict
    problems: list[str] = field(default_factory=list)  # trained weights that did not load
    components: str = ""  # why the student's own ResNet18 / train_one_epoch are not proven
    loss_after: float = math.nan  # the grader's loss at the trained weights
    first_step: bool = False  # E0
    trained: bool = False  # E1
    weights_finite: bool = False  # every returned trained tensor

    @property
    def tolerance(self) -> dict[str, float]:
        return TOLERANCE[self.case["device"]]

    @property
    def loss_before(self) -> float:
        return self.start["step0"]["loss"]

    def verified(self) -> bool:
        return self.first_step or self.trained

    def require(self) -> None:
        """Fail unless the run is the student's own (their ResNet18 and train_one_epoch proven
        on the grader's other inputs) and E0 or E1 holds: a claim alone scores nothing."""
        if self.components:
            fail(TRIED, f"the run cannot be the one your code would do: {self.components}",
                 "your own ResNet18 and train_one_epoch, proven on the grader's inputs",
                 "the smoke test trains your ResNet18 with your train_one_epoch: both must "
                 "compute what the reference's do (see resnet18 and training)", raw=True)
        if self.verified():
            return
        mine = self.got["step0"]["loss"]
        fail(TRIED, "nothing the grader could verify: your step-0 loss was "
             f"{_g(mine)} where the reference's, with the same weights, is "
             f"{_g(self.loss_before)}, and {self.training_words()}",
             "your step-0 loss equal to the reference's, or trained weights that fit the "
             "batch", GATE_HINT, raw=True)

    def training_words(self) -> str:
        if self.problems:
            return ("your trained weights could not be loaded into the reference ResNet-18 "
                    f"by role ({'; '.join(self.problems[:3])})")
        return (f"your trained weights, loaded into the reference ResNet-18, give a loss of "
                f"{_g(self.loss_after)} on the batch (from {_g(self.loss_before)})")


def _g(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else repr(value)


def _reference_model(reference) -> torch.nn.Module:
    return importlib.import_module(f"{reference.package}.resnet").ResNet18(num_classes=10)


def reply_problem(got: dict) -> str:
    """Why the reply is not the shape smoke_run gives (empty if it is)."""
    def floats(value) -> bool:
        return type(value) is list and all(type(v) is float for v in value)

    step0 = got.get("step0")
    if type(step0) is not dict or type(step0.get("loss")) is not float \
            or type(step0.get("norms")) is not list:
        return "no step-0 loss and gradient norms"
    if not all(type(row) is list and len(row) == 2 and type(row[0]) is str
               and type(row[1]) is float for row in step0["norms"]):
        return "malformed step-0 gradient norms"
    if not floats(got.get("losses")):
        return "no list of losses"
    if type(got.get("epochs")) is not list or not all(floats(e) for e in got["epochs"]):
        return "malformed epoch summaries"
    trained = got.get("trained")
    if type(trained) is not dict or not all(type(v) is dict for v in trained.values()):
        return "no trained weights by role"
    if type(got.get("check")) is not dict:
        return "no train-mode check"
    return ""


def evaluate(got: dict, start: dict, case: dict, reference) -> Evidence:
    """E0 and E1 for one reply, computed here with the reference's code."""
    evidence = Evidence(got, start, case)
    tol = evidence.tolerance
    evidence.first_step = agrees(got["step0"]["loss"], evidence.loss_before, rtol=tol["step0"])
    model = _reference_model(reference)
    images, labels = learnable_batch(case["batch"], case["seed"])  # (N, 3, 32, 32), (N,)
    evidence.problems = load_role_state(model, got["trained"], images[:2])
    if not evidence.problems:
        n = case["check"]
        with torch.no_grad():
            model.train()  # batch statistics, as training saw them
            evidence.loss_after = float(F.cross_entropy(model(images[:n]), labels[:n]))
        evidence.trained = evidence.loss_after < 0.5 * evidence.loss_before
    evidence.weights_finite = all(bool(torch.isfinite(t).all()) for layer in got["trained"].values()
                                  for t in layer.values() if type(t) is torch.Tensor)
    # what the later checks read is small (BatchNorms, the stem conv); the 45 MB of trained
    # convs are done with: not kept while the rest of the grade runs in a 768 MB container
    got["trained"] = {role: {k: t for k, t in layer.items()
                             if type(t) is not torch.Tensor or t.numel() <= SMALL_TENSOR}
                      for role, layer in got["trained"].items()}
    return evidence


# What proves the run used the student's own code: a worker can train any ResNet-18 (a library's)
# from the grader's weights with any loop, so E0 and E1 alone prove only that some network was
# trained. The same submission's ResNet18 must give the reference's logits with the grader's
# weights (and not come from torchvision.models), and its train_one_epoch must do on the
# grader's tiny CNN either what the reference's returns (the (loss, accuracy) pair, lr 0) or
# what it does to the weights (lr 0.1): a loop with one bug (no step; the pair swapped) is
# still the student's own.
RESNET_CASE = {"num_classes": 10, "seed": 4, "batch": 2}
TRAIN_CASE = {"seed": 6, "batches": 2, "batch": 6, "size": 6, "width": 4, "classes": 3,
              "lr": 0.0, "momentum": 0.9, "weight_decay": 5e-4, "start": "train",
              "device_object": False, "right": 2}
STEP_CASE = {**TRAIN_CASE, "lr": 0.1, "right": None}


def components_problem(student, reference, static_scan) -> str:
    """'' when the submission's ResNet18 and train_one_epoch are proven its own, else why not."""
    found = static_scan.uses(static_scan.import_closure("resnet"), "torchvision.models",
                             "torchvision's models, which the exercise rules out")
    if found:
        return f"your ResNet18 uses torchvision.models ({found[0]})"
    try:
        got = student.run(R.resnet18_values, RESNET_CASE)
    except ProbeFailure as failure:
        return f"your ResNet18 could not be run ({failure.message})"
    want = reference.run(R.resnet18_values, RESNET_CASE)["eval"]
    scale = float(want.abs().max())
    if not agrees(got.get("eval"), want, rtol=1e-6, atol=1e-6 * max(scale, 1e-3)):
        return ("your ResNet18's logits, with the grader's weights by role, differ from the "
                "reference's")
    try:
        pair = student.run(T.train_epoch, TRAIN_CASE)["result"].get("values")
        stepped = student.run(T.train_epoch, STEP_CASE)["params"]
    except ProbeFailure as failure:
        return f"your train_one_epoch could not be run ({failure.message})"
    want_pair = reference.run(T.train_epoch, TRAIN_CASE)["result"]["values"]
    want_params = reference.run(T.train_epoch, STEP_CASE)["params"]
    pair_ok = type(pair) is list and len(pair) == 2 and all(
        agrees(v, w, rtol=1e-5, atol=1e-7) for v, w in zip(pair, want_pair, strict=True))
    params_ok = type(stepped) is list and len(stepped) == len(want_params) and all(
        agrees(v, w, rtol=1e-4, atol=1e-6) for v, w in zip(stepped, want_params, strict=True))
    if not (pair_ok or params_ok):
        return ("your train_one_epoch on the grader's tiny CNN neither returns the reference's "
                "(mean loss, accuracy) nor leaves the reference's weights")
    return ""


@pytest.fixture
def runs(student, reference, kit_note, static_scan) -> Evidence:
    """The student's run and what the grader established about it, once per submission."""
    if _RUN.get("handle") is not student:
        case = GPU_CASE if torch.cuda.is_available() else CPU_CASE
        give_back_freed()  # the grade's largest worker comes next (a 768 MB container)
        try:
            got: dict | ProbeFailure = student.run(P.smoke_run, case)
            if case is GPU_CASE and isinstance(got, dict) and got.get("no_gpu") is True:
                # the grader sees a GPU but the worker does not: say so, compare like with like
                kit_note("smoke_test: the grader has a GPU but the sandboxed worker could not "
                         "use it; the CPU run was graded instead.")
                case = CPU_CASE
                got = student.run(P.smoke_run, case)
            if isinstance(got, dict) and (problem := reply_problem(got)):
                got = ProbeFailure("invalid_result", f"the smoke run's reply is malformed: "
                                   f"{problem}")
        except ProbeFailure as failure:
            got = failure
        path = f"GPU: {got['device']}" if case is GPU_CASE and isinstance(got, dict) and \
            type(got.get("device")) is str else "CPU fallback: no GPU found"
        kit_note(f"smoke_test ran on {path}.")
        evidence: Evidence | ProbeFailure = got if isinstance(got, ProbeFailure) else \
            ProbeFailure("invalid_result", "no reply")
        if isinstance(got, dict):
            start = reference.run(P.smoke_start, case)
            evidence = evaluate(got, start, case, reference)
            evidence.components = components_problem(student, reference, static_scan)
        _RUN.update(handle=student, evidence=evidence)
    evidence = _RUN["evidence"]
    if isinstance(evidence, ProbeFailure):
        raise evidence
    return evidence


@pytest.mark.smoke_test
@pytest.mark.points(2)
def test_loss_falls(runs):
    """the training loss falls (a small fixed batch can be overfitted)

    Evidence: the grader loads the trained weights into the reference ResNet-18 and computes
    the loss on the batch itself (E1); the first loss your criterion saw must equal the
    reference's loss at the start weights.
    """
    losses, tol = runs.got["losses"], runs.tolerance
    if len(losses) < 2:
        fail(TRIED, f"{len(losses)} loss values were computed", "one per batch",
             "train_one_epoch must call criterion(outputs, labels) once per batch", raw=True)
    whole = runs.start["loss_whole"]
    if not agrees(losses[0], whole, rtol=tol["claimed"]):
        fail(TRIED, f"the first loss your criterion saw was {_g(losses[0])}",
             f"{_g(whole)}, the reference's loss on this batch at the same start weights",
             "the first batch's loss comes from the untrained model in train mode: look at "
             "what your loop (or your ResNet18) does before the first optimizer step",
             raw=True)
    if not runs.trained:
        fail(TRIED, runs.training_words(),
             f"at most half the start loss, {_g(0.5 * runs.loss_before)}",
             "zero the gradients, call loss.backward() then optimizer.step() on every batch",
             raw=True)
    runs.require()


@pytest.mark.smoke_test
@pytest.mark.points(1)
def test_no_nan_or_inf(runs):
    """no NaN or inf in losses or parameters

    Evidence: the returned trained weights and losses are all finite, on a run verified by
    E0 or E1.
    """
    if not all(math.isfinite(v) for v in runs.got["losses"]) or not runs.weights_finite:
        fail(TRIED, "NaN or inf appeared", "finite losses and weights",
             "check the learning rate and that nothing divides by zero", raw=True)
    runs.require()


@pytest.mark.smoke_test
@pytest.mark.points(1)
def test_every_conv_gets_gradient(runs):
    """every conv weight receives a finite, non-zero gradient at the first step

    Evidence: the per-layer step-0 gradient norms, by role, against the reference's layers, on
    a run verified by E0 or E1.
    """
    mine = dict((role, norm) for role, norm in runs.got["step0"]["norms"])
    convs = [role for role, _ in runs.start["step0"]["norms"] if role.startswith("conv")]
    dead = [role for role in convs if not (math.isfinite(mine.get(role, math.nan))
                                           and mine.get(role, 0.0) > 0)]
    if dead:
        fail("one forward/backward of your ResNet18 on the fixed batch",
             f"{len(dead)} of the reference's {len(convs)} convs got no usable gradient in "
             f"yours (e.g. {dead[0]}{' never ran' if dead[0] not in mine else ''})",
             "every conv reached by the gradient",
             "every conv must be used in forward (a layer built but never called gets none)",
             raw=True)
    runs.require()


@pytest.mark.smoke_test
@pytest.mark.points(1)
def test_grad_norms_in_reference_band(runs):
    """per-layer gradient norms at step 0 lie within the reference's band

    Evidence: each layer's step-0 gradient norm within a factor of 10 of the reference's layer
    of the same role (same start weights), on a run verified by E0 or E1.
    """
    mine = dict((role, norm) for role, norm in runs.got["step0"]["norms"])
    reference = runs.start["step0"]["norms"]
    outside = [f"{role}: {_g(mine.get(role, math.nan))} (reference {_g(ref)})"
               for role, ref in reference
               if not (mine.get(role, 0.0) > 0 and abs(math.log10(mine[role] / ref)) <= 1.0)]
    if outside or len(mine) != len(reference):
        fail("gradient norms of every conv and linear weight at step 0, by role",
             f"{len(mine)} layers, outside the band: {outside[:3]}",
             f"{len(reference)} layers, each within a factor of 10 of the reference's",
             "the ResNet-18 has 20 convs (17 on the main path, 3 shortcuts), a BatchNorm "
             "after each, and one Linear", raw=True)
    runs.require()


@pytest.mark.smoke_test
@pytest.mark.points(1)
def test_batchnorm_statistics_move(runs):
    """BatchNorm running statistics move during training

    Evidence: the trained running means against the grader's start values, on a run verified
    by E0 or E1.
    """
    start, trained = runs.start["statistics"], runs.got["trained"]
    moved = any(type(trained.get(role, {}).get("running_mean")) is torch.Tensor
                and trained[role]["running_mean"].shape == mean.shape
                and not torch.equal(trained[role]["running_mean"], mean.float())
                for role, (mean, _) in start.items())
    if not moved:
        fail(TRIED, "running means unchanged", "updated running statistics",
             "train_one_epoch must put the model in train mode (model.train())", raw=True)
    runs.require()


@pytest.mark.smoke_test
@pytest.mark.points(1)
def test_left_in_train_mode(runs):
    """the model is in train mode after train_one_epoch

    Evidence: after training, one forward on a batch the grader chose; the grader computes
    what that forward does to the stem BatchNorm's running statistics in train mode (from the
    trained stem conv) and compares.
    """
    check, trained = runs.got["check"], runs.got["trained"]
    stem = next(role for role in runs.start["roles"] if role.startswith("bn<"))
    conv = stem[3:-1]  # bn<conv[64x3x3x3]#0> -> conv[64x3x3x3]#0
    tried = (TRIED + "; then one forward of 8 other images, leaving the model in the mode "
             "train_one_epoch left it in")
    before, after = check.get("before"), check.get("after")
    weight = trained.get(conv, {}).get("weight")
    stats = trained.get(stem, {})
    if check.get("role") != stem or not _pair(before) or not _pair(after) \
            or type(weight) is not torch.Tensor or weight.shape != (64, 3, 3, 3) \
            or not agrees(before[0], stats.get("running_mean"), rtol=0.0) \
            or not agrees(before[1], stats.get("running_var"), rtol=0.0):
        fail(tried, "no stem conv and BatchNorm the grader could check",
             f"a stem {conv} followed by its BatchNorm",
             "the CIFAR stem: a 3x3 conv 3 -> 64 (no bias), then BatchNorm", raw=True)
    y = F.conv2d(P.check_batch(runs.case).double(), weight.double(), padding=1)  # (8, 64, 32, 32)
    momentum = 0.1  # BatchNorm2d's default
    want = [(1 - momentum) * before[0].double() + momentum * y.mean(dim=(0, 2, 3)),
            (1 - momentum) * before[1].double() + momentum * y.var(dim=(0, 2, 3))]
    rtol = runs.tolerance["statistics"]  # atol: a running mean near 0 on a GPU (TF32 convs)
    if all(agrees(a.double(), w, rtol=rtol, atol=rtol * float(w.abs().max()) + 1e-6)
           for a, w in zip(after, want, strict=True)):
        runs.require()  # (a zero stem conv moves nothing but by momentum: claims need E0/E1)
        return
    if all(torch.equal(a, b) for a, b in zip(after, before, strict=True)):
        fail(tried, "the running statistics did not move: the model was in eval mode",
             "train mode (batch statistics, running averages updated)",
             "call model.train() at the start of train_one_epoch and leave it in train mode",
             raw=True)
    fail(tried, "the stem BatchNorm's running statistics moved, but not by one train-mode step "
         "on this batch", "one step of momentum 0.1 toward the batch's statistics",
         "leave the model in train mode; keep BatchNorm2d's default momentum", raw=True)


def _pair(value) -> bool:
    return type(value) is list and len(value) == 2 and all(
        type(t) is torch.Tensor and t.shape == (64,) for t in value)


@pytest.mark.smoke_test
@pytest.mark.points(1)
def test_epoch_summary_matches_losses(runs):
    """train_one_epoch returns the epoch's mean loss and an accuracy in percent

    Evidence: each epoch's returned mean loss against the losses its criterion saw, on a run
    verified by E0 or E1.
    """
    got = runs.got
    steps = len(got["losses"]) // max(len(got["epochs"]), 1)
    if not got["epochs"] or steps < 1:
        fail(TRIED, "no epoch returned a summary", "(mean_loss, accuracy_percent) per epoch",
             raw=True)
    for i, summary in enumerate(got["epochs"]):
        if len(summary) != 2:
            fail(TRIED, f"epoch {i} returned {summary!r}", "(mean_loss, accuracy_percent)",
                 raw=True)
        mean = sum(got["losses"][i * steps:(i + 1) * steps]) / steps
        loss, acc = summary
        if not (agrees(loss, mean, rtol=1e-3, atol=1e-5) and 0 <= acc <= 100):
            fail(TRIED, f"epoch {i}: ({loss:.4g}, {acc:.4g})",
                 f"mean loss {mean:.4g} and an accuracy in [0, 100]",
                 "average the batch losses; accuracy = 100 * correct / seen", raw=True)
    runs.require()
