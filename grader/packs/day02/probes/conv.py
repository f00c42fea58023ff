"""Probes of ``conv.py``: output-size arithmetic and the hand-made ``conv2d``."""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from grader.probes import probe


class AtenOpRecorder(TorchDispatchMode):
    """Records the name of every aten op that runs, below autograd and below any alias:
    ``from torch.nn.functional import conv2d as c`` still shows up as ``convolution``."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def convolution_ops(ops: list[str]) -> list[str]:
    """The recorded ops that are convolution operators (forward or backward, any backend)."""
    return sorted(op for op in ops if "conv" in op)


@probe("conv")
def output_size(mod, case: dict):
    return mod.conv_output_size(*case["args"])


@probe("conv")
def output_size_error(mod, case: dict) -> str:
    """The name of the exception raised, or ``"returned <value>"``."""
    try:
        value = mod.conv_output_size(*case["args"])
    except ValueError:
        return "ValueError"
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001  (which error it raised is the answer)
        return type(exc).__name__
    return f"returned {value!r}"[:80]


def conv_tensors(case: dict) -> dict[str, torch.Tensor]:
    """Input, weight, (bias) and upstream gradient for a conv2d case, from its seed (float64)."""
    g = torch.Generator().manual_seed(case["seed"])
    n, c, h, w = case["input_shape"]
    o, _, kh, kw = case["weight_shape"]
    t = {"input": torch.randn(n, c, h, w, generator=g, dtype=torch.float64),
         "weight": torch.randn(o, c, kh, kw, generator=g, dtype=torch.float64)}
    if case["bias"]:
        t["bias"] = torch.randn(o, generator=g, dtype=torch.float64)
    return t


@probe("conv")
def conv2d_run(mod, case: dict) -> dict:
    """Forward and backward of the student's conv2d, with the aten ops it reached."""
    if "values" in case:  # explicit tensors (the lesson's worked example)
        t = {k: torch.tensor(v, dtype=torch.float64) for k, v in case["values"].items()}
    else:
        t = conv_tensors(case)
    leaves = {k: v.clone().requires_grad_(True) for k, v in t.items()}
    recorder = AtenOpRecorder()
    with recorder:
        out = mod.conv2d(leaves["input"], leaves["weight"], leaves.get("bias"),
                         case["stride"], case["padding"], case["dilation"])
    if type(out) is not torch.Tensor:
        return {"output": f"a {type(out).__name__}", "ops": sorted(recorder.ops)}
    result = {"output": out.detach()}
    if case.get("backward", True) and out.requires_grad:
        g = torch.Generator().manual_seed(case.get("seed", 0) + 1)
        upstream = torch.randn(out.shape, generator=g, dtype=out.dtype)
        with recorder:
            out.backward(upstream)
        for k, leaf in leaves.items():
            result[f"grad_{k}"] = leaf.grad if leaf.grad is not None else "no gradient"
    elif case.get("backward", True):
        result["grad_input"] = "output does not require grad (the autograd graph is broken)"
    result["ops"] = sorted(recorder.ops)
    return result
