"""Hidden graders for ``blocks.py``: exercise ``basic_block`` (14 points).

The probe builds the student's block and the reference's from the same case and gives both
identical weights and BatchNorm buffers *by role* (run order plus the preceding conv, see
probes/roles.py), never by attribute name: own names, ``nn.ReLU`` modules (in place or not),
an ``nn.Identity`` shortcut, a ``ModuleList`` or the lesson's shortcut-first forward all earn
full marks. Where the layer names differ from the reference's, the report says so in a note
(it matters for loading checkpoints) without deducting points.

Conv bias: the contract says conv3x3-BN and the reference's convs carry no bias. A bias in
front of a BatchNorm is redundant, so the probe compares the architecture with that bias set
to zero: a block with ``bias=True`` convs keeps every property but the parameter count.

Cases are small (1-16 channels, 1-9 pixels, odd sizes included) and computed in float64;
the explicit examples put every kind of shortcut into every hypothesis property.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import example, given, settings

from grader.feedback import agrees, check_equal, check_tensor, fail
from grader.packs.day02 import strategies as S
from grader.packs.day02.probes import blocks as P
from grader.probes import ProbeFailure

BLOCK_HINT = ("conv3x3(stride, padding 1) -> BN -> ReLU -> conv3x3(stride 1, padding 1) -> BN, "
              "plus the shortcut, then ReLU after the add")
SHORTCUT_HINT = ("the shortcut is the identity when stride == 1 and in_channels == "
                 "out_channels; otherwise a 1x1 conv with the block's stride, then BatchNorm")
GRAD_HINT = ("build the output from differentiable ops: no .detach(), .data or numpy, and no "
             "in-place change of the input x (the identity shortcut returns x itself)")

# one case per kind of shortcut, odd sizes included; explicit examples run in every property
IDENTITY = {"in": 6, "out": 6, "stride": 1, "batch": 2, "h": 5, "w": 4, "seed": 11}
STRIDE = {"in": 4, "out": 4, "stride": 2, "batch": 2, "h": 7, "w": 6, "seed": 12}
WIDTH = {"in": 3, "out": 8, "stride": 1, "batch": 3, "h": 4, "w": 5, "seed": 13}
BOTH = {"in": 8, "out": 5, "stride": 2, "batch": 1, "h": 9, "w": 5, "seed": 14}
PROJECTIONS = ("stride", "width", "both")


def every_kind(test):
    """Run ``test`` on the four explicit cases before the drawn ones."""
    for case in (IDENTITY, STRIDE, WIDTH, BOTH):
        test = example(case=case)(test)
    return test


def _describe(case: dict, mode: str = "train") -> str:
    return (f"{P.call(case)} in {mode} mode on x of shape ({case['batch']}, {case['in']}, "
            f"{case['h']}, {case['w']}), yours and the reference given identical weights "
            f"layer by layer, matched by run order, not by name (seed {case['seed']})")


def _run(handle, case: dict, tried: str, expected: str = "an output tensor",
         **options) -> dict:
    """The probe's result; an exception in the student's code becomes feedback that names
    the call (not implemented, timeouts and crashes pass through as one line)."""
    try:
        result = handle.run(P.run_block, {**case, **options})
    except ProbeFailure as failure:
        if failure.kind != "exception":
            raise
        fail(tried, failure.message, expected, BLOCK_HINT, raw=True)
    if "error" in result:
        fail(tried, result["error"], expected, BLOCK_HINT, raw=True)
    return result


def _hint(got: dict, hint: str) -> str:
    """Add the parameters that never ran inside a conv or BatchNorm module, if any."""
    if got.get("unassigned"):
        hint += ("; these parameters did not run inside an nn.Conv2d or nn.BatchNorm2d "
                 f"during forward, so they could not get the reference's values: "
                 f"{', '.join(got['unassigned'])}")
    return hint


def _shape_first(got: dict, expected: dict, tried: str) -> None:
    if got["shape"] != expected["shape"]:
        fail(tried, f"output of shape {tuple(got['shape'])}",
             f"shape {tuple(expected['shape'])}", BLOCK_HINT, raw=True)


def layers_problem(got: dict, expected: dict) -> str:
    """'' when every conv and BatchNorm of the reference ran in the student's block (by role)
    and gave the reference layer's output, and no other layer ran; else the first that did not.
    A slip after the last layer (the final ReLU, the add) keeps this evidence."""
    rows = got.get("layer_outputs")
    mine = {row[0]: row[1] for row in rows if type(row) is list and len(row) == 2} \
        if type(rows) is list else {}
    for role, output in expected["layer_outputs"]:
        if role not in mine:
            return f"{describe_role(role)} did not run"
        if not agrees(mine[role], output, rtol=1e-6, atol=1e-9):
            return f"the output of {describe_role(role)} differs from the reference's"
    theirs = {role for role, _ in expected["layer_outputs"]}
    extra = [role for role in mine if role not in theirs]
    return f"your block also runs {describe_role(extra[0])}" if extra else ""


def require_layers(got: dict, expected: dict, tried: str) -> None:
    """A structural claim scores only with the outputs behind it: every layer of the block
    gave the reference layer's output on the same input, with the same weights by role."""
    problem = layers_problem(got, expected)
    if problem:
        fail(tried, f"the claim cannot be verified: {problem}",
             "every conv and BatchNorm giving the reference layer's output",
             "structure is scored with the layers' outputs behind it (the same weights by "
             "role): see the forward properties for where your block departs", raw=True)


@pytest.mark.basic_block
@pytest.mark.points(2)
@settings(max_examples=8)
@every_kind
@given(case=S.block_case())
def test_output_shape(student, reference, case):
    """output shape (N, out_channels, ceil(H/stride), ceil(W/stride))

    Evidence: the shape, scored with every layer's output behind it.
    """
    tried = _describe(case)
    got = _run(student, case, tried, mode="train")
    expected = _run(reference, case, tried, mode="train")
    _shape_first(got, expected, tried)
    require_layers(got, expected, tried)


def _check_forward(student, reference, case: dict, mode: str, hint: str) -> None:
    tried = _describe(case, mode)
    got = _run(student, case, tried, mode=mode)
    expected = _run(reference, case, tried, mode=mode)
    _shape_first(got, expected, tried)
    check_tensor(got["output"], expected["output"], tried, _hint(got, hint), rtol=1e-6,
                 atol=1e-9)


@pytest.mark.basic_block
@pytest.mark.points(2)
@settings(max_examples=10)
@every_kind
@given(case=S.block_case())
def test_forward_train_mode(student, reference, case):
    """forward values in train mode match the reference with the same weights

    Evidence: the output against the reference's with the same weights by role, on the
    grader's input.
    """
    _check_forward(student, reference, case, "train", BLOCK_HINT)


@pytest.mark.basic_block
@pytest.mark.points(2)
@settings(max_examples=10)
@every_kind
@given(case=S.block_case())
def test_forward_eval_mode(student, reference, case):
    """forward values in eval mode (running statistics) match the reference

    Evidence: the output against the reference's with the same weights and running
    statistics by role.
    """
    _check_forward(student, reference, case, "eval",
                   BLOCK_HINT + "; in eval mode each nn.BatchNorm2d uses its running "
                   "statistics, so every BN must be its own module with default settings")


def _backward(student, reference, case: dict) -> tuple[dict, dict, str]:
    tried = _describe(case) + ", then backward of a random upstream gradient"
    got = _run(student, case, tried, mode="train", backward=True)
    expected = _run(reference, case, tried, mode="train", backward=True)
    _shape_first(got, expected, tried)
    return got, expected, tried


@pytest.mark.basic_block
@pytest.mark.points(1.5)
@settings(max_examples=8)
@every_kind
@given(case=S.block_case())
def test_input_gradient(student, reference, case):
    """the gradient with respect to the input matches the reference

    Evidence: the input gradient against the reference's, for the grader's upstream
    gradient.
    """
    got, expected, tried = _backward(student, reference, case)
    if type(got["grad_input"]) is str:
        fail(tried, f"the input has {got['grad_input']}", "its gradient", GRAD_HINT, raw=True)
    check_tensor(got["grad_input"], expected["grad_input"], tried, _hint(got, GRAD_HINT),
                 rtol=1e-6, atol=1e-9, what="the gradient of the input")


def describe_role(role: str) -> str:
    """``bn<conv[8x4x3x3]#0>`` -> "the BatchNorm after the 1st conv with weight shape
    (8, 4, 3, 3) to run": a role in words."""
    if role.startswith("bn<"):
        return "the BatchNorm after " + describe_role(role[3:].split(">")[0])
    if not role.startswith("conv["):
        return role
    shape, _, index = role[5:].partition("]#")
    dims = ", ".join(shape.removesuffix("+b").split("x"))
    nth = int(index) + 1
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(nth, "th")
    return f"the {nth}{suffix} conv with weight shape ({dims}) to run"


@pytest.mark.basic_block
@pytest.mark.points(1.5)
@settings(max_examples=8)
@every_kind
@given(case=S.block_case())
def test_parameter_gradients(student, reference, case):
    """each conv's and BatchNorm's parameter gradients match the reference's (by role)

    Evidence: each layer's parameter gradients against the reference layer's of the same
    role.
    """
    got, expected, tried = _backward(student, reference, case)
    for key, grad in expected["grads"].items():
        role, _, name = key.rpartition(".")
        mine = got["grads"].get(key)
        what = f"the gradient of {name} of {describe_role(role)}"
        if mine is None:
            fail(tried, f"no such layer ran ({describe_role(role)})", "the layer and its "
                 "gradient", _hint(got, BLOCK_HINT), raw=True)
        if type(mine) is str:
            fail(tried, f"{what}: {mine}", "a gradient", GRAD_HINT, raw=True)
        check_tensor(mine, grad, tried, _hint(got, GRAD_HINT), rtol=1e-6, atol=1e-9,
                     what=what)


def _shortcut(layers: list) -> str:
    return "projection" if any(kind == "conv" and kernel == [1, 1]
                               for _, _, kind, kernel in layers) else "identity"


@pytest.mark.basic_block
@pytest.mark.points(1.5)
@settings(max_examples=8)
@every_kind
@given(case=S.block_case())
def test_shortcut_identity_iff_shapes_match(student, reference, case):
    """the shortcut is the identity exactly when stride is 1 and the width is unchanged

    Evidence: the layers that ran, scored with every layer's output behind them.
    """
    tried = _describe(case) + ": does a 1x1 conv run on the shortcut?"
    mine = _run(student, case, tried, mode="train")
    theirs = _run(reference, case, tried, mode="train")
    got, expected = _shortcut(mine["layers"]), _shortcut(theirs["layers"])
    if got != expected:
        fail(tried, f"an {got} shortcut" if got == "identity" else f"a {got} shortcut",
             f"an {expected} shortcut" if expected == "identity" else f"a {expected} "
             "shortcut (1x1 conv + BatchNorm)", SHORTCUT_HINT, raw=True)
    require_layers(mine, theirs, tried)


@pytest.mark.basic_block
@pytest.mark.points(1)
@settings(max_examples=5)
@example(case=STRIDE)
@example(case=WIDTH)
@given(case=S.block_case(kinds=PROJECTIONS))
def test_projection_uses_batchnorm(student, reference, case):
    """a projection shortcut is a 1x1 conv followed by BatchNorm

    Evidence: the layers that ran, scored with every layer's output behind them.
    """
    tried = _describe(case) + ": the layers of the shortcut"
    got = _run(student, case, tried, mode="train")
    layers = got["layers"]
    ones = [role for role, _, kind, kernel in layers if kind == "conv" and kernel == [1, 1]]
    if not ones:
        fail(tried, "no 1x1 conv ran", "a 1x1 conv with the block's stride, then BatchNorm",
             SHORTCUT_HINT, raw=True)
    if not any(role == f"bn<{ones[0]}>" for role, *_ in layers):
        fail(tried, "no BatchNorm ran right after the 1x1 conv",
             "a 1x1 conv with the block's stride, then BatchNorm", SHORTCUT_HINT, raw=True)
    require_layers(got, _run(reference, case, tried, mode="train"), tried)


@pytest.mark.basic_block
@pytest.mark.points(1)
@settings(max_examples=5)
@example(case=IDENTITY)
@given(case=S.block_case(kinds=("identity",)))
def test_zero_branch_is_relu(student, reference, case):
    """with the residual branch zeroed, an identity block is exactly relu(x), gradient too

    Evidence: the output and input gradient against relu(x), scored with every layer's output
    (the zeroed BatchNorm's included) behind them.
    """
    tried = (_describe(case) + ", with weight and bias of the BatchNorm after the second "
             "3x3 conv set to 0 (the residual branch outputs 0), then backward of a random "
             "upstream gradient")
    hint = ("y = relu(F(x) + x): with F(x) = 0 the block passes relu(x) through, and its "
            "gradient flows back unchanged where x > 0 (the gradient highway)")
    got = _run(student, case, tried, "relu(x), and upstream * (x > 0) as its gradient",
               mode="train", backward=True, zero_residual=True)
    x = P.block_input(case)  # (N, C, H, W)
    _check_exact(got["output"], torch.relu(x), tried, "the output", "relu(x)", hint)
    highway = P.upstream(tuple(x.shape), case["seed"]) * (x > 0)  # (N, C, H, W)
    _check_exact(got["grad_input"], highway, tried, "the gradient of the input",
                 "upstream * (x > 0)", hint)
    require_layers(got, _run(reference, case, tried, mode="train", backward=True,
                             zero_residual=True), tried)


def _check_exact(got, expected: torch.Tensor, tried: str, what: str, oracle: str,
                 hint: str) -> None:
    """Exactly equal to an oracle (no reference involved): adding 0 changes nothing."""
    if type(got) is not torch.Tensor:
        fail(tried, f"{what}: {got}", oracle, hint, raw=True)
    if got.shape != expected.shape:
        fail(tried, f"{what} has shape {tuple(got.shape)}",
             f"{oracle}, of shape {tuple(expected.shape)}", hint, raw=True)
    if not torch.equal(got, expected):
        diff = (got - expected).abs()
        where = tuple(int(i) for i in torch.nonzero(diff == diff.max())[0])
        fail(tried, f"{what} differs from {oracle} by up to {diff.max().item():.3g} (first at "
             f"index {where}: {got[where].item():.6g} vs {expected[where].item():.6g})",
             f"exactly {oracle}", hint, raw=True)


@pytest.mark.basic_block
@pytest.mark.points(0.5)
def test_input_unchanged(student, reference):
    """forward leaves its input tensor unchanged

    Evidence: the probe's comparison of the input before and after, scored with every layer's
    output behind it.
    """
    for case in (IDENTITY, BOTH):
        tried = _describe(case)
        got = _run(student, case, tried, mode="train")
        if got["input_changed"] is not False:
            fail(tried, "x was changed in place", "x unchanged",
                 "the identity shortcut returns x itself: `out += shortcut(x)` is fine, "
                 "`s = shortcut(x); s += out` writes into x", raw=True)
        require_layers(got, _run(reference, case, tried, mode="train"), tried)


@pytest.mark.basic_block
@pytest.mark.points(0.5)
def test_expansion_is_one(student, reference):
    """BasicBlock.expansion == 1 and the output has out_channels channels

    Evidence: the class attribute and output width, scored with every layer's output behind
    them.
    """
    got = student.run(P.expansion, WIDTH)
    tried = f"BasicBlock.expansion, and the width of {P.call(WIDTH)}'s output"
    hint = "expansion = 1 as a class attribute: a BasicBlock's output width is out_channels"
    check_equal(got["expansion"], 1, tried + ": BasicBlock.expansion", hint)
    check_equal(got["out_channels"], WIDTH["out"], tried + ": output channels", hint)
    require_layers(_run(student, WIDTH, tried, mode="train"),
                   _run(reference, WIDTH, tried, mode="train"), tried)


def _naming_note(kit_note, got: dict, expected: dict) -> None:
    """A note, not a deduction: other names break loading the reference's checkpoints."""
    mine = {role: name for role, name, *_ in got["layers"]}
    renamed = [f"{name} -> {mine[role]}" for role, name, *_ in expected["layers"]
               if role in mine and mine[role] != name]
    if renamed:
        kit_note("basic_block: your BasicBlock names its layers differently from the "
                 f"reference ({', '.join(renamed[:6])}); fine for grading, but a checkpoint "
                 "saved with the reference's names will not load into it")


@pytest.mark.basic_block
@pytest.mark.points(0.5)
def test_parameter_count(student, reference, kit_note):
    """the parameter count equals the reference's (no conv bias before BatchNorm)

    Evidence: the count, scored with every layer's output behind it.
    """
    for case in (BOTH, IDENTITY):
        tried = f"sum(p.numel() for p in {P.call(case)}.parameters())"
        got = _run(student, case, tried, mode="train")
        expected = _run(reference, case, tried, mode="train")
        if case is BOTH:
            _naming_note(kit_note, got, expected)
        check_equal(got["param_count"], expected["param_count"], tried,
                    "two 3x3 convs and a 1x1 projection conv (only when needed), all without "
                    "bias (the BatchNorm after each has the shift), and a BatchNorm2d after each")
        require_layers(got, expected, tried)
