"""``probes/roles.py``: identical weights by role, whatever the layer names, containers or the
order the shortcut is built and run in; layers that never run keep their values; the model's
modes, statistics and gradients are left as they were."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grader.packs.day02.probes.roles import assign_by_role, roles, run_order
from solutions.blocks import BasicBlock as ReferenceBlock
from solutions.resnet import ResNet18


class OwnNamesBlock(nn.Module):
    """Own names, nn.ReLU modules, an nn.Identity shortcut."""

    expansion = 1

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.n1 = nn.BatchNorm2d(c_out)
        self.act = nn.ReLU()
        self.c2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.n2 = nn.BatchNorm2d(c_out)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                      nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.n2(self.c2(self.act(self.n1(self.c1(x))))) + self.skip(x))


class ShortcutFirstBlock(nn.Module):
    """The seed's order: the shortcut is defined and run before the residual branch."""

    expansion = 1

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(c_out))
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = self.shortcut(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return F.relu(out)


class ModuleListBlock(nn.Module):
    """A ModuleList branch run in a loop, the projection as two loose attributes."""

    expansion = 1

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
                                     nn.BatchNorm2d(c_out),
                                     nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
                                     nn.BatchNorm2d(c_out)])
        self.project = stride != 1 or c_in != c_out
        if self.project:
            self.proj_bn = nn.BatchNorm2d(c_out)  # defined before its conv on purpose
            self.proj_conv = nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for i, layer in enumerate(self.layers):
            out = F.relu(layer(out)) if i == 1 else layer(out)
        return F.relu(out + (self.proj_bn(self.proj_conv(x)) if self.project else x))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small tensors: a second intra-op thread only waits on barriers (10x slower under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


LAYOUTS = [OwnNamesBlock, ShortcutFirstBlock, ModuleListBlock]
CONFIGS = [(4, 4, 1), (4, 8, 1), (4, 4, 2), (3, 6, 2)]


def _pair(layout: type, config: tuple[int, int, int]) -> tuple[nn.Module, nn.Module, torch.Tensor]:
    """The reference block and ``layout``'s, each with its own (different) random init."""
    c_in, _, _ = config
    torch.manual_seed(0)
    reference = ReferenceBlock(*config).double()
    torch.manual_seed(1)
    other = layout(*config).double()
    x = torch.randn(3, c_in, 7, 6, dtype=torch.float64)  # (N, C_in, H, W), odd H
    return reference, other, x


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "in{}-out{}-s{}".format(*c))
@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda t: t.__name__)
def test_same_roles_and_outputs_whatever_the_layout(layout, config):
    reference, other, x = _pair(layout, config)
    expected = assign_by_role(reference, x, seed=3)
    got = assign_by_role(other, x, seed=3)
    assert sorted(got) == sorted(expected)
    for mode in (True, False):  # batch statistics, then running statistics
        reference.train(mode)
        other.train(mode)
        torch.testing.assert_close(other(x), reference(x), rtol=1e-12, atol=1e-12)


def test_seed_changes_the_values():
    reference, _, x = _pair(OwnNamesBlock, (4, 4, 1))
    assign_by_role(reference, x, seed=3)
    before = reference.conv1.weight.clone()
    assign_by_role(reference, x, seed=4)
    assert not torch.equal(before, reference.conv1.weight)


def test_roles_pair_each_norm_with_the_conv_before_it():
    _, block, x = _pair(ShortcutFirstBlock, (4, 8, 2))
    got = [(role, name) for role, name, _ in roles(block, x)]
    assert got == [("conv[8x4x1x1]#0", "shortcut.0"), ("bn<conv[8x4x1x1]#0>", "shortcut.1"),
                   ("conv[8x4x3x3]#0", "conv1"), ("bn<conv[8x4x3x3]#0>", "bn1"),
                   ("conv[8x8x3x3]#0", "conv2"), ("bn<conv[8x8x3x3]#0>", "bn2")]


class SpareLayerBlock(ShortcutFirstBlock):
    """A correct block that also builds a conv and a BatchNorm it never calls."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__(c_in, c_out, stride)
        self.spare = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.spare_bn = nn.BatchNorm2d(c_out)


def test_a_layer_that_never_runs_is_not_assigned():
    torch.manual_seed(0)
    block = SpareLayerBlock(4, 4)
    weight, mean = block.spare.weight.clone(), block.spare_bn.running_mean.clone()
    assigned = assign_by_role(block, torch.randn(2, 4, 5, 5))
    assert "spare" not in assigned.values() and "spare_bn" not in assigned.values()
    assert torch.equal(block.spare.weight, weight)
    assert torch.equal(block.spare_bn.running_mean, mean)
    # the spare conv has conv2's signature: had it been assigned, it would have taken a role
    assert sorted(assigned.values()) == ["bn1", "bn2", "conv1", "conv2"]


def test_modes_are_restored():
    torch.manual_seed(0)
    block = OwnNamesBlock(4, 8, 2).train()
    block.n2.eval()  # a mixed state must come back exactly as it was
    modes = {name: m.training for name, m in block.named_modules()}
    assign_by_role(block, torch.randn(2, 4, 5, 5))
    assert {name: m.training for name, m in block.named_modules()} == modes
    block.eval()
    assign_by_role(block, torch.randn(2, 4, 5, 5))
    assert not any(m.training for m in block.modules())


def test_running_stats_and_gradients_untouched():
    torch.manual_seed(0)
    block = ShortcutFirstBlock(4, 8, 2).train()
    x = torch.randn(2, 4, 5, 5)  # (N, C, H, W)
    before = {k: v.clone() for k, v in block.state_dict().items()}
    run_order(block, x)
    roles(block, x)
    after = block.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assign_by_role(block, x)
    assert all(p.grad is None for p in block.parameters())
    filled = {k: v.clone() for k, v in block.state_dict().items()}
    assign_by_role(block, x)  # idempotent: its own forward moved no statistic
    assert all(torch.equal(filled[k], v) for k, v in block.state_dict().items())
    assert int(block.bn1.num_batches_tracked) == 0


class GenericResNet(nn.Module):
    """The common ``ResNet(block, [2, 2, 2, 2])`` with a ``linear`` head."""

    def __init__(self, block: type, num_blocks: list[int], num_classes: int = 10) -> None:
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.stages = nn.ModuleList(
            self._make_layer(block, planes, n, stride)
            for planes, n, stride in zip((64, 128, 256, 512), num_blocks, (1, 2, 2, 2),
                                         strict=True))
        self.linear = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block: type, planes: int, n: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (n - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))  # (N, 64, H, W)
        for stage in self.stages:
            out = stage(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)  # (N, 512)
        return self.linear(out)


def test_resnet18_and_a_generic_twin_get_the_same_weights():
    torch.manual_seed(0)
    reference = ResNet18()
    torch.manual_seed(1)
    twin = GenericResNet(ShortcutFirstBlock, [2, 2, 2, 2])
    x = torch.randn(2, 3, 16, 16)  # (N, 3, H, W): small, the roles do not depend on H, W
    expected = assign_by_role(reference, x, seed=5)
    got = assign_by_role(twin, x, seed=5)
    assert sorted(got) == sorted(expected)
    assert len(got) == 3 + 8 * 4 + 3 * 2  # stem conv+bn, fc; 8 blocks x 4; 3 projections x 2
    with torch.no_grad():
        for mode in (False, True):
            reference.train(mode)
            twin.train(mode)
            torch.testing.assert_close(twin(x), reference(x), rtol=1e-4, atol=1e-5)
