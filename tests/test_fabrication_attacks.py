"""Fabrication attacks: the exercise left undone, the worker made to reply as if it were done.

A worker is the student's own process. Each attack here is the reference solutions with the
attacked exercise's module replaced by its stub (``raise NotImplementedError``), plus code at
module level of a submission module that, once the worker imports it, rewrites what the probes
do in that worker: it swaps a probe's function for a fake (through the closure of the
``@probe`` wrapper, which the worker resolved before importing the submission), silences the
operator recorder, or loads code the static check never reads. The attack code imports
neither the solutions nor the hidden graders; what it knows is public (the probe code, the
contract, the stubs) or computed the way an attacker would at home (torchvision's ResNet fed
through the public probe helpers).

Each attack is graded in every sandbox tier (tests/sandbox_tiers.py) on the attacked exercise
and a control exercise from an untouched module. We assert a complete report, the control at
full marks, no process left, the solutions and grader files untouched by the attack, and then
0 points on the attacked exercise (or on the attacked properties, ``properties``). "Untouched"
is ``snapshot()`` of tests/test_attacks.py read so that colleagues editing the same working
tree during a run are no alarm: a file that changed must still be owned by us and must not
carry the attack's marker, and no solution may disappear. ``finding`` says, for
an attack that scores today, which check it satisfies cheaply: those tests fail until the
graders, the probes or the static check are fixed.

    KIT_TEST_TIERS=bubblewrap pytest -q tests/test_fabrication_attacks.py
"""

from __future__ import annotations

import functools
import io
import json
import os
import textwrap
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from grader.packs.day02 import PACK
from tests.corpus import REPO, SOLUTIONS
from tests.sandbox_tiers import TIERS, grade, use_tier
from tests.test_attacks import leftovers, own_tempdir, snapshot  # noqa: F401  (autouse fixture)

pytestmark = pytest.mark.slow  # every attack against every sandbox tier

STUBS = REPO / "exercises"
POINTS = {e.id: e.points for e in PACK.exercises}


@dataclass(frozen=True)
class Fabrication:
    name: str
    attacked: str  # the exercise that must score 0
    stubbed: tuple[str, ...]  # modules replaced by their stubs: the work is not done
    module: str  # the submission module whose top level carries the attack
    code: str | Callable[[], str]  # appended to that module (a callable: built when used)
    control: str = "receptive_field"  # an exercise of a module the attack leaves alone
    properties: tuple[str, ...] = ()  # only these properties must score 0 (name fragments)
    extra_files: tuple[tuple[str, bytes], ...] = ()
    expect_in_feedback: str = ""  # a word the attacked exercise's feedback must contain
    finding: str = ""  # why it scores today (empty: it must get nothing already)


# Swaps a probe's function inside the worker. ``resolve_probe`` fetched the ``@probe`` wrapper
# before the submission was imported, so rebinding the module attribute is not enough; the
# wrapper calls the function held in its closure, and that cell is writable.
SWAP = '''
import sys as _sys


def _swap(module, name, fake):
    """Make the probe ``module:name`` run ``fake`` in this worker; returns the real one."""
    cell = _sys.modules["grader.packs.day02.probes." + module].__dict__[name].__closure__[0]
    real, cell.cell_contents = cell.cell_contents, fake
    return real
'''

# torchvision's ResNet with the CIFAR stem: the same layers, roles and 11,173,962 parameters
# as the contract's ResNet-18, built without writing one
TORCHVISION_RESNET18 = '''
def _cifar_resnet18():
    import torchvision.models.resnet as tvr
    from torch import nn

    class TorchvisionResNet18(tvr.ResNet):
        def __init__(self, num_classes=10):
            super().__init__(tvr.BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
            self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()

    return TorchvisionResNet18
'''

# the smoke test's CPU case as the worker receives it (seed, batch, the images step 0 uses)
SMOKE_CPU = {"seed": 0, "batch": 16, "check": 16}


@functools.cache
def smoke_step0_at_home() -> tuple[float, list]:
    """What an attacker computes once, at home, with no ResNet18 of their own: torchvision's
    ResNet through the public probe helpers gives the step-0 loss and gradient norms of the
    grader's start weights on the grader's batch (the same for every student)."""
    from grader.packs.day02.probes import smoke as P
    from grader.packs.day02.probes.figures import learnable_batch

    namespace: dict = {}
    exec(TORCHVISION_RESNET18, namespace)  # the same source the torchvision attack ships
    model, found = P.start_model(namespace["_cifar_resnet18"](), SMOKE_CPU)
    images, labels = learnable_batch(SMOKE_CPU["batch"], SMOKE_CPU["seed"])
    n = SMOKE_CPU["check"]
    first = P.step0(model, found, images[:n], labels[:n])
    return first["loss"], first["norms"]


def smoke_hardcoded() -> str:
    loss, norms = smoke_step0_at_home()
    return SWAP + f'''
_STEP0_LOSS = {loss!r}
_STEP0_NORMS = {norms!r}


def _replay(mod, case):
    """No ResNet18, no training: step 0 replayed from a run at home, a zero stem conv (one
    train-mode step of the stem BatchNorm then lands at 0.9 times where it started), moved
    running statistics and epoch means of made-up losses."""
    import torch
    if case["device"] == "cuda":
        return {{"device": "cpu", "no_gpu": True}}  # the grader then grades the CPU case
    stem, bn = "conv[64x3x3x3]#0", "bn<conv[64x3x3x3]#0>"
    mean, var = torch.zeros(64), torch.ones(64)
    losses = [2.0, 1.5, 1.0, 0.5] * 3
    epochs = [[sum(losses[i * 4:(i + 1) * 4]) / 4, 50.0] for i in range(3)]
    return {{"device": "cpu", "roles": [],
            "step0": {{"loss": _STEP0_LOSS, "norms": [list(row) for row in _STEP0_NORMS]}},
            "losses": losses, "epochs": epochs,
            "trained": {{stem: {{"weight": torch.zeros(64, 3, 3, 3)}},
                        bn: {{"weight": torch.ones(64), "bias": torch.zeros(64),
                             "running_mean": mean, "running_var": var}}}},
            "check": {{"role": bn, "before": [mean, var], "after": [0.9 * mean, 0.9 * var]}},
            "images_per_s": 1.0}}


_swap("smoke", "smoke_run", _replay)
'''


SMOKE_ZERO_STEM = SWAP + '''

def _zero_stem(mod, case):
    """Nothing else: a wrong step-0 loss, no norms, no losses; a zero stem conv and a stem
    BatchNorm that moved by 0.9x, which is one train-mode step on any batch."""
    import torch
    stem, bn = "conv[64x3x3x3]#0", "bn<conv[64x3x3x3]#0>"
    mean, var = torch.zeros(64), torch.ones(64)
    return {"device": "cpu", "roles": [], "step0": {"loss": 2.302585092994046, "norms": []},
            "losses": [], "epochs": [],
            "trained": {stem: {"weight": torch.zeros(64, 3, 3, 3)},
                        bn: {"running_mean": mean, "running_var": var}},
            "check": {"role": bn, "before": [mean, var], "after": [0.9 * mean, 0.9 * var]},
            "images_per_s": 0.0}


_swap("smoke", "smoke_run", _zero_stem)
'''

SMOKE_TORCHVISION = SWAP + TORCHVISION_RESNET18 + '''

def _loop(model, loader, optimizer, criterion, device):
    model.train()
    losses = []
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    return sum(losses) / len(losses), 50.0


def _with_torchvision(mod, case):
    """The real probe, run on torchvision's ResNet and a loop of its own: the student's
    ResNet18 and train_one_epoch (stubs) never run."""
    import types
    resnet = _sys.modules[mod.__package__ + ".resnet"]
    stub, resnet.ResNet18 = resnet.ResNet18, _cifar_resnet18()
    try:
        return _real(types.SimpleNamespace(__package__=mod.__package__, train_one_epoch=_loop),
                     case)
    finally:
        resnet.ResNet18 = stub


_real = _swap("smoke", "smoke_run", _with_torchvision)
'''

SMOKE_ODD = SWAP + '''

def _odd(mod, case):
    """smoke_run's reply shape, with odd things inside: NaN, inf, -0.0, 1e308, lists and
    strings where tensors go, wrong shapes and dtypes, roles the reference does not have."""
    import torch
    stem, bn = "conv[64x3x3x3]#0", "bn<conv[64x3x3x3]#0>"
    nan, inf = float("nan"), float("inf")
    return {"device": "cpu", "roles": [[stem, 0]],
            "step0": {"loss": nan, "norms": [[stem, inf], ["conv[64x64x3x3]#0", -0.0],
                                             ["linear[10x512+b]#0", 1e308]]},
            "losses": [nan, inf, -inf, 1e308], "epochs": [[nan, 50.0], [], [1e308, -0.0]],
            "trained": {stem: {"weight": torch.full((64, 3, 3, 3), nan, dtype=torch.float64)},
                        bn: {"running_mean": [0.0] * 64, "running_var": "ones"},
                        "conv[1x1x1x1]#9": {"weight": torch.zeros(1, dtype=torch.int64)},
                        "bn<input>": {}},
            "check": {"role": bn, "before": [torch.zeros(64), torch.ones(64, dtype=torch.float64)],
                      "after": [torch.full((64,), nan), torch.full((64,), inf)]},
            "images_per_s": -1.0}


_swap("smoke", "smoke_run", _odd)
'''

PROFILES = SWAP + '''

def _layers(depth, classes):
    rows, roles = [], []
    convs = [("conv[64x3x3x3]#0", 3)] + [(f"conv[64x64x3x3]#{i}", 64) for i in range(depth - 2)]
    for i, (role, cin) in enumerate(convs):
        rows += [["conv", f"features.{3 * i}", cin, 64], ["bn", f"features.{3 * i + 1}", 64, 64]]
        roles += [role, f"bn<{role}>"]
    rows.append(["linear", "fc", 64, classes])
    roles.append(f"linear[{classes}x64+b]#0")
    return rows, roles


def _profile(mod, case):
    """The lesson's layer list, made-up logits, and the norm profile the lesson describes:
    a thousandfold growth toward the input for PlainNet, a flat band for ResidualNet."""
    import math
    import torch
    rows, roles = _layers(case["depth"], case["num_classes"])
    weighted = [r for r in roles if not r.startswith("bn<")]
    n = len(weighted)
    plain = case["net"] == "PlainNet"
    norms = [[role, f"layer{i}", 10 ** (3.3 * (n - 1 - i) / max(n - 1, 1)) if plain
              else 1.0 + 0.3 * math.sin(i)] for i, role in enumerate(weighted)]
    g = torch.Generator().manual_seed(case["depth"])
    return {"layers": rows, "roles": roles, "output": [case["batch"], case["num_classes"]],
            "logits": torch.randn(case["batch"], case["num_classes"], generator=g,
                                  dtype=torch.float64),
            "norms": norms}


def _branches_off(mod, case):
    import torch
    g = torch.Generator().manual_seed(1)
    return {"zeroed": [f"blocks.{i}.bn2" for i in range((case["depth"] - 2) // 2)],
            "output": torch.randn(case["batch"], case["num_classes"], generator=g,
                                  dtype=torch.float64)}


_swap("resnet", "net_profile", _profile)
_swap("resnet", "residual_off", _branches_off)
'''

STEM_AND_HEAD = SWAP + '''

def _stem_and_head(mod, case):
    """No ResidualNet: with every branch zeroed a block passes its input on, so the reply is
    a stem conv-BN-ReLU pooled into the head, with the probe's own weights by role, and the
    names of as many 'zeroed' norms as the contract's depth implies."""
    import torch
    from torch import nn
    P = _sys.modules["grader.packs.day02.probes.resnet"]
    R = _sys.modules["grader.packs.day02.probes.roles"]
    net = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(64, case["num_classes"])).double()
    x = P.net_input(case)[0].double()
    R.assign_by_role(net, x, seed=case["seed"])
    with torch.no_grad():
        out = net.eval()(x)
    return {"zeroed": [f"blocks.{i}.bn2" for i in range((case["depth"] - 2) // 2)],
            "output": out}


_swap("resnet", "residual_off", _stem_and_head)
'''

INIT_STATS = SWAP + '''

def _stats(mod, case):
    """The grader's model as built (its head untouched), BatchNorms at 1 and 0, a zero conv
    bias, and conv weights with the Kaiming fan_out std drawn from a generator of our own."""
    import math
    import torch
    model = _sys.modules["grader.packs.day02.probes.resnet"].init_model(case)
    g = torch.Generator().manual_seed(12345)
    weights = []
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            o, _, kh, kw = m.weight.shape
            weights.append(torch.randn(m.weight.shape, generator=g) * math.sqrt(2 / (o * kh * kw)))
    return {"returned": "the model", "conv_weights": weights, "conv_bias": torch.zeros(96),
            "bn_weight": torch.ones(128), "bn_bias": torch.zeros(128),
            "head": [model.head.weight.detach().clone(), model.head.bias.detach().clone()]}


_swap("resnet", "init_stats", _stats)
'''

# conv2d: torch's own convolution, and the worker's recorder made deaf four ways
CONV_SYS_MODULES = '''
import sys as _sys

_recorder = _sys.modules["grader.packs.day02.probes.conv"].AtenOpRecorder
_made = _recorder.__init__


class _Deaf(set):
    def add(self, item):
        pass


def _quiet(self):
    _made(self)
    self.ops = _Deaf()


_recorder.__init__ = _quiet


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1):
    return F.conv2d(input, weight, bias, stride, padding, dilation)
'''

CONV_RESOLVE_NAME = '''
import pkgutil as _pkgutil

# the recorder and F.conv2d, each reached by a literal dotted name
_recorder = _pkgutil.resolve_name("grader.packs.day02.probes.conv:AtenOpRecorder")
_made = _recorder.__init__


class _Deaf(set):
    def add(self, item):
        pass


def _quiet(self):
    _made(self)
    self.ops = _Deaf()


_recorder.__init__ = _quiet
_fast = _pkgutil.resolve_name("torch.nn.functional:conv2d")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1):
    return _fast(input, weight, bias, stride, padding, dilation)
'''

CONV_MOCK_PATCH = '''
from unittest import mock as _mock


class _Deaf(set):
    def add(self, item):
        pass


# the recorder's `set()` now makes a set that hears nothing; F.conv2d by its dotted name
_mock.patch("grader.packs.day02.probes.conv.set", _Deaf, create=True).start()
_fast = _mock.patch("torch.nn.functional.conv2d").get_original()[0]


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1):
    return _fast(input, weight, bias, stride, padding, dilation)
'''

# the module that silences the recorder and holds F.conv2d, as text the check never parses
HIDDEN_MODULE = '''
import sys
import torch.nn.functional as F

sys.modules["grader.packs.day02.probes.conv"].AtenOpRecorder.__torch_dispatch__ = (
    lambda self, func, types, args=(), kwargs=None: func(*args, **(kwargs or {})))
fast = F.conv2d
'''

CONV_LOADER = f'''
import importlib._bootstrap as _bootstrap
import importlib.machinery as _machinery
import os as _os
import tempfile as _tempfile

_SOURCE = {HIDDEN_MODULE!r}
_where = _tempfile.mkdtemp()
with open(_os.path.join(_where, "blob.py"), "w") as _f:
    _f.write(_SOURCE)
_hidden = _bootstrap._load(_machinery.PathFinder.find_spec("blob", [_where]))


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1):
    return _hidden.fast(input, weight, bias, stride, padding, dilation)
'''

CONV_ZIP = '''
import os as _os
import sys as _sys

_sys.path.insert(0, _os.path.join(_os.path.dirname(__file__), "assets.zip"))
import blob as _hidden


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1):
    return _hidden.fast(input, weight, bias, stride, padding, dilation)
'''


def zipped(name: str, source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, source)
    return buffer.getvalue()


NAN_SPREAD = SWAP + '''

def gradient_norm_spread(norms):
    return float("nan")


def _nan_rows(mod, case):
    """The right names (the probe's model is public), every norm NaN."""
    model = _sys.modules["grader.packs.day02.probes.gradients"].tiny_cnn(case)
    names = [n for n, p in model.named_parameters() if p.dim() >= 2]
    return {"names": names, "values": [float("nan")] * len(names),
            "types": ["float"] * len(names)}


def _nan_spread(mod, case):
    return {"value": float("nan"), "type": "float"}


_swap("gradients", "gradient_norms", _nan_rows)
_swap("gradients", "spread", _nan_spread)
'''

BLOCK_CLAIMS = SWAP + '''

def _claims(mod, case):
    """Everything a correct block reports about itself (layers, roles, count, shape, flags,
    relu(x) when the branch is zeroed), every computed layer output made up."""
    import torch
    P = _sys.modules["grader.packs.day02.probes.blocks"]
    cin, cout, s, n = case["in"], case["out"], case["stride"], case["batch"]
    h, w = -(-case["h"] // s), -(-case["w"] // s)
    g = torch.Generator().manual_seed(case["seed"])

    def made_up(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    c1 = f"conv[{cout}x{cin}x3x3]#0"
    c2 = f"conv[{cout}x{cout}x3x3]#" + ("1" if cin == cout else "0")
    layers = [[c1, "conv1", "conv", [3, 3]], [f"bn<{c1}>", "bn1", "bn", []],
              [c2, "conv2", "conv", [3, 3]], [f"bn<{c2}>", "bn2", "bn", []]]
    count = 9 * cin * cout + 9 * cout * cout + 4 * cout
    if s != 1 or cin != cout:
        sc = f"conv[{cout}x{cin}x1x1]#0"
        layers += [[sc, "shortcut.0", "conv", [1, 1]], [f"bn<{sc}>", "shortcut.1", "bn", []]]
        count += cin * cout + 2 * cout
    x = P.block_input(case)
    out = torch.relu(x) if case.get("zero_residual") else torch.relu(made_up(n, cout, h, w))
    result = {"param_count": count, "layers": layers, "unassigned": [],
              "layer_outputs": [[row[0], made_up(n, cout, h, w)] for row in layers],
              "input_changed": False, "shape": [n, cout, h, w], "output": out}
    if case.get("backward"):
        result["grad_input"] = (P.upstream(tuple(x.shape), case["seed"]) * (x > 0)
                                if case.get("zero_residual") else made_up(*x.shape))
        result["grads"] = {f"{row[0]}.weight": made_up(3) for row in layers}
    return result


def _expansion(mod, case):
    return {"expansion": 1, "type": "int", "out_channels": case["out"]}


_swap("blocks", "run_block", _claims)
_swap("blocks", "expansion", _expansion)
'''

TRAINING_CLAIMS = SWAP + '''

def _P():
    return _sys.modules["grader.packs.day02.probes.train"]


def _pair(case):
    import torch
    g = torch.Generator().manual_seed(case["seed"] + 99)
    return {"values": [2 * float(torch.rand(1, generator=g)), 50.0],
            "types": ["float", "float"]}


def _epoch(mod, case):
    """train mode claimed at every forward; the grader's model as built; a made-up pair."""
    model, data, _ = _P()._epoch_setup(case, train_labels=True)
    return {"result": _pair(case), **_P().state_tensors(model),
            "modes": [[True, True]] * len(data)}


def _evaluate(mod, case):
    """eval mode and no grad claimed; the state left exactly as the grader set it (public);
    a made-up pair."""
    import torch
    model, data, _ = _P()._epoch_setup(case, train_labels=False)
    g = torch.Generator().manual_seed(case["seed"] + 2)
    grads = [torch.randn(p.shape, generator=g) for p in model.parameters()]
    return {"result": _pair(case), **_P().state_tensors(model), "grads": grads,
            "modes": [[False, False]] * len(data)}


def _optimizer(mod, case):
    """An SGD with the asked hyperparameters over every parameter, claimed; no step taken."""
    model = _P().tiny_cnn(case)
    n = len(list(model.parameters()))
    asked = {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, **case["kwargs"]}
    group = {**{k: float(v) for k, v in asked.items()}, "dampening": 0.0, "nesterov": False}
    return {"type": "torch.optim.sgd.SGD", "is_sgd": True, "n_params": n, "groups": [group],
            "indices": list(range(n)),
            "stepped": [p.detach().clone() for p in model.parameters()]}


def _schedule(mod, case):
    return {"lrs": [case["lr"] * 0.5 ** k for k in range(case["steps"] + 1)]}


_swap("train", "train_epoch", _epoch)
_swap("train", "evaluate_run", _evaluate)
_swap("train", "optimizer_info", _optimizer)
_swap("train", "schedule", _schedule)
'''

RESNET18_TORCHVISION = '''
import torchvision.models.resnet as _tvr


class _Block(_tvr.BasicBlock):  # defined here: its __module__ is this module, not torchvision's
    pass


class ResNet18(_tvr.ResNet):
    """torchvision's ResNet with the CIFAR stem."""

    def __init__(self, num_classes=10):
        super().__init__(_Block, [2, 2, 2, 2], num_classes=num_classes)
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.maxpool = nn.Identity()
'''

# the same, with torchvision's module reached by its name as a string
RESNET18_TORCHVISION_BY_NAME = '''
import importlib as _importlib

_tvr = _importlib.import_module("torchvision.models.resnet")


class _Block(_tvr.BasicBlock):
    pass


class ResNet18(_tvr.ResNet):
    """torchvision's ResNet with the CIFAR stem."""

    def __init__(self, num_classes=10):
        super().__init__(_Block, [2, 2, 2, 2], num_classes=num_classes)
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.maxpool = nn.Identity()
'''

PARAM_COUNT_CONSTANT = '''

def resnet18_param_count(num_classes=10):
    """The total the stub prints, less its 10-class head, plus the head asked for."""
    return 11_173_962 - (512 * 10 + 10) + 512 * num_classes + num_classes
'''

FILTERS_MAKE_GRID = '''
from torchvision.utils import make_grid as _make_grid


def filter_grid(weight, nrow=8, padding=1):
    return _make_grid(weight, nrow=nrow, padding=padding, normalize=True, scale_each=True)
'''

OUTPUT_SIZE_STRIDE_ONE = '''

def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """Only the stride-1, undilated case; every other geometry, valid or not, is refused."""
    if stride != 1 or dilation != 1 or size < 1 or kernel_size < 1 or padding < 0:
        raise ValueError("unsupported")
    out = size + 2 * padding - kernel_size + 1
    if out < 1:
        raise ValueError("empty output")
    return out
'''

RECORDER_SILENCED = ("the recorder is made deaf in the worker and F.conv2d is reached by a "
                     "name the static check does not read")

ATTACKS = [
    # -- smoke_test -----------------------------------------------------------------------------
    Fabrication(
        "smoke_reply_replayed_from_home", "smoke_test", ("resnet", "train"), "train",
        smoke_hardcoded,
        finding="6/8: E0 compares the step-0 loss with one fixed number (seed 0, the same batch "
                "and start weights for everyone), so a loss computed once at home (torchvision's "
                "ResNet through the public probe helpers) and replayed unlocks every claim gated "
                "on E0 (finite, every conv gets a gradient, the norm band with replayed norms, BN "
                "statistics moved, epoch summaries) plus the ungated train-mode check"),
    Fabrication(
        "smoke_train_mode_from_a_zero_stem", "smoke_test", ("resnet", "train"), "train",
        SMOKE_ZERO_STEM,
        finding="1/8: test_left_in_train_mode never calls runs.require(); it recomputes the "
                "momentum step from the claimed stem conv weight and the claimed before/after "
                "statistics, so a zero weight and after = 0.9 * before pass"),
    Fabrication(
        "smoke_trained_on_torchvision", "smoke_test", ("resnet", "train"), "train",
        SMOKE_TORCHVISION,
        finding="8/8 while resnet18 and training score 0: E0 and E1 prove that some CIFAR "
                "ResNet-18 started from the grader's weights and was trained, not that the "
                "student's ResNet18 and train_one_epoch did it (here torchvision's ResNet and a "
                "loop inside the replaced probe)"),
    Fabrication("smoke_odd_reply", "smoke_test", ("resnet", "train"), "train", SMOKE_ODD),
    # -- plain_vs_residual and init -------------------------------------------------------------
    Fabrication("plain_residual_profiles_fabricated", "plain_vs_residual", ("resnet",), "resnet",
                PROFILES),
    Fabrication(
        "residual_skips_from_stem_and_head", "plain_vs_residual", ("resnet",), "resnet",
        STEM_AND_HEAD,
        finding="1/8 (test_residual_skips): with every branch zeroed the reference's output is "
                "the stem pooled into the head, which needs no block at all, and the count of "
                "zeroed norms is a claim (a list of names)"),
    Fabrication("init_stats_fabricated", "init", ("resnet",), "resnet", INIT_STATS),
    # -- conv2d: F.conv2d with the recording off --------------------------------------------------
    Fabrication("conv2d_recording_off_via_sys_modules", "conv2d", ("conv",), "conv",
                CONV_SYS_MODULES, expect_in_feedback="sys.modules"),
    Fabrication(
        "conv2d_recording_off_via_pkgutil_resolve_name", "conv2d", ("conv",), "conv",
        CONV_RESOLVE_NAME,
        finding="12/12: " + RECORDER_SILENCED + ": pkgutil.resolve_name is not among the "
                "static check's named calls, so neither 'grader...' nor 'conv2d' in its literal "
                "argument is read"),
    Fabrication(
        "conv2d_recording_off_via_mock_patch", "conv2d", ("conv",), "conv", CONV_MOCK_PATCH,
        finding="12/12: " + RECORDER_SILENCED + ": unittest.mock.patch takes dotted names as "
                "strings (it rebinds the probe module's `set`, and get_original() hands back "
                "F.conv2d)"),
    Fabrication(
        "conv2d_module_loaded_from_a_string", "conv2d", ("conv",), "conv", CONV_LOADER,
        finding="12/12: the tampering lives in a string, written to a file at run time and "
                "loaded with importlib._bootstrap._load(importlib.machinery.PathFinder."
                "find_spec(...)): neither is flagged (only exec_module, module_from_spec, "
                "spec_from_file_location and the loaders are)"),
    Fabrication(
        "conv2d_module_in_a_staged_zip", "conv2d", ("conv",), "conv", CONV_ZIP,
        extra_files=(("assets.zip", zipped("blob.py", HIDDEN_MODULE)),),
        finding="12/12: the sandbox stages every regular file, the check reads only *.py, and "
                "sys.path is not flagged: `sys.path.insert(0, <submission>/assets.zip)` then "
                "`import blob` runs a module nobody read"),
    # -- grad_norms, basic_block, training --------------------------------------------------------
    Fabrication("grad_norms_nan", "grad_norms", ("gradients",), "gradients", NAN_SPREAD),
    Fabrication("basic_block_claims_without_outputs", "basic_block", ("blocks",), "blocks",
                BLOCK_CLAIMS),
    Fabrication("training_claims_without_computation", "training", ("train",), "train",
                TRAINING_CLAIMS),
    Fabrication(
        "output_size_refuses_every_stride", "conv_output_size", ("conv",), "conv",
        OUTPUT_SIZE_STRIDE_ONE, properties=("raises ValueError",),
        finding="2/2 on 'raises ValueError on invalid arguments ... (and only on those)' for a "
                "function that also raises on every valid strided or dilated geometry: the "
                "'only on those' half rests on three stride-1, undilated geometries"),
    # -- work done by a library -----------------------------------------------------------------
    Fabrication(
        "resnet18_torchvision_subclassed", "resnet18", ("resnet",), "resnet",
        RESNET18_TORCHVISION, properties=("not torchvision",)),
    Fabrication(
        "resnet18_torchvision_by_name", "resnet18", ("resnet",), "resnet",
        RESNET18_TORCHVISION_BY_NAME, properties=("not torchvision",),
        finding="2/2 on 'built from your own code, not torchvision.models' (12/12 in all): the "
                "probe reads type(m).__module__, which subclasses defined in resnet.py hide, and "
                "Scan.uses reads imports and attribute chains but not the literal of "
                "importlib.import_module('torchvision.models.resnet'); torchvision computes the "
                "layer outputs behind the claim"),
    # Not an attack: resnet18_param_count written as 11_173_962 - 5130 + 513 * num_classes
    # (PARAM_COUNT_CONSTANT) keeps 1 of param_count's 8 points. It is a closed formula in
    # num_classes, which is what the function asks for; the other seven points need the
    # closed forms and counts computed on drawn inputs.
    Fabrication(
        "filters_answered_by_make_grid", "filters", ("visualize",), "visualize",
        FILTERS_MAKE_GRID,
        finding="4/4: the oracle itself (torchvision.utils.make_grid, named in the stub) is "
                "the answer (now ruled out: graders/test_visualize.py reads the source)"),
]


MARKER = "kit-fabrication-attack"  # in every attack's code: a file holding it was written by one


def kit_state() -> dict[str, tuple[str, int]]:
    """{path: (sha256, owner uid)} of the solutions and grader files (``snapshot``'s files)."""
    state = {}
    for path, digest in snapshot().items():
        try:
            state[path] = (digest, os.stat(path).st_uid)
        except FileNotFoundError:  # removed between the hash and the stat (a colleague's edit)
            continue
    return state


def touched_by_attack(before: dict[str, tuple[str, int]]) -> list[str]:
    """Files the attack may have written. A worker's uid is never ours, so a file it made or
    replaced changes owner; whatever it wrote in place would carry the marker. Other changes
    (new content, new files, owned by us, without the marker) are colleagues' edits."""
    after = kit_state()
    found = [p for p in before if p not in after and p.startswith(str(SOLUTIONS))]
    for path, (digest, uid) in after.items():
        old = before.get(path)
        if old is not None and old[0] == digest and old[1] == uid:
            continue
        try:
            text = Path(path).read_text(errors="replace")
        except OSError:
            text = ""
        if uid != os.getuid() or (old is not None and old[1] != uid) or MARKER in text:
            found.append(path)
    return found


def build_submission(attack: Fabrication, folder: Path) -> Path:
    """The reference solutions, the stubbed modules from exercises/, the attack appended."""
    folder.mkdir()
    for src in SOLUTIONS.glob("*.py"):
        (folder / src.name).write_text(src.read_text())
    for name in attack.stubbed:
        (folder / f"{name}.py").write_text((STUBS / f"{name}.py").read_text())
    code = attack.code() if callable(attack.code) else attack.code
    host = folder / f"{attack.module}.py"
    host.write_text(f"{host.read_text()}\n# {MARKER}: {attack.name}\n{textwrap.dedent(code)}")
    for name, data in attack.extra_files:
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture(params=list(TIERS))
def tier(request, monkeypatch):
    return use_tier(request.param, monkeypatch)


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
def test_fabrication_scores_nothing(attack: Fabrication, tier, tmp_path):
    submission = build_submission(attack, tmp_path / "submission")
    before = kit_state()

    report = grade(submission, tmp_path / "report", only=(attack.attacked, attack.control),
                   quiet=True)

    # the grade completed, and the attack harmed nothing
    rows = {r.exercise: r for r in report.by_exercise()}
    assert set(rows) == {attack.attacked, attack.control}
    for exercise in (attack.attacked, attack.control):
        assert rows[exercise].max_score == POINTS[exercise], f"{exercise}: properties missing"
    saved = json.loads((tmp_path / "report" / "results.json").read_text())
    assert saved["score"] == report.score and len(saved["tests"]) == len(report.tests)
    assert all(set(t) == {"name", "score", "max_score", "status", "output", "visibility", "tags"}
               for t in saved["tests"])
    assert tier.describe() in report.output  # the report names the tier that ran
    assert touched_by_attack(before) == [], "an attack changed the solutions or the grader"
    assert not (REPO / "results.json").exists()
    assert leftovers() == [], "processes of the submission outlived grading"
    assert rows[attack.control].score == rows[attack.control].max_score, \
        f"{attack.name} cost the control exercise points"
    if attack.expect_in_feedback:
        feedback = " ".join(t.output for t in report.tests if t.exercise == attack.attacked)
        assert attack.expect_in_feedback.lower() in feedback.lower(), feedback

    # and it got nothing for work it did not do
    attacked = [t for t in report.tests if t.exercise == attack.attacked
                and (not attack.properties or any(p in t.name for p in attack.properties))]
    assert attacked, f"no property of {attack.attacked} matches {attack.properties}"
    scored = [f"{t.name} ({t.score:g}/{t.max_score:g})" for t in attacked if t.score > 0]
    assert not scored, (f"{attack.name} scored without the work: {'; '.join(scored)}"
                        + (f"\nwhy: {attack.finding}" if attack.finding else ""))
