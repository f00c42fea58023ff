"""Hidden graders for ``resnet.py``: exercises ``resnet18`` (12), ``plain_vs_residual`` (8) and
``init`` (6 points).

* ``resnet18``: shapes, parameter counts and where the classes come from are read from the
  student's model; values are compared with the reference in float64 after both got the same
  weights *by role* (probes/roles.py), so own names, a generic ``ResNet(block, [2, 2, 2, 2])``,
  a fixed 4x4 pool or ``torch.flatten`` all earn full marks. When outputs differ, the feedback
  names the first layer (in the student's run order) whose output differs.
* ``plain_vs_residual``: per-layer gradient norms of the student's ``PlainNet`` and
  ``ResidualNet`` at their own default initialisation, measured by the probe (not by the
  student's ``gradients.py``), depth 50 and a shallow control at depth 10, graded on the
  spread ``log10(max / min)``. With BatchNorm a deep plain net's norms *explode* toward the
  input (reference: spread 3.2-3.5 at depth 50 across seeds, 0.6 at depth 10); the residual
  twin stays near 1.4-1.6 (1.0-1.2 at depth 10). Thresholds are the reference's own spread on
  the same case with a margin of 0.7-0.9 (several times the seed-to-seed variation of 0.1-0.3).
* ``init``: ``kaiming_init_`` on a model the probe defines (convs with in != out), so a broken
  ``BasicBlock`` costs no init points; weight statistics are tested against the formula with
  tolerances of more than ten standard errors.

Every probe result is computed once per submission (``_cached``): several properties read one
ResNet-18 run. Probes are seeded and single-threaded, so a regrade gives the same report.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from grader.feedback import check_equal, fail
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
def test_resnet18_output_shape(student):
    """ResNet18(num_classes) maps (N, 3, 32, 32) to logits (N, num_classes)"""
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


@pytest.mark.resnet18
@pytest.mark.points(1.5)
def test_resnet18_parameter_count(student, reference):
    """11,173,962 parameters for 10 classes, and the right count for 100 classes"""
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


@pytest.mark.resnet18
@pytest.mark.points(2)
def test_resnet18_stage_shapes(student):
    """stem and layer1..layer4 give 64x32x32, 64x32x32, 128x16x16, 256x8x8, 512x4x4"""
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


@pytest.mark.resnet18
@pytest.mark.points(2)
def test_resnet18_not_torchvision(student):
    """built from your own code, not torchvision.models"""
    got = _cached(student, P.resnet18_build, BUILD)["torchvision"]
    if got:
        fail("ResNet18(): where the classes of its modules come from",
             f"modules of class {', '.join(got)}", "classes of your own (and torch.nn's)",
             "the exercise is to build ResNet-18 yourself from your BasicBlock: "
             "torchvision.models (and its blocks) may not be used", raw=True)


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
    if type(got) is not torch.Tensor or type(expected) is not torch.Tensor \
            or got.shape != expected.shape:
        return False
    scale = float(expected.abs().max()) if expected.numel() else 1.0
    return bool(torch.isfinite(got).all()) and torch.allclose(got, expected, rtol=rtol,
                                                              atol=rtol * max(scale, 1e-3))


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
    """eval-mode logits equal the reference's with identical weights by role"""
    got, expected = _values(student, reference, kit_note)
    _check_values(got["eval"], expected["eval"], VALUES_TRIED + ", eval mode", "logits",
                  first_divergence(got, expected))


@pytest.mark.resnet18
@pytest.mark.points(1.5)
def test_resnet18_train_values(student, reference, kit_note):
    """train-mode logits (BatchNorm batch statistics) equal the reference's"""
    got, expected = _values(student, reference, kit_note)
    where = (first_divergence(got, expected) if not _close(got["eval"], expected["eval"])
             else "eval mode agrees, train mode does not: look for code that behaves "
             "differently in train mode (BatchNorm on batch statistics, dropout)")
    _check_values(got["train"], expected["train"], VALUES_TRIED + ", train mode", "logits",
                  where)


@pytest.mark.resnet18
@pytest.mark.points(1.5)
def test_resnet18_input_gradient(student, reference, kit_note):
    """the gradient w.r.t. the input equals the reference's (train mode)"""
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
SPREAD_TRIED = ("{net}(num_classes=10, depth={depth}) at its default init, train mode; one "
                "cross-entropy backward on a fixed batch of shape (8, 3, 16, 16); the L2 norm "
                "of each weight's gradient (dim >= 2); spread = log10(max / min)")


def _profile(handle, net: str, depth: int) -> dict:
    return _cached(handle, P.net_profile, {**PROFILE, "net": net, "depth": depth})


def spread(profile: dict) -> float:
    values = [v for _, v in profile.get("norms", [])]
    if not values or min(values) <= 0 or not all(math.isfinite(v) for v in values):
        return math.inf
    return math.log10(max(values) / min(values))


def _spread_of(handle, net: str, depth: int) -> tuple[float, str]:
    """(spread, the probe's description); fails with why when there are no norms."""
    profile = _profile(handle, net, depth)
    tried = SPREAD_TRIED.format(net=net, depth=depth)
    if "norms" not in profile:
        fail(tried, f"the output has shape {profile['output']}", "shape (8, 10)",
             f"{net} ends in a Linear(64, num_classes) after a global average pool", raw=True)
    return spread(profile), tried


def _where(profile: dict) -> str:
    norms = profile["norms"]
    low = min(range(len(norms)), key=lambda i: norms[i][1])
    high = max(range(len(norms)), key=lambda i: norms[i][1])
    return (f"largest at {norms[high][0]} ({norms[high][1]:.3g}), smallest at "
            f"{norms[low][0]} ({norms[low][1]:.3g})")


def _structure(net: str, got: dict, case: dict) -> None:
    """depth weighted layers (convs then the Linear head), width 64, a BN after every conv."""
    depth, classes, batch, size = case["depth"], case["num_classes"], case["batch"], case["size"]
    tried = (f"{net}(num_classes={classes}, depth={depth}) on a batch of shape "
             f"({batch}, 3, {size}, {size})")
    if net == "PlainNet":
        hint = (f"depth counts weight layers: a stem conv 3 -> 64, depth - 2 = {depth - 2} "
                "convs 64 -> 64, each followed by BatchNorm and ReLU, then pool and "
                "Linear(64, num_classes)")
    else:
        hint = (f"depth counts weight layers: a stem conv 3 -> 64 + BN + ReLU, (depth - 2) // 2 "
                f"= {(depth - 2) // 2} BasicBlock(64, 64) of two convs each, pool, "
                "Linear(64, num_classes)")
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


def _structures(student, net: str) -> None:
    for case in (STRUCTURE, {**PROFILE, "depth": DEEP}):
        _structure(net, _cached(student, P.net_profile, {**case, "net": net}), case)


@pytest.mark.plain_vs_residual
@pytest.mark.points(1.5)
def test_plain_structure(student):
    """PlainNet(depth) has depth weight layers of width 64 and outputs (N, num_classes)"""
    _structures(student, "PlainNet")


@pytest.mark.plain_vs_residual
@pytest.mark.points(1.5)
def test_residual_structure(student):
    """ResidualNet(depth) has (depth-2)//2 blocks: depth weight layers, width 64, (N, classes)"""
    _structures(student, "ResidualNet")


@pytest.mark.plain_vs_residual
@pytest.mark.points(1)
def test_residual_skips(student):
    """ResidualNet's blocks have identity skips: with every branch zeroed, the signal flows"""
    case = {"num_classes": 10, "seed": 2, "batch": 4, "size": 8, "depth": SHALLOW}
    got = _cached(student, P.residual_off, case)
    blocks = (SHALLOW - 2) // 2
    tried = (f"ResidualNet(depth={SHALLOW}), eval mode, the BatchNorm that ends each block's "
             "residual branch (after its second 3x3 conv) set to weight 0 and bias 0")
    hint = ("each block returns relu(branch(x) + x): with the branch at 0 it passes its input "
            "on, so the stem's features reach the head; without the skip they are lost")
    if len(got["zeroed"]) != blocks:
        fail(tried, f"{len(got['zeroed'])} such BatchNorms ran", f"{blocks}, one per block",
             hint, raw=True)
    out = got["output"]
    if type(out) is not torch.Tensor or out.dim() != 2 or not torch.isfinite(out).all():
        fail(tried, f"the output is {out}", "finite logits of shape (4, 10)", hint, raw=True)
    varies = float((out - out.mean(dim=0)).abs().max())
    if varies < 1e-6:
        fail(tried, "every sample got the same logits: nothing of the input reaches the head",
             "logits that still depend on the input", hint, raw=True)


@pytest.mark.plain_vs_residual
@pytest.mark.points(1.5)
def test_plain_spread_large(student, reference):
    """PlainNet(50)'s gradient norms spread over orders of magnitude (like the reference's)"""
    mine, tried = _spread_of(student, "PlainNet", DEEP)
    ref, _ = _spread_of(reference, "PlainNet", DEEP)
    if not mine >= ref - PLAIN_MARGIN:
        fail(tried, f"spread {mine:.2f} ({_where(_profile(student, 'PlainNet', DEEP))})",
             f"at least {ref - PLAIN_MARGIN:.2f} (the reference: {ref:.2f}, norms growing "
             "about a thousandfold toward the input)",
             "a plain stack of conv-BN-ReLU layers with no shortcut anywhere: at default init "
             "BatchNorm makes its gradient norms explode toward the input", raw=True)


@pytest.mark.plain_vs_residual
@pytest.mark.points(1.5)
def test_residual_spread_small(student, reference):
    """ResidualNet(50)'s gradient norms stay within a narrow band (like the reference's)"""
    mine, tried = _spread_of(student, "ResidualNet", DEEP)
    ref, _ = _spread_of(reference, "ResidualNet", DEEP)
    if not mine <= ref + RESIDUAL_MARGIN:
        fail(tried, f"spread {mine:.2f} ({_where(_profile(student, 'ResidualNet', DEEP))})",
             f"at most {ref + RESIDUAL_MARGIN:.2f} (the reference: {ref:.2f})",
             "every pair of convs sits in a BasicBlock whose identity skip adds its input "
             "back (dy/dx = I + dF/dx): the gradient reaches early layers undiminished",
             raw=True)


@pytest.mark.plain_vs_residual
@pytest.mark.points(1)
def test_spread_grows_with_depth_without_skips(student, reference):
    """from depth 10 to 50 the plain net's spread grows a lot, the residual net's barely"""
    def growth(handle, net: str) -> tuple[float, float]:
        return _spread_of(handle, net, SHALLOW)[0], _spread_of(handle, net, DEEP)[0]

    (p10, p50), (r10, r50) = growth(student, "PlainNet"), growth(student, "ResidualNet")
    (rp10, rp50), (rr10, rr50) = growth(reference, "PlainNet"), growth(reference, "ResidualNet")
    if not (p50 - p10 >= PLAIN_GROWTH and r50 - r10 <= RESIDUAL_GROWTH):
        fail(f"PlainNet and ResidualNet (num_classes=10) at depths {SHALLOW} and {DEEP}, each "
             "at its default init; spreads measured as in the two properties above",
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
              "Linear(32, 10), with BatchNorm weights in [2, 3], biases in [0.5, 1.5]")
INIT_HINT = ("for every nn.Conv2d: nn.init.kaiming_normal_(weight, mode='fan_out', "
             "nonlinearity='relu'), so std = sqrt(2 / (out_channels * kh * kw))")


def _init(student) -> dict:
    return _cached(student, P.init_stats, INIT)


@pytest.mark.init
@pytest.mark.points(0.5)
def test_init_returns_model(student):
    """kaiming_init_ returns the model it was given"""
    returned = _init(student)["returned"]
    if returned != "the model":
        fail(INIT_TRIED + ": what it returned", returned, "the model itself",
             "initialise in place, then `return model` (so calls can be chained)", raw=True)


def _std_verdict(stats: dict) -> str:
    """What a wrong std looks like: fan_in, no ReLU gain, or something else."""
    guesses = {"mode='fan_in'": P.kaiming_std(stats["shape"], "fan_in"),
               "gain 1 instead of ReLU's sqrt(2)":
                   P.kaiming_std(stats["shape"], "fan_out") / math.sqrt(2)}
    for name, std in guesses.items():
        if abs(stats["std"] / std - 1) < 0.05:
            return f" (what {name} gives)"
    return ""


@pytest.mark.init
@pytest.mark.points(2.5)
def test_init_conv_std_fan_out(student):
    """conv weights have mean 0 and std sqrt(2 / fan_out) (within 5%)"""
    for stats in _init(student)["convs"]:
        want = P.kaiming_std(stats["shape"], "fan_out")
        tried = f"{INIT_TRIED}: the conv weight of shape {tuple(stats['shape'])}"
        if not abs(stats["std"] / want - 1) < 0.05:
            fail(tried, f"std {stats['std']:.4g}{_std_verdict(stats)}",
                 f"std {want:.4g} = sqrt(2 / fan_out), fan_out = {stats['shape'][0]} * "
                 f"{stats['shape'][2]} * {stats['shape'][3]}", INIT_HINT, raw=True)
        if not abs(stats["mean"]) < 5 * want / math.sqrt(stats["count"]):
            fail(tried, f"mean {stats['mean']:.3g}", "mean 0 (within 5 standard errors)",
                 INIT_HINT, raw=True)


@pytest.mark.init
@pytest.mark.points(1)
def test_init_conv_normal(student):
    """conv weights are normally distributed (kurtosis of a normal, not a uniform)"""
    for stats in _init(student)["convs"]:
        if not abs(stats["kurtosis"]) < 0.3:
            shape = "a uniform's (-1.2)" if abs(stats["kurtosis"] + 1.2) < 0.3 else "not 0"
            fail(f"{INIT_TRIED}: the conv weight of shape {tuple(stats['shape'])}",
                 f"excess kurtosis {stats['kurtosis']:.2f}: {shape}",
                 "about 0 (a normal distribution)", "kaiming_normal_, not kaiming_uniform_",
                 raw=True)


@pytest.mark.init
@pytest.mark.points(1)
def test_init_batchnorm(student):
    """BatchNorm weights are set to 1 and biases to 0"""
    got = _init(student)
    for key, value in (("bn_weight", 1.0), ("bn_bias", 0.0)):
        tensor = got[key]
        if type(tensor) is not torch.Tensor or not torch.equal(tensor,
                                                               torch.full_like(tensor, value)):
            wrong = tensor[tensor != value] if type(tensor) is torch.Tensor else tensor
            fail(f"{INIT_TRIED}: every BatchNorm's {key.split('_')[1]}",
                 f"{wrong.numel()} values other than {value:g}, e.g. {wrong[0].item():.3g}",
                 f"all {value:g}", "for every nn.BatchNorm2d: weight 1 (ones_), bias 0 "
                 "(zeros_)", raw=True)


@pytest.mark.init
@pytest.mark.points(0.5)
def test_init_conv_bias_zero(student):
    """conv biases, where present, are set to 0"""
    got = _init(student)["conv_bias_max"]
    if got != 0.0:
        fail(f"{INIT_TRIED}: the bias of Conv2d(16, 96, 5, bias=True)",
             f"values up to {got:.3g} in absolute value", "all 0",
             "a conv that has a bias: nn.init.zeros_(bias) after initialising its weight",
             raw=True)


@pytest.mark.init
@pytest.mark.points(0.5)
def test_init_linear_untouched(student):
    """Linear layers keep their default init, as in the reference"""
    if _init(student)["head_changed"]:
        fail(f"{INIT_TRIED}: the Linear head before and after", "its weight or bias changed",
             "unchanged", "the contract initialises convs and BatchNorms only; Linear layers "
             "keep PyTorch's default (as torchvision's ResNet does)", raw=True)
