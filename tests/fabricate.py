"""Handles that answer probes without running any student code: the hostile worker, modelled.

A worker is the student's own process, so its reply is whatever the student chose to send.
These handles send the most plausible replies one can build without doing the exercises:

* ``FabricatingHandle``: for every probe, the reply a correct submission would send, rebuilt
  from public information only. It keeps what public code and documents tell anyone (layer
  lists and names, shapes, flags of good behaviour, the constants the stubs print, the
  exception the contract names) and fakes everything that needs the computation: random
  tensors of the right shape and scale, numbers near the right ones, internally consistent
  statistics (epoch means of the faked losses, a moved running mean). A grade with it must
  score 0 on every property: a property it passes would score a claim.
* ``FuzzingHandle``: the reference's own reply with every number in it made wrong one way
  (NaN, inf, huge, a wrong shape, off by one, noise) or harmlessly (-0.0 for 0.0).

    with FabricatingHandle() as student:   # used as the ``student`` of a grade
        report = run_graders(pack, folder, out, config, early_handle=student)
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch

from grader.handle import ReferenceHandle
from grader.probes import ProbeFn

_MEMO: dict[str, Any] = {}  # reference replies, shared by every handle in this process


def reference_reply(reference: ReferenceHandle, probe: ProbeFn, case: dict) -> Any:
    """What a correct submission replies (the reference's own reply), memoised."""
    key = f"{probe.probe_name}\0{case!r}"
    if key not in _MEMO:
        _MEMO[key] = reference.run(probe, copy.deepcopy(case))
    return copy.deepcopy(_MEMO[key])


class _Handle:
    """What the plugin asks of a student handle, around ``answer``."""

    isolation = "fabricated"

    def __init__(self, reference: ReferenceHandle | None = None) -> None:
        self.reference = reference or ReferenceHandle()
        self.notes: list[str] = []
        self.calls = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def run(self, probe: ProbeFn, case: dict) -> Any:
        self.calls += 1
        return self.answer(probe, case, reference_reply(self.reference, probe, case))

    def answer(self, probe: ProbeFn, case: dict, ideal: Any) -> Any:
        raise NotImplementedError


# -- fabrication --------------------------------------------------------------------------------
def fake_tensor(value: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random values of the same shape and dtype, with the same mean and spread."""
    if not value.is_floating_point():
        return value + 1
    if value.numel() == 0:
        return value.clone()
    real = value.double()
    std = float(real.std()) if value.numel() > 1 else abs(float(real.mean())) or 1.0
    noise = torch.randn(value.shape, generator=g, dtype=torch.float64)
    return (float(real.mean()) + (std or 1.0) * noise).to(value.dtype)


def near(value: float, g: torch.Generator) -> float:
    """A number near ``value``: off by 5-30% (a plausible guess, not the computation)."""
    factor = 1 + float(torch.empty(1).uniform_(0.05, 0.3, generator=g))
    return value * factor if value else 0.05 * factor


def fake_numbers(value: Any, g: torch.Generator) -> Any:
    """Fake every float and float tensor in ``value``; keep the structure, strings, bools and
    ints (names, shapes, counts, flags: the claims anyone can make)."""
    if type(value) is torch.Tensor:
        return fake_tensor(value, g)
    if type(value) is float:
        return near(value, g)
    if type(value) in (list, tuple):
        return type(value)(fake_numbers(v, g) for v in value)
    if type(value) is dict:
        return {k: fake_numbers(v, g) for k, v in value.items()}
    return value


class FabricatingHandle(_Handle):
    """Plausible replies from public information only (module docstring)."""

    # Known to anyone, so sent as a correct submission would: the ValueError the contract
    # names, the ResNet-18 fields the stub prints, the lesson's structure (expansion, the
    # model's parameter total and stage shapes).
    PUBLIC = {"conv:output_size_error", "receptive_field:field_error",
              "receptive_field:resnet18_table", "blocks:expansion", "resnet:resnet18_build",
              "resnet:resnet18_shapes"}
    # The answers of the exercises' own functions on drawn inputs are not known without
    # computing them: a plausible guess, off by one.
    GUESSED = {"conv:output_size", "receptive_field:field", "param_count:closed_form",
               "param_count:count"}

    def answer(self, probe: ProbeFn, case: dict, ideal: Any) -> Any:
        g = torch.Generator().manual_seed(self.calls)
        name = probe.probe_name.rsplit(".", 1)[-1]  # "smoke:smoke_run"
        if name in self.PUBLIC:
            return ideal
        if name in self.GUESSED:
            return self._guess_int(ideal)
        special = getattr(self, "_" + name.replace(":", "_"), None)
        return special(case, ideal, g) if special else fake_numbers(ideal, g)

    @staticmethod
    def _guess_int(value: Any) -> Any:
        return value + 1 if type(value) is int else value

    def _param_count_table(self, case, ideal, g):
        return [(n, shape, self._guess_int(count)) for n, shape, count in ideal] \
            if type(ideal) is list else ideal

    def _param_count_resnet18_count(self, case, ideal, g):
        # the stubs print 11,173,962 for 10 classes; other heads need the formula
        return ideal if case["num_classes"] in (None, 10) else self._guess_int(ideal)

    def _gradients_spread(self, case, ideal, g):
        values = {v for _, v in case["norms"]}
        if len(values) == 1:  # log10(max / min) of equal norms is 0 without computing
            return ideal
        return {**ideal, "value": near(ideal["value"], g)}

    def _resnet_init_stats(self, case, ideal, g):
        """Fresh Kaiming-normal draws (fan_out), not from the seeded generator: exactly the
        statistics a correct init has; BatchNorms, biases and the head as a correct one
        leaves them."""
        from grader.packs.day02.probes.resnet import kaiming_std

        weights = [torch.randn(w.shape, generator=g) * kaiming_std(list(w.shape), "fan_out")
                   for w in ideal["conv_weights"]]
        return {**ideal, "conv_weights": weights}

    def _train_evaluate_run(self, case, ideal, g):
        """The untouched state is public (the probe's model and gradients); the pair is not."""
        faked = fake_numbers(ideal, g)
        return {**faked, "params": ideal["params"], "buffers": ideal["buffers"],
                "grads": ideal["grads"], "modes": ideal["modes"]}

    def _smoke_smoke_run(self, case, ideal, g):
        """A falling loss curve, epoch means that agree with it, weights of the right shapes
        and scale, and a stem BatchNorm check that moved."""
        faked = fake_numbers(ideal, g)
        losses = faked["losses"]
        steps = len(losses) // max(len(faked["epochs"]), 1)
        faked["epochs"] = [[sum(losses[i * steps:(i + 1) * steps]) / steps, acc]
                           for i, (_, acc) in enumerate(ideal["epochs"])]
        check = faked["check"]
        stem = faked["trained"].get(check.get("role"), {})
        if "running_mean" in stem:
            check["before"] = [stem["running_mean"], stem["running_var"]]
            check["after"] = [0.9 * t + 0.1 * fake_tensor(t, g) for t in check["before"]]
        return faked


# -- fuzzing ------------------------------------------------------------------------------------
KINDS = ("nan", "inf", "huge", "shape", "noise", "off_by_one", "negative_zero")
# every number wrong: a property must not pass on any of these
WRONG = ("nan", "inf", "huge", "shape", "noise", "off_by_one")


def mutate(value: Any, kind: str) -> Any:
    """``value`` with every number changed one way (see ``KINDS``); strings, bools and the
    structure stay. ``negative_zero`` turns 0.0 into -0.0 and nothing else."""
    if type(value) is torch.Tensor:
        return _mutate_tensor(value, kind)
    if type(value) is float:
        return {"nan": math.nan, "inf": math.inf, "huge": value * 1e30 + 1e30,
                "shape": [value], "noise": value * 1.01 + 1e-3, "off_by_one": value + 1.0,
                "negative_zero": -0.0 if value == 0 else value}[kind]
    if type(value) is int:
        return {"shape": [value], "negative_zero": value, "huge": value * 1000 + 7}.get(
            kind, value + 1)
    if type(value) in (list, tuple):
        return type(value)(mutate(v, kind) for v in value)
    if type(value) is dict:
        return {k: mutate(v, kind) for k, v in value.items()}
    return value


def _mutate_tensor(value: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "shape":
        return value.unsqueeze(0).clone()
    if kind == "negative_zero":
        return torch.where(value == 0, -torch.zeros_like(value), value) \
            if value.is_floating_point() else value.clone()
    if not value.is_floating_point():
        return value + 1
    return {"nan": torch.full_like(value, math.nan), "inf": torch.full_like(value, math.inf),
            "huge": value * 1e30 + 1e30, "noise": value * 1.01 + 1e-3,
            "off_by_one": value + 1.0}[kind]


class FuzzingHandle(_Handle):
    """The reference's reply with every number made wrong one way (``kind``)."""

    isolation = "fuzzed"

    def __init__(self, kind: str, reference: ReferenceHandle | None = None) -> None:
        super().__init__(reference)
        self.kind = kind

    def answer(self, probe: ProbeFn, case: dict, ideal: Any) -> Any:
        return mutate(ideal, self.kind)
