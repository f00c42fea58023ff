"""Day 2 · CNNs and residual networks: the exercises, their points and module dependencies.

Ids, modules and the dependency table are fixed by docs/contract.md; points add up to 100.
"""

from __future__ import annotations

from pathlib import Path

from grader.manifest import Exercise, Pack

EXERCISES = (
    Exercise("conv_output_size", "Convolution output size", 6, ("conv",),
             owns=("conv.conv_output_size",)),
    Exercise("conv2d", "A hand-made conv2d", 12, ("conv",), owns=("conv.conv2d",)),
    Exercise("receptive_field", "Receptive fields", 6, ("receptive_field",)),
    Exercise("param_count", "Parameter counting", 8, ("param_count",)),
    Exercise("basic_block", "The residual BasicBlock", 14, ("blocks",)),
    Exercise("resnet18", "ResNet-18 for CIFAR-10", 12, ("resnet", "blocks"),
             owns=("resnet.ResNet18",)),
    Exercise("plain_vs_residual", "Plain net vs its residual twin", 8, ("resnet", "blocks"),
             owns=("resnet.PlainNet", "resnet.ResidualNet")),
    Exercise("init", "Kaiming initialisation", 6, ("resnet",), owns=("resnet.kaiming_init_",)),
    Exercise("grad_norms", "Per-layer gradient norms", 6, ("gradients",)),
    Exercise("training", "The training loop", 10, ("train",)),
    Exercise("smoke_test", "Training smoke test", 8, ("resnet", "blocks", "train")),
    Exercise("filters", "First-layer filter grid", 4, ("visualize",)),
)

MODULES = ("conv", "receptive_field", "param_count", "blocks", "resnet", "gradients", "train",
           "visualize")

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parents[2]  # beside grader/: solutions/, exercises/ and docs/ (or site-packages)

PACK = Pack(
    name="day02",
    title="Day 2 · CNNs & Residual Networks",
    modules=MODULES,
    exercises=EXERCISES,
    root=ROOT,
    figures="grader.packs.day02.figures",
    public_tests=REPO / "exercises" / "tests",
    contract=REPO / "docs" / "contract.md",
)
