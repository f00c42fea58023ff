"""The in-process handle: what student failures become (one line each), and per-probe limits."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from grader.handle import InProcessHandle, guarded_call
from grader.probes import ProbeFailure, probe
from tests.corpus import SOLUTIONS

pytest_plugins = ["pytester"]


def failure_of(fn) -> ProbeFailure:
    with pytest.raises(ProbeFailure) as info:
        guarded_call(fn, 5.0, None, "probe")
    return info.value


def test_a_stub_is_not_implemented():
    def stub():
        raise NotImplementedError("basic_block: write BasicBlock.forward")

    failure = failure_of(stub)
    assert failure.kind == "not_implemented"
    assert failure.message == "not implemented yet: basic_block: write BasicBlock.forward"


def test_a_class_without_forward_is_a_bug_not_a_stub():
    class NoForward(nn.Module):  # e.g. `def foward(self, x)`: torch raises NotImplementedError
        def foward(self, x):
            return x

    failure = failure_of(lambda: NoForward()(torch.zeros(1)))
    assert failure.kind == "exception"
    assert "not implemented yet" not in failure.message
    assert 'missing the required "forward" function' in failure.message
    assert "did you define forward()" in failure.message


@pytest.fixture
def slow_submission(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "conv.py").write_text("import time\n\ndef conv_output_size(*args, **kwargs):\n"
                                 "    time.sleep(30)\n")
    return sub


@probe("conv", timeout=0.5)
def slow_probe(mod, case: dict) -> int:
    return mod.conv_output_size(5, 3)


@probe("conv")
def default_probe(mod, case: dict) -> int:
    return mod.conv_output_size(5, 3)


def test_in_process_handle_honours_the_probes_own_timeout(slow_submission):
    with InProcessHandle(slow_submission, timeout_s=20.0) as handle:
        started = time.monotonic()
        with pytest.raises(ProbeFailure) as info:
            handle.run(slow_probe, {})
        assert time.monotonic() - started < 5  # the probe's 0.5 s, not the handle's 20 s
    assert info.value.kind == "timeout" and "within 0.5 s" in info.value.message


def test_without_a_probe_timeout_the_handles_applies(slow_submission):
    with InProcessHandle(slow_submission, timeout_s=0.3) as handle:
        with pytest.raises(ProbeFailure) as info:
            handle.run(default_probe, {})
    assert info.value.kind == "timeout" and "within 0.3 s" in info.value.message


def test_kit_threads_sets_the_graders_torch_threads(pytester, slow_submission):
    (slow_submission / "conv.py").write_text("def conv_output_size(*a, **k):\n    return 3\n")
    pytester.makepyfile(test_threads='''
import pytest, torch

@pytest.mark.conv_output_size
def test_threads(student):
    assert torch.get_num_threads() == 1
''')
    before = torch.get_num_threads()
    torch.set_num_threads(3)  # so that the test fails if the option does nothing
    try:
        result = pytester.runpytest_inprocess("--submission", str(slow_submission),
                                              "--kit-handle", "in-process",
                                              "--kit-threads", "1")
    finally:
        torch.set_num_threads(before)
    result.assert_outcomes(passed=1)


@probe("train", uses=("resnet",))
def uses_resnet(mod, case: dict) -> int:
    return 1


def test_modules_a_probe_uses_are_imported_first(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "train.py").write_text("x = 1\n")
    (sub / "resnet.py").write_text("def broken(:\n")
    with InProcessHandle(sub) as handle:
        with pytest.raises(ProbeFailure) as info:
            handle.run(uses_resnet, {})
    assert info.value.kind == "import_error"
    assert info.value.message.startswith("your module resnet.py could not be imported")


CALLS: list[dict] = []


@probe("conv")
def slow_reference(mod, case: dict) -> dict:
    CALLS.append(case)
    time.sleep(0.6)
    return {"value": torch.full((2,), float(case["k"])), "k": case["k"]}


@probe("conv")
def fast_reference(mod, case: dict) -> int:
    CALLS.append(case)
    return case["k"]


def test_reference_cache_keeps_every_result_by_probe_and_case(tmp_path):
    from grader.handle import ReferenceHandle

    CALLS.clear()
    ref = ReferenceHandle("solutions", cache_dir=tmp_path / "cache")
    first = ref.run(slow_reference, {"k": 1})
    again = ref.run(slow_reference, {"k": 1})
    assert len(CALLS) == 1 and torch.equal(first["value"], again["value"]) and again["k"] == 1
    ref.run(slow_reference, {"k": 2})  # another case: another entry
    assert len(CALLS) == 2 and len(list((tmp_path / "cache").glob("*.pt"))) == 2
    # a fast result too: "fast" holds only in a warm process (the first operator recording
    # imports torch._dynamo, seconds)
    assert ref.run(fast_reference, {"k": 1}) == ref.run(fast_reference, {"k": 1}) == 1
    assert len(CALLS) == 3 and len(list((tmp_path / "cache").glob("*.pt"))) == 3
    for entry in (tmp_path / "cache").glob("*.pt"):
        entry.write_bytes(b"damaged")
    assert ref.run(slow_reference, {"k": 1})["k"] == 1 and len(CALLS) == 4  # recomputed
    uncached = ReferenceHandle("solutions")
    uncached.run(slow_reference, {"k": 1})
    assert len(CALLS) == 5


def test_batch_uses_the_reference_cache_only_where_workers_cannot_write_it(monkeypatch):
    """Behind bubblewrap (private /tmp) or Landlock (writes only to scratch): cached; where
    student code could write the grader's /tmp (no isolation, in process): not."""
    from grader.handle import reference_cache
    from grader.sandbox.tiers import DISABLE_ENV, detect

    assert reference_cache("in-process") is None
    for handle in ("sandbox", "fallback"):
        tier = detect(handle == "fallback")
        confined = tier.namespaces or "landlock" in tier.pieces
        assert (reference_cache(handle) is not None) == confined
    monkeypatch.setenv(DISABLE_ENV, "namespaces,landlock")
    assert reference_cache("sandbox") is None


def _package(tmp_path, **modules: str):
    for name, source in modules.items():
        (tmp_path / f"{name}.py").write_text(source)
    return tmp_path


def test_a_broken_sibling_is_stood_in_for_and_fails_only_where_used(tmp_path):
    folder = _package(
        tmp_path,
        blocks="def broken(:\n",
        resnet=("from .blocks import BasicBlock\nfrom . import blocks\n\n"
                "class Mine(BasicBlock):\n    pass\n\n"
                "def init(m):\n    return isinstance(m, BasicBlock)\n\n"
                "def build():\n    return BasicBlock(64, 64)\n"))
    with InProcessHandle(folder) as handle:
        resnet = handle.module("resnet")
        assert resnet.init(nn.Linear(1, 1)) is False  # isinstance against a stand-in: False
        assert resnet.blocks.BasicBlock is resnet.BasicBlock
        failure = failure_of(resnet.build)
        assert failure.kind == "import_error"
        assert failure.message == ("BasicBlock is unavailable: blocks.py failed to import "
                                   "(SyntaxError: invalid syntax (blocks.py, line 1))")
        assert "unavailable" in failure_of(resnet.Mine).message
        with pytest.raises(ProbeFailure, match=r"your module blocks.py could not be imported: "
                           r"SyntaxError"):
            handle.module("blocks")  # graded directly, the sibling still fails as itself


def test_a_module_that_misuses_a_working_sibling_fails_as_itself(tmp_path):
    folder = _package(tmp_path, blocks="def make():\n    raise ValueError('no width')\n",
                      resnet="from .blocks import make\nBLOCK = make()\n")
    with InProcessHandle(folder) as handle:
        with pytest.raises(ProbeFailure, match=r"resnet.py could not be imported: ValueError: "
                           r"no width \(blocks.py, line 2\)"):
            handle.module("resnet")
        assert handle.module("blocks").make  # blocks imports fine on its own: no stand-in


def test_a_cycle_of_imports_ends_and_names_the_cycle(tmp_path):
    folder = _package(tmp_path, a="from .b import g\n\ndef f():\n    return 1\n",
                      b="from .a import f\n\ndef g():\n    return 2\n")
    with InProcessHandle(folder) as handle:
        a = handle.module("a")  # b fails on its own (it needs a half-imported a): stood in
        assert a.f() == 1
        assert "circular import" in failure_of(a.g).message


def test_a_worker_the_container_oom_killed_runs_once_more_alone(monkeypatch):
    """Killed by the kernel for the container's limit (not by its own rlimit), a worker runs
    once more per grade, and the report says so; a second kill (a memory bomb) costs its
    exercise, blamed on the code."""
    from grader.packs.day02.probes import smoke
    from grader.sandbox import client, memory

    handle = client.SandboxHandle(SOLUTIONS)
    kills = [0]
    monkeypatch.setattr(memory, "oom_kills", lambda: kills[0])
    monkeypatch.setattr(memory, "too_small", lambda: False)
    handle._oom_kills = 0
    calls: list[str] = []

    def killed_once(exercise, probe, case):
        calls.append(exercise)
        if len(calls) == 1:
            kills[0] += 1  # the kernel's OOM killer took the worker
            raise ProbeFailure("crash", "the worker died")
        return {"trained": True}

    monkeypatch.setattr(handle, "_probe", killed_once)
    handle.set_context("smoke_test", "test_loss_falls")
    assert handle.run(smoke.smoke_run, {}) == {"trained": True}
    assert calls == ["smoke_test", "smoke_test"]
    assert len(handle.notes) == 1 and "run once more, alone" in handle.notes[0]

    def bomb(exercise, probe, case):
        calls.append(exercise)
        kills[0] += 1
        raise ProbeFailure("crash", "the worker died")

    monkeypatch.setattr(handle, "_probe", bomb)
    handle.set_context("training", "test_x")
    with pytest.raises(ProbeFailure, match="your code ran out of memory"):
        handle.run(smoke.smoke_run, {})
    assert calls[2:] == ["training"]  # once per grade: not run again

    # a crash without an OOM kill is the code's own: never rerun
    fresh = client.SandboxHandle(SOLUTIONS)
    fresh._oom_kills = kills[0]
    monkeypatch.setattr(fresh, "_probe", lambda *a: (_ for _ in ()).throw(
        ProbeFailure("crash", "segfault")))
    fresh.set_context("conv2d", "t")
    with pytest.raises(ProbeFailure, match="segfault"):
        fresh.run(smoke.smoke_run, {})
    assert not fresh.notes


def test_a_timeout_is_paid_for_once_per_exercise(monkeypatch):
    """An endless loop costs its exercise one probe time limit, not one per property; other
    exercises run as before."""
    from grader.packs.day02.probes import conv
    from grader.sandbox import client

    handle = client.SandboxHandle(SOLUTIONS)
    calls: list[str] = []

    def loops(exercise, probe, case):
        calls.append(exercise)
        if exercise == "conv_output_size":
            raise ProbeFailure("timeout", "your code did not finish within 20 s")
        return 7

    monkeypatch.setattr(handle, "_probe", loops)
    handle.set_context("conv_output_size", "test_one")
    with pytest.raises(ProbeFailure, match="did not finish within 20 s"):
        handle.run(conv.output_size, {})
    handle.set_context("conv_output_size", "test_two")
    with pytest.raises(ProbeFailure, match="^not run: an earlier check of this exercise did "
                                           "not finish"):
        handle.run(conv.output_size, {})
    assert calls == ["conv_output_size"]  # the second property did not wait again
    handle.set_context("receptive_field", "test_three")
    assert handle.run(conv.output_size, {}) == 7 and calls[-1] == "receptive_field"
