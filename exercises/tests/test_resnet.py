"""Self-check of ``resnet.py``: exercises ``resnet18``, ``plain_vs_residual`` and ``init``.

Oracles: the lesson's shapes and parameter total (11,173,962), module counts, gradient norms
measured here with torch (not with your gradients.py), and Kaiming's closed form for the
standard deviation, sqrt(2 / fan_out).
"""

from __future__ import annotations

import ast
import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from .feedback import msg

RESNET18_PARAMS = 11_173_962
STAGES = {"stem": (2, 64, 32, 32), "layer1": (2, 64, 32, 32), "layer2": (2, 128, 16, 16),
          "layer3": (2, 256, 8, 8), "layer4": (2, 512, 4, 4)}  # "stem": what enters layer1
_MODELS: dict[int, nn.Module] = {}  # ResNet18() per loaded module: build it once, not per test


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _resnet18(resnet) -> nn.Module:
    if id(resnet) not in _MODELS:
        torch.manual_seed(0)
        _MODELS.clear()
        _MODELS[id(resnet)] = resnet.ResNet18()
    return _MODELS[id(resnet)]


def _shape(out: object) -> object:
    return tuple(out.shape) if isinstance(out, torch.Tensor) else f"a {type(out).__name__}"


# -- resnet18 ------------------------------------------------------------------------------------
@pytest.mark.resnet18
@pytest.mark.points(2)
def test_resnet18_output_shape(load_exercise):
    """maps a CIFAR batch (2, 3, 32, 32) to logits (2, num_classes)"""
    resnet = load_exercise("resnet")
    with torch.no_grad():
        out = _resnet18(resnet)(torch.randn(2, 3, 32, 32))  # (N, 3, 32, 32)
    assert _shape(out) == (2, 10), msg("ResNet18() on a (2, 3, 32, 32) batch", _shape(out),
                                        (2, 10), "stem, four stages, global pool, flatten, fc")
    torch.manual_seed(0)
    with torch.no_grad():
        out = resnet.ResNet18(num_classes=7)(torch.randn(2, 3, 32, 32))
    assert _shape(out) == (2, 7), msg("ResNet18(num_classes=7) on a (2, 3, 32, 32) batch",
                                       _shape(out), (2, 7), "the fc layer maps 512 to num_classes")


@pytest.mark.resnet18
@pytest.mark.points(2)
def test_resnet18_parameter_count(load_exercise):
    """holds the lesson's 11,173,962 parameters"""
    resnet = load_exercise("resnet")
    got = _numel(_resnet18(resnet))
    assert got == RESNET18_PARAMS, msg(
        "ResNet18(): sum of p.numel() over its parameters", f"{got:,}", f"{RESNET18_PARAMS:,}",
        "3x3 stride-1 stem conv without bias + BN (no max-pool); two BasicBlocks per stage at "
        "widths 64, 128, 256, 512; fc 512 -> 10. Compare with resnet18_param_count's table")


@pytest.mark.resnet18
@pytest.mark.points(2)
def test_resnet18_stage_shapes(load_exercise):
    """the stem and layer1..layer4 output 32x32, 32x32, 16x16, 8x8, 4x4 maps"""
    resnet = load_exercise("resnet")
    model = _resnet18(resnet)
    layers = [name for name in STAGES if name != "stem"]
    missing = [name for name in layers if not isinstance(getattr(model, name, None), nn.Module)]
    assert not missing, msg("ResNet18(): look up its stages by attribute", f"no {missing}",
                             f"attributes {layers}",
                             "name the stages 'layer1'..'layer4', as in the docstring: "
                             "checkpoints and these checks rely on them")
    shapes: dict[str, object] = {}

    def record(name: str):
        def hook(module: nn.Module, inputs: tuple, output: object) -> None:
            if name == "layer1":
                shapes.setdefault("stem", _shape(inputs[0]))
            shapes.setdefault(name, _shape(output))
        return hook

    hooks = [getattr(model, name).register_forward_hook(record(name)) for name in layers]
    try:
        with torch.no_grad():
            model(torch.randn(2, 3, 32, 32))
    finally:
        for h in hooks:
            h.remove()
    wrong = {k: shapes.get(k, "never ran") for k in STAGES if shapes.get(k) != STAGES[k]}
    assert not wrong, msg("ResNet18() on a (2, 3, 32, 32) batch, with forward hooks on "
                           f"{layers}", wrong, {k: STAGES[k] for k in wrong},
                           "strides 1, 1, 2, 2, 2 for the stem conv (no max-pool), layer1, "
                           "layer2, layer3, layer4; widths 64, 64, 128, 256, 512")


@pytest.mark.resnet18
@pytest.mark.points(1)
def test_resnet18_built_by_hand(load_exercise):
    """is built from your BasicBlock, not imported from torchvision.models"""
    resnet = load_exercise("resnet")
    tree = ast.parse(inspect.getsource(resnet))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for a in node.names}
    from_tv = {f"torchvision.{a.name}" for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and node.module == "torchvision"
               for a in node.names}
    bad = sorted(m for m in imported | from_tv if m and m.startswith("torchvision.models"))
    assert not bad, msg("read the imports of resnet.py", bad, "no torchvision.models",
                         "build ResNet18 from your BasicBlock: that is the exercise")
    model = _resnet18(resnet)
    foreign = sorted({type(m).__module__ for m in model.modules()
                      if type(m).__module__.startswith("torchvision")})
    assert not foreign, msg("ResNet18(): where its modules come from", foreign,
                             "torch.nn and your own modules only",
                             "build ResNet18 from your BasicBlock, not from torchvision")
    block = load_exercise("blocks").BasicBlock
    count = sum(isinstance(m, block) for m in model.modules())
    assert count == 8, msg("ResNet18(): count its BasicBlock modules", count, 8,
                            "four stages of two BasicBlocks (from blocks.py)")


# -- plain vs residual ---------------------------------------------------------------------------
def _weight_layers(model: nn.Module) -> int:
    return sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())


def _spread(model: nn.Module, seed: int) -> float:
    """log10(max / min) of the per-weight gradient norms after one cross-entropy backward."""
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(8, 3, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g)
    F.cross_entropy(model(x), y).backward()
    norms = [p.grad.norm().item() for p in model.parameters() if p.dim() >= 2]
    return math.log10(max(norms) / min(norms))


@pytest.mark.plain_vs_residual
@pytest.mark.points(1)
def test_plain_and_residual_output_shapes(load_exercise):
    """PlainNet and ResidualNet map (2, 3, 16, 16) to (2, num_classes)"""
    resnet = load_exercise("resnet")
    for cls in (resnet.PlainNet, resnet.ResidualNet):
        for classes, depth in ((10, 6), (7, 8)):
            torch.manual_seed(0)
            with torch.no_grad():
                out = cls(num_classes=classes, depth=depth)(torch.randn(2, 3, 16, 16))
            assert _shape(out) == (2, classes), msg(
                f"{cls.__name__}(num_classes={classes}, depth={depth}) on (2, 3, 16, 16)",
                _shape(out), (2, classes), "keep 64 channels and the spatial size (3x3 convs, "
                "padding 1), then global average pool, flatten and fc 64 -> num_classes")


@pytest.mark.plain_vs_residual
@pytest.mark.points(2)
@pytest.mark.parametrize("depth", [4, 10, 18])
def test_depth_counts_weight_layers(load_exercise, depth):
    """depth counts weight layers; ResidualNet holds (depth - 2) // 2 BasicBlocks"""
    resnet = load_exercise("resnet")
    block = load_exercise("blocks").BasicBlock
    plain, residual = resnet.PlainNet(depth=depth), resnet.ResidualNet(depth=depth)
    for model in (plain, residual):
        got = _weight_layers(model)
        assert got == depth, msg(f"{type(model).__name__}(depth={depth}): count Conv2d and "
                                  "Linear modules", got, depth,
                                  "a stem conv, depth - 2 convs 64 -> 64 and one fc layer")
    blocks = sum(isinstance(m, block) for m in plain.modules())
    assert blocks == 0, msg(f"PlainNet(depth={depth}): count BasicBlocks", blocks, 0,
                             "the plain net has no shortcut anywhere")
    blocks = sum(isinstance(m, block) for m in residual.modules())
    assert blocks == (depth - 2) // 2, msg(
        f"ResidualNet(depth={depth}): count BasicBlocks", blocks, (depth - 2) // 2,
        "a stem conv-BN-ReLU, then (depth - 2) // 2 BasicBlock(64, 64), pool, fc")


@pytest.mark.plain_vs_residual
@pytest.mark.points(2)
def test_residual_gradient_spread_is_smaller(load_exercise):
    """at depth 50, ResidualNet's gradient norms are far less uneven than PlainNet's"""
    resnet = load_exercise("resnet")
    plain, residual = [], []
    for seed in range(3):
        torch.manual_seed(seed)
        plain.append(_spread(resnet.PlainNet(depth=50), seed))
        torch.manual_seed(seed)
        residual.append(_spread(resnet.ResidualNet(depth=50), seed))
    p, r = sum(plain) / 3, sum(residual) / 3
    assert r < p - 1.0, msg(
        "depth 50, default init, 8 x 3 x 16 x 16 inputs, 3 seeds: the spread log10(max / min) "
        "of the weights' gradient norms after one cross-entropy backward",
        f"PlainNet {p:.2f}, ResidualNet {r:.2f}",
        "the residual spread at least 1 below the plain one (typically about 3.5 vs 1.5)",
        "with BatchNorm, the plain net's norms grow toward the input; identity shortcuts "
        "(added before the ReLU, no BN or conv on them) keep every layer close to the output")


# -- init ----------------------------------------------------------------------------------------
def _init_model() -> nn.Module:
    """A wide conv (many samples for a std estimate), a biased conv, BatchNorms, nested."""
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(64, 256, 3, bias=False), nn.BatchNorm2d(256), nn.ReLU()),
        nn.Sequential(nn.Conv2d(256, 16, 1), nn.BatchNorm2d(16)), nn.Flatten(),
        nn.Linear(16, 4))


@pytest.mark.init
@pytest.mark.points(1)
def test_kaiming_init_returns_model(load_exercise):
    """kaiming_init_ initialises in place and returns the model"""
    resnet = load_exercise("resnet")
    model = _init_model()
    got = resnet.kaiming_init_(model)
    assert got is model, msg("kaiming_init_(model)", f"a {type(got).__name__}",
                              "the same model object", "initialise in place, then return model "
                              "(so that kaiming_init_(ResNet18()) works in one line)")


@pytest.mark.init
@pytest.mark.points(2)
def test_kaiming_conv_std(load_exercise):
    """conv weights are normal with std sqrt(2 / fan_out), conv biases 0"""
    resnet = load_exercise("resnet")
    torch.manual_seed(0)
    model = resnet.kaiming_init_(_init_model())
    w = model[0][0].weight.detach()  # (256, 64, 3, 3): fan_out = 256 * 9
    want = math.sqrt(2.0 / (256 * 9))
    std = w.std().item()
    names = {math.sqrt(2.0 / (64 * 9)): "fan_in", 1.0 / math.sqrt(3 * 64 * 9): "PyTorch's default"}
    near = [n for s, n in names.items() if abs(std - s) < 0.05 * s]
    assert abs(std - want) < 0.05 * want, msg(
        "kaiming_init_ on Conv2d(64, 256, 3): the std of its weight", f"{std:.4f}"
        + (f" (that is {near[0]})" if near else ""), f"{want:.4f} = sqrt(2 / (256 * 3 * 3))",
        "Kaiming normal, mode='fan_out' (C_out * k * k), nonlinearity='relu' (gain sqrt(2))")
    tails = (w.abs() > 2 * want).float().mean().item()
    assert tails > 0.03, msg("kaiming_init_ on Conv2d(64, 256, 3): share of weights beyond "
                              "2 std", f"{tails:.2%}", "about 4.6% (a normal distribution)",
                              "use the normal variant, not the uniform one")
    bias = model[1][0].bias.detach()
    assert torch.equal(bias, torch.zeros_like(bias)), msg(
        "kaiming_init_ on Conv2d(256, 16, 1) with a bias", f"bias {bias[:4].tolist()}...",
        "all zeros", "set conv biases to 0")


@pytest.mark.init
@pytest.mark.points(1)
def test_kaiming_batchnorm(load_exercise):
    """BatchNorm weights become 1 and biases 0"""
    resnet = load_exercise("resnet")
    model = _init_model()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for bn in bns:  # start away from PyTorch's defaults, which are already 1 and 0
            bn.weight.uniform_(2.0, 3.0)
            bn.bias.uniform_(1.0, 2.0)
    resnet.kaiming_init_(model)
    for bn in bns:
        ok = bool((bn.weight == 1).all() and (bn.bias == 0).all())
        assert ok, msg("kaiming_init_ on a model whose BatchNorms start at weight 2..3, bias "
                        "1..2", f"weight {bn.weight[:3].tolist()}..., bias "
                        f"{bn.bias[:3].tolist()}...", "weight 1, bias 0",
                        "visit every module (model.modules() recurses into nested ones)")
