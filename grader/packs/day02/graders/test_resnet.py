"""Hidden graders for ``resnet.py``: exercises ``resnet18`` (12), ``plain_vs_residual`` (8) and
``init`` (6 points).

* ``resnet18``: values are compared with the reference in float64 after both got the same
  weights *by role* (probes/roles.py), so own names, a generic ``ResNet(block, [2, 2, 2, 2])``,
  a fixed 4x4 pool or ``torch.flatten`` all earn full marks. When outputs differ, the feedback
  names the first layer (in the student's run order) whose output differs. Shapes, parameter
  counts and where the classes come from are what the student's model reports: claims, scored
  only with every conv and BatchNorm giving the reference's output behind them
  (``require_layers``), and torchvision.models is also looked for in the source.
* ``plain_vs_residual``: the student's ``PlainNet`` and ``ResidualNet`` with the grader's
  weights by role, their logits and per-layer gradient norms (measured by the probe, not by the
  student's ``gradients.py``) equal to the reference's, at depths 6, 10 and 50; the grader
  computes the spreads ``log10(max / min)`` from them. With BatchNorm a deep plain net's norms
  *explode* toward the input (reference: spread 3.2-3.5 at depth 50, 0.6 at depth 10); the
  residual twin stays near 1.5 (1.0-1.3 at depth 10).
* ``init``: ``kaiming_init_`` on a model the probe defines (convs with in != out), so a broken
  ``BasicBlock`` costs no init points. The grader seeds torch's generator before the call and
  replays it: each conv weight must be that draw (normal; uniform counts for the std alone)
  times the Kaiming fan_out std; BatchNorms, biases and the head count with those draws behind
  them.

Every probe result is computed once per submission (``_cached``): several properties read one
ResNet-18 run. Probes are seeded and single-threaded, so a regrade gives the same report.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pytest
import torch

from grader.feedback import agrees, check_equal, fail, fail_on_findings
from grader.packs.day02.probes import resnet as P
from grader.probes import ProbeFailure

_CACHE: list[tuple[object, dict]] = []  # [(student handle, {probe+case: result or failure})]
_REFERENCE: dict[str, dict] = {}  # {solutions package: {probe+case: result}}: deterministic


def _cached(handle, probe, case: dict):
    """``handle.run(probe, case)``, once per handle (a failure is remembered too). The
    reference's results are kept for the whole process: in-process corpus runs grade many
    submissions against the same solutions."""
    store: dict | None
    if getattr(handle, "kind", None) == "reference":
        store = _REFERENCE.setdefault(str(handle.package), {})
    else:
        store = next((s for h, s in _CACHE if h is handle), None)
        if store is None:
            store = {}
            _CACHE[:] = [*_CACHE[-3:], (handle, store)]  # the last few handles only
    key = probe.probe_name + json.dumps(case, sort_keys=True)
    if key not in store:
        try:
            store[key] = handle.run(probe, case)
        except ProbeFailure as failure:
            store[key] = failure
    if isinstance(store[key], ProbeFailure):
        raise store[key]
    return store[key]


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def describe_role(role: str) -> str:
    """``bn<conv[128x64x3x3]#0>`` -> "the BatchNorm after the 1st 3x3 conv 64 -> 128"."""
    if role.startswith("bn<"):
        inner = role[3:].rsplit(">", 1)[0]
        return "the BatchNorm after " + (describe_role(inner) if inner != "input" else
                                         "the input")
    kind, _, rest = role.partition("[")
    shape, _, index = rest.partition("]#")
    dims = shape.removesuffix("+b").split("x")
    nth = ordinal(int(index) + 1) if index.isdigit() else "?"
    if kind == "conv" and len(dims) == 4:
        return f"the {nth} {dims[2]}x{dims[3]} conv {dims[1]} -> {dims[0]}"
    if kind == "linear" and len(dims) == 2:
        return f"the {nth} Linear {dims[1]} -> {dims[0]}"
    return role


# -- resnet18 ---------------------------------------------------------------------------------
CLASSES = 10
OTHER_CLASSES = 100
BUILD = {"num_classes": CLASSES, "seed": 0}
SHAPES = {"num_classes": CLASSES, "seed": 0, "batch": 2}
SHAPES_OTHER = {"num_classes": 7, "seed": 1, "batch": 3}
VALUES = {"num_classes": CLASSES, "seed": 0, "batch": 2}
STAGE_SHAPES = {"conv1": [64, 32, 32], "layer1": [64, 32, 32], "layer2": [128, 16, 16],
                "layer3": [256, 8, 8], "layer4": [512, 4, 4]}
ARCH_HINT = ("CIFAR ResNet-18: a 3x3 stride-1 stem conv (64, no bias) + BN + ReLU, no max-pool; "
             "layer1..layer4 of two BasicBlocks each, widths 64, 128, 256, 512, strides 1, 2, "
             "2, 2; global average pool, flatten, Linear(512, num_classes)")


@pytest.mark.resnet18
@pytest.mark.points(1)
def test_resnet18_output_shape(student, reference, kit_note):
    """ResNet18(num_classes) maps (N, 3, 32, 32) to logits (N, num_classes)

    Evidence: the output shapes your model reports, scored with its layers' outputs behind
    them (every conv and BatchNorm agrees with the reference's, weights by role).
    """
    for case in (SHAPES, SHAPES_OTHER):
        got = _cached(student, P.resnet18_shapes, case)
        tried = (f"ResNet18(num_classes={case['num_classes']}) on a batch of shape "
                 f"({case['batch']}, 3, {case.get('size', 32)}, {case.get('size', 32)})")
        hint = ("the head is Linear(512, num_classes) after a global average pool and "
                "flatten; use the num_classes argument")
        if got["output"] is None:
            fail(tried, got["error"], f"logits of shape ({case['batch']}, "
                 f"{case['num_classes']})", hint, raw=True)
        check_equal(got["output"], [case["batch"], case["num_classes"]],
                    tried + ": the output's shape", hint)
    require_layers(student, reference, kit_note, "ResNet18(): the output's shape")


@pytest.mark.resnet18
@pytest.mark.points(1.5)
def test_resnet18_parameter_count(student, reference, kit_note):
    """11,173,962 parameters for 10 classes, and the right count for 100 classes

    Evidence: the count your model reports, scored with its layers' outputs behind it.
    """
    for classes in (CLASSES, OTHER_CLASSES):
        case = {**BUILD, "num_classes": classes}
        expected = _cached(reference, P.resnet18_build, case)["params"]
        got = _cached(student, P.resnet18_build, case)["params"]
        if got != expected:
            fail(f"sum(p.numel() for p in ResNet18(num_classes={classes}).parameters())",
                 f"{got:,}", f"{expected:,}",
                 "convs carry no bias (the BatchNorm after each has the shift); 1x1 "
                 "projection shortcuts only where the shape changes (first block of layer2, "
                 "layer3, layer4); " + ARCH_HINT, raw=True)
    require_layers(student, reference, kit_note, "ResNet18(): its parameter count")


@pytest.mark.resnet18
@pytest.mark.points(2)
def test_resnet18_stage_shapes(student, reference, kit_note):
    """stem and layer1..layer4 give 64x32x32, 64x32x32, 128x16x16, 256x8x8, 512x4x4

    Evidence: the stage shapes your model reports, scored with its layers' outputs behind them.
    """
    got_all = _cached(student, P.resnet18_shapes, SHAPES)
    got, n = got_all["stages"], SHAPES["batch"]
    for stage, shape in STAGE_SHAPES.items():
        where = ("the input of layer1 (the stem's output)" if stage == "conv1"
                 else f"the output of model.{stage}")
        value, attr = got[stage], "layer1" if stage == "conv1" else stage
        if value != [n, *shape]:
            shown = f"shape {tuple(value)}" if isinstance(value, list) else {
                "missing": f"the model has no module attribute {attr}",
                "never ran": f"model.{attr} exists but was never called in forward (call the "
                             "stage itself, e.g. an nn.Sequential, so hooks on it see it run)",
            }.get(value, value)
            if value == "never ran" and "error" in got_all:
                shown = f"the forward failed before it ran: {got_all['error']}"
            fail(f"ResNet18() on a batch of shape ({n}, 3, 32, 32): {where}", shown,
                 f"shape {(n, *shape)}",
                 "the contract names the stages layer1 ... layer4 (attributes of the model); "
                 + ARCH_HINT, raw=True)
    require_layers(student, reference, kit_note, "ResNet18(): the shapes of its stages")


@pytest.mark.resnet18
@pytest.mark.points(2)
def test_resnet18_not_torchvision(student, reference, kit_note, static_scan):
    """built from your own code, not torchvision.models

    Evidence: the classes your model's modules report, scored with its layers' outputs behind
    them, and the grader's own reading of resnet.py and the modules it imports (as text, never
    run): no reference to torchvision.models.
    """
    found = static_scan.uses(static_scan.import_closure("resnet"), "torchvision.models",
                             "torchvision's models, which the exercise rules out")
    fail_on_findings(found, "the source of resnet.py and the modules it imports, read as text",
                     "no use of torchvision.models",
                     "the exercise is to build ResNet-18 yourself from your BasicBlock: "
                     "torchvision.models (and its blocks) may not be used")
    got = _cached(student, P.resnet18_build, BUILD)["torchvision"]
    if got:
        fail("ResNet18(): where the classes of its modules come from",
             f"modules of class {', '.join(got)}", "classes of your own (and torch.nn's)",
             "the exercise is to build ResNet-18 yourself from your BasicBlock: "
             "torchvision.models (and its blocks) may not be used", raw=True)
    require_layers(student, reference, kit_note, "ResNet18(): where its classes come from")


VALUES_TRIED = ("ResNet18() in float64, every conv, BatchNorm and Linear given the same values "
                "as the reference's layer of the same role (shape and run order, not name), "
                "on a batch of shape (2, 3, 32, 32)")


def _values(student, reference, kit_note) -> tuple[dict, dict]:
    got = _cached(student, P.resnet18_values, VALUES)
    expected = _cached(reference, P.resnet18_values, VALUES)
    mine = {role: name for role, name, *_ in got["layers"]}
    renamed = [f"{name} -> {mine[role]}" for role, name, *_ in expected["layers"]
               if role in mine and mine[role] != name]
    if renamed:
        kit_note("resnet18: your ResNet18 names its layers differently from the reference "
                 f"({', '.join(renamed[:4])}{', ...' if len(renamed) > 4 else ''}); fine for "
                 "grading, but checkpoints saved with the reference's names will not load")
    return got, expected


def first_divergence(got: dict, expected: dict) -> str:
    """Where the student's network first departs from the reference: a layer that one of the
    two runs and the other does not, else the first layer (in the student's run order) whose
    output differs in shape or value."""
    ref = {role: (name, shape, print_) for role, name, _, shape, print_ in expected["layers"]}
    mine = {role for role, *_ in got["layers"]}
    extra = [(role, name) for role, name, *_ in got["layers"] if role not in ref]
    missing = [(role, name) for role, name, *_ in expected["layers"] if role not in mine]
    if extra or missing:
        parts = []
        if extra:
            parts.append(f"your layer '{extra[0][1]}' ({describe_role(extra[0][0])}) has no "
                         "counterpart in the reference")
        if missing:
            parts.append(f"the reference runs {describe_role(missing[0][0])} "
                         f"('{missing[0][1]}'), which yours does not")
        return "; ".join(parts) + (f" ({len(got['layers'])} conv/BatchNorm/Linear layers ran in "
                                   f"yours, {len(expected['layers'])} in the reference)")
    for i, (role, name, _, shape, print_) in enumerate(got["layers"]):
        before = (f"; the {i} layer(s) that ran before it agree, so look at what happens "
                  "between them and this one (activation, pooling, skip connection, stride) "
                  "or at this layer itself") if i else ""
        ref_name, ref_shape, ref_print = ref[role]
        if shape != ref_shape:
            return (f"the first layer whose output differs is '{name}' ({describe_role(role)}): "
                    f"output shape {tuple(shape)}, reference {tuple(ref_shape)}{before}")
        if not _close(print_, ref_print):
            return (f"the first layer whose output differs is '{name}' ({describe_role(role)}, "
                    f"'{ref_name}' in the reference){before}")
    return ("every conv, BatchNorm and Linear agrees: look at what happens after the last "
            "of them")


def _close(got, expected, rtol: float = 1e-6) -> bool:
    if type(expected) is not torch.Tensor:
        return False
    scale = float(expected.abs().max()) if expected.numel() else 1.0
    return agrees(got, expected, rtol=rtol, atol=rtol * max(scale, 1e-3))


def layers_problem(got: dict, expected: dict, key: str = "layers") -> str:
    """'' when every conv and BatchNorm of the reference ran in the student's ResNet18 (by
    role) with the same output (fingerprint), else the first one that did not. The Linear
    head is left out: a pooling or flatten slip after the last BatchNorm keeps the evidence
    for the structure before it. ``key``: "layers" (eval mode) or "train_layers"."""
    value = got.get(key)
    rows: list = value if isinstance(value, list) else []
    mine = {row[0]: row for row in rows if type(row) is list and len(row) == 5}
    for role, _, kind, shape, print_ in expected[key]:
        if kind == "linear":
            continue
        row = mine.get(role)
        if row is None:
            return f"{describe_role(role)} does not run in yours"
        if row[3] != shape or not _close(row[4], print_):
            return f"the output of '{row[1]}' ({describe_role(role)}) differs"
    return ""


def require_layers(student, reference, kit_note, claim: str) -> None:
    """A structural claim scores only with the outputs behind it: every conv and BatchNorm of
    the student's ResNet18 gives the reference's output with the same weights by role."""
    got, expected = _values(student, reference, kit_note)
    problem = layers_problem(got, expected)
    if problem and not layers_problem(got, expected, "train_layers"):
        return  # train mode agrees layer by layer: an eval-only slip (running statistics)
    if problem:
        fail(f"{claim}, backed by the outputs of its layers: " + VALUES_TRIED,
             f"the claim cannot be verified: {problem}",
             "every conv and BatchNorm giving the reference's output",
             "structure is scored with the outputs behind it; see the value properties of "
             "resnet18 for where your network departs from the reference", raw=True)


def _check_values(got, expected: torch.Tensor, tried: str, what: str, where: str) -> None:
    """``what``: a plural noun ("logits", "input gradients")."""
    if type(got) is not torch.Tensor:
        fail(tried, f"the {what}: {got if isinstance(got, str) else 'a ' + type(got).__name__}",
             "a tensor", ARCH_HINT, raw=True)
    if got.shape != expected.shape:
        fail(tried, f"{what} of shape {tuple(got.shape)}", f"shape {tuple(expected.shape)}",
             where, raw=True)
    if not _close(got, expected):
        diff = (got - expected).abs().nan_to_num(math.inf).max().item()
        fail(tried, f"{what} that differ from the reference's by up to {diff:.3g}",
             "agreement within rtol 1e-6 (float64)", where, raw=True)


@pytest.mark.resnet18
@pytest.mark.points(2.5)
def test_resnet18_eval_values(student, reference, kit_note):
    """eval-mode logits equal the reference's with identical weights by role

    Evidence: float64 logits against the reference's with the same weights by role.
    """
    got, expected = _values(student, reference, kit_note)
    _check_values(got["eval"], expected["eval"], VALUES_TRIED + ", eval mode", "logits",
                  first_divergence(got, expected))


@pytest.mark.resnet18
@pytest.mark.points(1.5)
def test_resnet18_train_values(student, reference, kit_note):
    """train-mode logits (BatchNorm batch statistics) equal the reference's

    Evidence: float64 logits against the reference's with the same weights by role.
    """
    got, expected = _values(student, reference, kit_note)
    where = (first_divergence(got, expected) if not _close(got["eval"], expected["eval"])
             else "eval mode agrees, train mode does not: look for code that behaves "
             "differently in train mode (BatchNorm on batch statistics, dropout)")
    _check_values(got["train"], expected["train"], VALUES_TRIED + ", train mode", "logits",
                  where)


@pytest.mark.resnet18
@pytest.mark.points(1.5)
def test_resnet18_input_gradient(student, reference, kit_note):
    """the gradient w.r.t. the input equals the reference's (train mode)

    Evidence: the float64 input gradient against the reference's for the grader's upstream
    gradient.
    """
    got, expected = _values(student, reference, kit_note)
    where = (first_divergence(got, expected) if not _close(got["eval"], expected["eval"])
             else "build the forward from differentiable torch ops (no .detach(), .data, "
             "numpy or in-place writes into tensors autograd needs)")
    _check_values(got.get("grad_input"), expected["grad_input"],
                  VALUES_TRIED + ", train mode, then backward of a fixed upstream gradient",
                  "input gradients", where)


# -- plain_vs_residual ------------------------------------------------------------------------
DEEP, SHALLOW = 50, 10
PROFILE = {"num_classes": 10, "seed": 0, "batch": 8, "size": 16}
STRUCTURE = {"num_classes": 7, "seed": 3, "batch": 4, "size": 8, "depth": 6}
PLAIN_MARGIN = 0.7  # student's PlainNet(50) spread >= reference's - this (seeds vary by ~0.3)
RESIDUAL_MARGIN = 0.9  # student's ResidualNet(50) spread <= reference's + this
PLAIN_GROWTH = 1.5  # reference grows 2.6-2.9 orders of magnitude from depth 10 to 50
RESIDUAL_GROWTH = 1.2  # reference grows 0.2-0.6
NORM_RTOL = 1e-4  # float32, the same weights: only the order of operations differs
SPREAD_TRIED = ("{net}(num_classes=10, depth={depth}) with the grader's weights (the same as "
                "the reference's, layer by layer by role), train mode; one "
                "cross-entropy backward on a fixed batch of shape (8, 3, 16, 16); the L2 norm "
                "of each weight's gradient (dim >= 2); spread = log10(max / min)")


def _profile(handle, net: str, depth: int, case: dict = PROFILE) -> dict:
    return _cached(handle, P.net_profile, {**case, "net": net, "depth": depth})


def spread(profile: dict) -> float:
    values = [row[2] for row in profile.get("norms", [])]
    if not values or min(values) <= 0 or not all(math.isfinite(v) for v in values):
        return math.inf
    return math.log10(max(values) / min(values))


def profile_problem(got: dict, expected: dict) -> str:
    """'' when the student's net ran the reference's layers (by role, in order) and gave the
    reference's logits and per-layer gradient norms, else the first difference, in words."""
    if got["roles"] != expected["roles"]:
        mine, theirs = got["roles"], expected["roles"]
        where = next((i for i, (a, b) in enumerate(zip(mine, theirs, strict=False))
                      if a != b), min(len(mine), len(theirs)))
        return (f"{len(mine)} layers ran in yours, {len(theirs)} in the reference; they first "
                f"differ at layer {where + 1}")
    if "logits" not in got:
        return f"the output has shape {got['output']}"
    if not _close(got["logits"], expected["logits"], rtol=NORM_RTOL):
        return "the logits differ from the reference's with the same weights"
    for (role, name, mine), (_, _, theirs) in zip(got["norms"], expected["norms"], strict=True):
        if not agrees(mine, theirs, rtol=NORM_RTOL):
            return (f"the gradient norm of '{name}' ({describe_role(role)}) is {mine:.6g}, the "
                    f"reference's {theirs:.6g}")
    return ""


def _verified(student, reference, net: str, depth: int, case: dict = PROFILE) -> dict:
    """The student's profile, failing unless it is the reference's (the evidence)."""
    got = _profile(student, net, depth, case)
    expected = _profile(reference, net, depth, case)
    problem = profile_problem(got, expected)
    if problem:
        mine = spread(got)
        shown = f"spread {mine:.2f}; " if math.isfinite(mine) else ""
        fail(SPREAD_TRIED.format(net=net, depth=depth), shown + problem,
             f"the reference's layers, logits and gradient norms (its spread: "
             f"{spread(expected):.2f})", _net_hint(net, depth), raw=True)
    return got


def _net_hint(net: str, depth: int) -> str:
    if net == "PlainNet":
        return (f"depth counts weight layers: a stem conv 3 -> 64, depth - 2 = {depth - 2} "
                "convs 64 -> 64, each followed by BatchNorm and ReLU, then pool and "
                "Linear(64, num_classes); no shortcut anywhere")
    return (f"depth counts weight layers: a stem conv 3 -> 64 + BN + ReLU, (depth - 2) // 2 "
            f"= {(depth - 2) // 2} BasicBlock(64, 64) of two convs each, pool, "
            "Linear(64, num_classes)")


def _where(profile: dict) -> str:
    norms = profile["norms"]
    low = min(range(len(norms)), key=lambda i: norms[i][2])
    high = max(range(len(norms)), key=lambda i: norms[i][2])
    return (f"largest at {norms[high][1]} ({norms[high][2]:.3g}), smallest at "
            f"{norms[low][1]} ({norms[low][2]:.3g})")


def _structure(net: str, got: dict, case: dict) -> None:
    """depth weighted layers (convs then the Linear head), width 64, a BN after every conv."""
    depth, classes, batch, size = case["depth"], case["num_classes"], case["batch"], case["size"]
    tried = (f"{net}(num_classes={classes}, depth={depth}) on a batch of shape "
             f"({batch}, 3, {size}, {size})")
    hint = _net_hint(net, depth)
    layers = got["layers"]
    weighted = [row for row in layers if row[0] != "bn"]
    kinds = ", ".join(f"{k} {a}->{b}" for k, _, a, b in weighted[:4])
    expected = [["conv", 3, 64]] + [["conv", 64, 64]] * (depth - 2) + [["linear", 64, classes]]
    if [[k, a, b] for k, _, a, b in weighted] != expected:
        fail(tried, f"{len(weighted)} weight layers ran ({kinds}, ...; last: "
             f"{weighted[-1][0]} {weighted[-1][2]}->{weighted[-1][3]})" if weighted
             else "no conv or linear layer ran",
             f"{depth}: conv 3->64, {depth - 2} x conv 64->64, linear 64->{classes}", hint,
             raw=True)
    norms = sum(row[0] == "bn" for row in layers)
    if norms != depth - 1:
        fail(tried, f"{norms} BatchNorm layers ran", f"{depth - 1}, one after each conv", hint,
             raw=True)
    check_equal(got["output"], [batch, classes], tried + ": the output's shape", hint)


def _structures(student, reference, net: str) -> None:
    for case in (STRUCTURE, {**PROFILE, "depth": DEEP}):
        _structure(net, _profile(student, net, case["depth"], case), case)
        _verified(student, reference, net, case["depth"], case)


@pytest.mark.plain_vs_residual
@pytest.mark.points(1.5)
def test_plain_structure(student, reference):
    """PlainNet(depth) has depth weight layers of width 64 and outputs (N, num_classes)

    Evidence: the layers that ran, scored with the reference's logits and gradient norms
    behind them (the same weights by role), at depths 6 and 50.
    """
    _structures(student, reference, "PlainNet")


@pytest.mark.plain_vs_residual
@pytest.mark.points(1.5)
def test_residual_structure(student, reference):
    """ResidualNet(depth) has (depth-2)//2 blocks: depth weight layers, width 64, (N, classes)

    Evidence: the layers that ran, scored with the reference's logits and gradient norms
    behind them (the same weights by role), at depths 6 and 50.
    """
    _structures(student, reference, "ResidualNet")


@pytest.mark.plain_vs_residual
@pytest.mark.points(1)
def test_residual_skips(student, reference):
    """ResidualNet's blocks have identity skips: with every branch zeroed, the signal flows

    Evidence: the output with every residual branch zeroed equals the reference's (the same
    weights by role, the same branches zeroed), with ResidualNet(10)'s logits and gradient
    norms equal to the reference's behind it (a stem and a head alone give the zeroed output).
    """
    case = {"num_classes": 10, "seed": 2, "batch": 4, "size": 8, "depth": SHALLOW}
    got = _cached(student, P.residual_off, case)
    expected = _cached(reference, P.residual_off, case)
    blocks = (SHALLOW - 2) // 2
    tried = (f"ResidualNet(depth={SHALLOW}) with the grader's weights by role, eval mode, the "
             "BatchNorm that ends each block's residual branch (after its second 3x3 conv) set "
             "to weight 0 and bias 0")
    hint = ("each block returns relu(branch(x) + x): with the branch at 0 it passes its input "
            "on, so the stem's features reach the head; without the skip they are lost")
    if len(got["zeroed"]) != blocks:
        fail(tried, f"{len(got['zeroed'])} such BatchNorms ran", f"{blocks}, one per block",
             hint, raw=True)
    out = got["output"]
    if type(out) is torch.Tensor and out.dim() == 2 and bool(torch.isfinite(out).all()) \
            and float((out - out.mean(dim=0)).abs().max()) < 1e-6:
        fail(tried, "every sample got the same logits: nothing of the input reaches the head",
             "logits that still depend on the input", hint, raw=True)
    if not _close(out, expected["output"], rtol=NORM_RTOL):
        fail(tried, f"the output: {_describe_output(out, expected['output'])}",
             "the reference's output with the same weights and branches zeroed", hint,
             raw=True)
    # with every branch at 0 the output needs no block at all (a stem and a head give it): the
    # blocks behind it are proven by the whole net's logits and gradient norms at this depth
    _verified(student, reference, "ResidualNet", SHALLOW)


def _describe_output(out, expected: torch.Tensor) -> str:
    if type(out) is not torch.Tensor:
        return f"{out!r}"[:80]
    if out.shape != expected.shape:
        return f"shape {tuple(out.shape)} (expected {tuple(expected.shape)})"
    if not bool(torch.isfinite(out).all()):
        return "NaN or inf"
    return f"differs by up to {(out - expected).abs().max().item():.3g}"


@pytest.mark.plain_vs_residual
@pytest.mark.points(1.5)
def test_plain_spread_large(student, reference):
    """PlainNet(50)'s gradient norms spread over orders of magnitude (like the reference's)

    Evidence: per-layer gradient norms with the grader's weights, equal to the reference's
    (the spread is the grader's own, from them).
    """
    got = _verified(student, reference, "PlainNet", DEEP)
    mine, ref = spread(got), spread(_profile(reference, "PlainNet", DEEP))
    if not mine >= ref - PLAIN_MARGIN:
        fail(SPREAD_TRIED.format(net="PlainNet", depth=DEEP), f"spread {mine:.2f} "
             f"({_where(got)})", f"at least {ref - PLAIN_MARGIN:.2f} (the reference: {ref:.2f},"
             " norms growing about a thousandfold toward the input)",
             "a plain stack of conv-BN-ReLU layers with no shortcut anywhere: with BatchNorm "
             "its gradient norms explode toward the input", raw=True)


@pytest.mark.plain_vs_residual
@pytest.mark.points(1.5)
def test_residual_spread_small(student, reference):
    """ResidualNet(50)'s gradient norms stay within a narrow band (like the reference's)

    Evidence: per-layer gradient norms with the grader's weights, equal to the reference's
    (the spread is the grader's own, from them).
    """
    got = _verified(student, reference, "ResidualNet", DEEP)
    mine, ref = spread(got), spread(_profile(reference, "ResidualNet", DEEP))
    if not mine <= ref + RESIDUAL_MARGIN:
        fail(SPREAD_TRIED.format(net="ResidualNet", depth=DEEP), f"spread {mine:.2f} "
             f"({_where(got)})", f"at most {ref + RESIDUAL_MARGIN:.2f} (the reference: "
             f"{ref:.2f})", "every pair of convs sits in a BasicBlock whose identity skip adds "
             "its input back (dy/dx = I + dF/dx): the gradient reaches early layers "
             "undiminished", raw=True)


@pytest.mark.plain_vs_residual
@pytest.mark.points(1)
def test_spread_grows_with_depth_without_skips(student, reference):
    """from depth 10 to 50 the plain net's spread grows a lot, the residual net's barely

    Evidence: per-layer gradient norms of both nets at depths 10 and 50 with the grader's
    weights, equal to the reference's.
    """
    def growth(handle, net: str, check: bool) -> tuple[float, float]:
        profiles = [(_verified(student, reference, net, d) if check else _profile(handle, net, d))
                    for d in (SHALLOW, DEEP)]
        return spread(profiles[0]), spread(profiles[1])

    (p10, p50), (r10, r50) = growth(student, "PlainNet", True), growth(student, "ResidualNet",
                                                                         True)
    (rp10, rp50) = growth(reference, "PlainNet", False)
    (rr10, rr50) = growth(reference, "ResidualNet", False)
    if not (p50 - p10 >= PLAIN_GROWTH and r50 - r10 <= RESIDUAL_GROWTH):
        fail(f"PlainNet and ResidualNet (num_classes=10) at depths {SHALLOW} and {DEEP}, each "
             "with the grader's weights; spreads measured as in the two properties above",
             f"PlainNet {p10:.2f} -> {p50:.2f}, ResidualNet {r10:.2f} -> {r50:.2f}",
             f"the plain spread growing by at least {PLAIN_GROWTH} and the residual one by at "
             f"most {RESIDUAL_GROWTH} (the reference: PlainNet {rp10:.2f} -> {rp50:.2f}, "
             f"ResidualNet {rr10:.2f} -> {rr50:.2f})",
             "depth, not the layers themselves, makes a plain net's norms uneven; the skips "
             "keep the residual net's spread nearly independent of depth", raw=True)


# -- init -------------------------------------------------------------------------------------
INIT = {"seed": 0}
INIT_TRIED = ("kaiming_init_(model) on the grader's model: Conv2d(16, 96, 5, bias=True), "
              "BatchNorm2d(96), ReLU, Conv2d(96, 32, 3, bias=False), BatchNorm2d(32), ReLU, "
              "Linear(32, 10), with BatchNorm weights in [2, 3], biases in [0.5, 1.5], and "
              "torch's global generator seeded just before the call")
INIT_HINT = ("for every nn.Conv2d: nn.init.kaiming_normal_(weight, mode='fan_out', "
             "nonlinearity='relu'), so std = sqrt(2 / (out_channels * kh * kw))")
DRAW_RTOL = 1e-5  # float32 rounding of one multiplication per value


@dataclass(frozen=True)
class Draw:
    """How one returned conv weight relates to the grader's replay of the generator: the
    weight is ``scale`` times the replayed ``kind`` ("normal", "uniform" on [-1, 1]) draw, or
    ``kind`` is "" when it is neither (not a fresh draw from the seeded generator)."""

    kind: str
    scale: float
    shape: tuple[int, ...]

    @property
    def std(self) -> float:
        """The std of the distribution drawn from (a uniform on [-b, b] has b / sqrt(3))."""
        return self.scale if self.kind == "normal" else self.scale / math.sqrt(3)


def replay(case: dict) -> dict:
    """What the grader knows without the student: the model's Linear head as built, and the
    normal and uniform draws torch's generator gives for each conv weight after the seed."""
    model = P.init_model(case)
    shapes = [m.weight.shape for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    draws = {}
    with torch.random.fork_rng():
        for kind in ("normal", "uniform"):
            torch.manual_seed(case["seed"] + 1)
            draws[kind] = [torch.empty(s).normal_() if kind == "normal"
                           else torch.empty(s).uniform_(-1, 1) for s in shapes]
    return {"head": [model.head.weight.detach(), model.head.bias.detach()], "draws": draws,
            "shapes": shapes}


def draws(got: dict, case: dict = INIT) -> list[Draw]:
    """Each returned conv weight against the replayed draws (see ``Draw``)."""
    known = replay(case)
    weights = got["conv_weights"]
    out = []
    for i, shape in enumerate(known["shapes"]):
        w = weights[i] if type(weights) is list and i < len(weights) else None
        found = Draw("", math.nan, tuple(shape))
        if isinstance(w, torch.Tensor) and type(w) is torch.Tensor and w.shape == shape \
                and w.dtype == torch.float32 and bool(torch.isfinite(w).all()) \
                and float(w.norm()) > 0:
            w64 = w.double()  # float32 sums of squares of huge values overflow to inf
            for kind, zs in known["draws"].items():
                z = zs[i].double()
                scale = float((w64 * z).sum() / (z * z).sum())
                residual, size = float((w64 - scale * z).norm()), float(w64.norm())
                if math.isfinite(size) and residual <= DRAW_RTOL * size and scale > 0:
                    found = Draw(kind, scale, tuple(shape))
        out.append(found)
    return out


def _init(student) -> dict:
    got = _cached(student, P.init_stats, INIT)
    if type(got.get("conv_weights")) is not list or len(got["conv_weights"]) != 2:
        fail(INIT_TRIED, "the probe's reply has no conv weights", "two conv weights",
             INIT_HINT, raw=True)
    return got


def require_draw(got: dict, what: str) -> None:
    """A claim about kaiming_init_ scores only when it visibly ran: every conv weight is a
    fresh draw (normal or uniform, any scale) from the generator the grader seeded."""
    missing = [d for d in draws(got) if not d.kind]
    if missing:
        fail(f"{INIT_TRIED}: {what}", "the claim cannot be verified: the conv weight of shape "
             f"{missing[0].shape} is not a fresh draw from the seeded generator "
             f"({_stats_words(got, missing[0].shape)})",
             "conv weights drawn by your kaiming_init_ from torch's global generator",
             "what kaiming_init_ does to BatchNorms, biases and the head is scored together "
             "with its convs: initialise every nn.Conv2d in place with torch.nn.init (the "
             "grader replays the generator it seeded)", raw=True)


def _stats_words(got: dict, shape: tuple[int, ...]) -> str:
    """std, mean and kurtosis of the returned weight of this shape, computed here."""
    w = next((t for t in got["conv_weights"] if type(t) is torch.Tensor
              and tuple(t.shape) == shape), None)
    if w is None or not bool(torch.isfinite(w).all()) or w.numel() < 2:
        return "no usable weight of that shape came back"
    v = w.detach().double().flatten()
    z = (v - v.mean()) / v.std()
    kurt = float((z ** 4).mean() - 3.0)
    verdict = _std_verdict(float(v.std()), list(shape))
    return (f"its std is {float(v.std()):.4g}{verdict}, mean {float(v.mean()):.3g}, excess "
            f"kurtosis {kurt:.2f}")


def _std_verdict(std: float, shape: list[int]) -> str:
    """What a wrong std looks like: fan_in, no ReLU gain, or something else."""
    guesses = {"mode='fan_in'": P.kaiming_std(shape, "fan_in"),
               "gain 1 instead of ReLU's sqrt(2)": P.kaiming_std(shape, "fan_out") / math.sqrt(2),
               "mode='fan_out'": P.kaiming_std(shape, "fan_out")}
    for name, want in guesses.items():
        if abs(std / want - 1) < 0.05:
            return f" (what {name} gives)"
    return ""


@pytest.mark.init
@pytest.mark.points(0.5)
def test_init_returns_model(student):
    """kaiming_init_ returns the model it was given

    Evidence: what the call returned, scored with the conv weights it drew behind it.
    """
    got = _init(student)
    returned = got["returned"]
    if returned != "the model":
        fail(INIT_TRIED + ": what it returned", returned, "the model itself",
             "initialise in place, then `return model` (so calls can be chained)", raw=True)
    require_draw(got, "what it returned")


@pytest.mark.init
@pytest.mark.points(2.5)
def test_init_conv_std_fan_out(student):
    """conv weights have mean 0 and std sqrt(2 / fan_out)

    Evidence: each returned conv weight is the grader's replay of the seeded generator times
    sqrt(2 / fan_out) (a normal draw; a uniform one with that std counts too).
    """
    got = _init(student)
    for draw in draws(got):
        want = P.kaiming_std(list(draw.shape), "fan_out")
        tried = f"{INIT_TRIED}: the conv weight of shape {draw.shape}"
        if not draw.kind:
            fail(tried, f"not a fresh draw from the seeded generator "
                 f"({_stats_words(got, draw.shape)})", f"a draw with std {want:.4g}",
                 INIT_HINT + "; draw from torch's global generator (torch.nn.init does)",
                 raw=True)
        if not agrees(draw.std, want, rtol=1e-4):
            fail(tried, f"std {draw.std:.4g}{_std_verdict(draw.std, list(draw.shape))}",
                 f"std {want:.4g} = sqrt(2 / fan_out), fan_out = {draw.shape[0]} * "
                 f"{draw.shape[2]} * {draw.shape[3]}", INIT_HINT, raw=True)


@pytest.mark.init
@pytest.mark.points(1)
def test_init_conv_normal(student):
    """conv weights are normally distributed (a normal draw, not a uniform one)

    Evidence: each returned conv weight is a multiple of the grader's replay of a normal draw
    from the seeded generator.
    """
    got = _init(student)
    for draw in draws(got):
        if draw.kind != "normal":
            what = "a uniform draw" if draw.kind == "uniform" else (
                f"not a normal draw from the seeded generator ({_stats_words(got, draw.shape)})")
            fail(f"{INIT_TRIED}: the conv weight of shape {draw.shape}", what,
                 "a normal draw (kaiming_normal_)", "kaiming_normal_, not kaiming_uniform_",
                 raw=True)


@pytest.mark.init
@pytest.mark.points(1)
def test_init_batchnorm(student):
    """BatchNorm weights are set to 1 and biases to 0

    Evidence: the returned BatchNorm tensors, scored with the conv weights the call drew.
    """
    got = _init(student)
    for key, value in (("bn_weight", 1.0), ("bn_bias", 0.0)):
        tensor = got[key]
        if type(tensor) is not torch.Tensor or tensor.shape != (128,) or not torch.equal(
                tensor, torch.full_like(tensor, value)):
            wrong = tensor[tensor != value] if type(tensor) is torch.Tensor else tensor
            shown = (f"{wrong.numel()} values other than {value:g}, e.g. {wrong[0].item():.3g}"
                     if type(wrong) is torch.Tensor and wrong.numel() else f"{tensor!r}"[:80])
            fail(f"{INIT_TRIED}: every BatchNorm's {key.split('_')[1]}", shown,
                 f"all {value:g}", "for every nn.BatchNorm2d: weight 1 (ones_), bias 0 "
                 "(zeros_)", raw=True)
    require_draw(got, "the BatchNorms")


@pytest.mark.init
@pytest.mark.points(0.5)
def test_init_conv_bias_zero(student):
    """conv biases, where present, are set to 0

    Evidence: the returned conv bias, scored with the conv weights the call drew.
    """
    got = _init(student)
    bias = got["conv_bias"]
    if type(bias) is not torch.Tensor or bias.shape != (96,) or bool((bias != 0).any()):
        shown = (f"values up to {bias.abs().max().item():.3g} in absolute value"
                 if type(bias) is torch.Tensor and bias.numel() else f"{bias!r}"[:80])
        fail(f"{INIT_TRIED}: the bias of Conv2d(16, 96, 5, bias=True)", shown, "all 0",
             "a conv that has a bias: nn.init.zeros_(bias) after initialising its weight",
             raw=True)
    require_draw(got, "the conv bias")


@pytest.mark.init
@pytest.mark.points(0.5)
def test_init_linear_untouched(student):
    """Linear layers keep their default init, as in the reference

    Evidence: the returned head against the grader's own replay of the model as built,
    scored with the conv weights the call drew.
    """
    got = _init(student)
    head = got["head"]
    built = replay(INIT)["head"]
    if type(head) is not list or len(head) != 2 or not all(
            agrees(h, b, rtol=0.0) for h, b in zip(head, built, strict=True)):
        fail(f"{INIT_TRIED}: the Linear head before and after", "its weight or bias changed",
             "unchanged", "the contract initialises convs and BatchNorms only; Linear layers "
             "keep PyTorch's default (as torchvision's ResNet does)", raw=True)
    require_draw(got, "the Linear head")
