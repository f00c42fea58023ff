"""The memory benchmark's helpers (bench/memory.py): how runs are read and summed up.

No grade runs here: ``python -m bench memory`` measures; these tests check the commands it
builds, how a box run's results.json is judged complete, and the one-line summaries.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench import memory, suites
from bench.__main__ import expand
from bench.harness import BenchError, RunOutput, Stats, VariantResult
from tests.dockerlike import Result

MiB = 2**20
NAMES = ["conv2d: shape", "conv2d: values", "init: kaiming"]


def write_grade(out: Path, names: list[str], score: float = 10.0, top: float = 10.0) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tests = [{"name": n, "score": 1.0, "max_score": 1.0} for n in names]
    (out / "results.json").write_text(json.dumps({"score": score, "max_score": top,
                                                  "tests": tests}))


def harness_result(returncode: int = 0, timed_out: bool = False, peak: int | None = 500 * MiB,
                   oom: int = 0, seconds: float = 42.0) -> Result:
    return Result(returncode, "", "", peak, oom, seconds, timed_out)


def test_grade_runs_under_the_harness_with_the_default_handle(tmp_path):
    argv = memory.harness_argv(tmp_path / "r.json", memory.grade_argv(tmp_path / "o", "conv2d"))
    assert argv[:3] == [sys.executable, "-m", "tests.dockerlike"]
    inner = argv[argv.index("--") + 1:]
    assert inner[1:5] == ["-m", "grader", "grade", "solutions"]
    assert "--handle" not in inner  # the default, sandboxed handle
    assert inner[inner.index("--only") + 1] == "conv2d"
    assert "--memory" not in argv[:argv.index("--")]  # the peak is measured without caps


def test_build_plans_one_interleaved_variant(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "unavailable", lambda: "")
    plan = memory.build(suites.Options(repeats=2, warmup=0, only="init"), tmp_path)
    assert [v.name for v in plan.variants] == ["grade", "grade-previous"]
    assert plan.baseline == "grade" and plan.variants[1].env["KIT_ZYGOTE"] == "0"
    assert (plan.repeats, plan.warmup) == (2, 0)
    assert plan.variants[0].argv[0] == sys.executable and plan.finish is not None
    assert any("graded only init" in n for n in plan.notes)


def test_build_says_why_it_cannot_run(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "unavailable", lambda: "not root (uid 1000)")
    with pytest.raises(BenchError, match="not root"):
        memory.build(suites.Options(), tmp_path)


def test_memory_is_a_suite_and_part_of_all():
    assert expand(["memory"]) == ["memory"]
    assert expand(["all"])[-2:] == ["memory", "box"]


# -- box: N grades in the 768 MB box ------------------------------------------------------------
def test_box_suite_precomputes_then_plans_n_runs_in_the_box(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "unavailable", lambda: "")
    calls = []
    monkeypatch.setattr(memory, "precompute_reference", lambda: calls.append("precompute"))
    plan = memory.build_box(suites.Options(only="init"), tmp_path)
    assert calls == ["precompute"]  # before any run: the reference is not computed in the box
    (variant,) = plan.variants
    assert (plan.repeats, plan.warmup) == (memory.BOX_RUNS, 0) == (20, 0)
    outer = variant.argv[:variant.argv.index("--")]
    assert outer[outer.index("--memory") + 1] == "768M"
    assert outer[outer.index("--cpus") + 1] == "0.5"
    assert -9 in variant.ok_returncodes and 137 in variant.ok_returncodes  # a measurement


def test_box_collector_counts_full_marks_only(tmp_path):
    report = tmp_path / "harness.json"
    report.write_text(json.dumps({"returncode": 0, "peak_bytes": 700 * MiB, "oom_kills": 1}))
    write_grade(tmp_path / "out", NAMES, score=92.0, top=100.0)
    got = memory.box_collector(report, tmp_path / "out")(RunOutput(0, "", ""))
    assert got["full_marks"] == 0.0 and got["score"] == 92.0 and got["oom_kills"] == 1.0
    write_grade(tmp_path / "out", NAMES, score=100.0, top=100.0)
    assert memory.box_collector(report, tmp_path / "out")(RunOutput(0, "", ""))[
        "full_marks"] == 1.0
    (tmp_path / "out" / "results.json").unlink()  # killed before it wrote a report
    assert memory.box_collector(report, tmp_path / "out")(RunOutput(0, "", ""))[
        "full_marks"] == 0.0


def test_box_summary_is_met_only_by_every_run_of_twenty():
    def row(full: list[float]) -> VariantResult:
        n = len(full)
        return VariantResult(memory.BOX_NAME, None, [40.0] * n,
                             {"full_marks": full, "score": [100.0 if f else 92.0 for f in full],
                              "peak_mib": [700.0] * n, "oom_kills": [0.0 if f else 1.0
                                                                     for f in full]},
                             Stats.of([40.0] * n))
    assert memory.box_summary(row([1.0] * 20))["met"] is True
    missed = memory.box_summary(row([1.0] * 19 + [0.0]))
    assert missed["met"] is False
    assert missed["measured"].startswith("19 of 20 runs at full marks (the others: 92)")
    assert "OOM kills 1" in missed["measured"]
    assert memory.box_summary(row([1.0] * 3))["met"] is False  # too few runs to say


def test_peak_collector_reads_the_harness_report_and_learns_the_tests(tmp_path):
    report, out, expected = tmp_path / "r.json", tmp_path / "o", set()
    report.write_text(json.dumps({"peak_bytes": 1280 * MiB, "oom_kills": 0}))
    write_grade(out, NAMES, 9.0)
    metrics = memory.peak_collector(report, out, expected)(RunOutput(0, "", ""))
    assert metrics == {"peak_mib": 1280.0, "oom_kills": 0, "score": 9.0, "max_score": 10.0}
    assert expected == set(NAMES)
    (out / "results.json").unlink()
    with pytest.raises(BenchError, match="no readable"):
        memory.peak_collector(report, out, expected)(RunOutput(0, "", ""))


def test_a_complete_box_run(tmp_path):
    write_grade(tmp_path, NAMES)
    box = memory.box_run(harness_result(), tmp_path, set(NAMES))
    assert box.complete and box.ok
    assert memory.describe_box(box) == ("exit 0, results.json complete (3/3 tests), score "
                                        "10/10, 42.0 s, peak 500 MiB, oom kills 0")


def test_an_oom_killed_box_run_without_results(tmp_path):
    box = memory.box_run(harness_result(-9, peak=768 * MiB, oom=1), tmp_path, set(NAMES))
    assert not box.has_results and not box.complete and not box.ok
    assert memory.describe_box(box) == ("killed by signal 9, no results.json, 42.0 s, "
                                        "peak 768 MiB, oom kills 1")


def test_a_box_run_that_lost_tests_is_incomplete(tmp_path):
    write_grade(tmp_path, NAMES[:2], 4.0)
    box = memory.box_run(harness_result(), tmp_path, set(NAMES))
    assert box.has_results and not box.complete and not box.ok
    assert "INCOMPLETE (2/3 tests), score 4/10" in memory.describe_box(box)


def test_a_timed_out_box_run(tmp_path):
    write_grade(tmp_path, NAMES)
    box = memory.box_run(harness_result(-9, timed_out=True, peak=None), tmp_path, set(NAMES))
    assert not box.ok
    assert memory.describe_box(box).startswith("killed after the 600 s timeout")
    assert "peak ? MiB" in memory.describe_box(box)


def test_box_row_and_goals(tmp_path):
    write_grade(tmp_path, NAMES)
    box = memory.box_run(harness_result(), tmp_path, set(NAMES))
    grade = VariantResult("grade", None, [21.0], {"peak_mib": [1280.0]}, Stats.of([21.0]),
                          1.0, {"peak_mib": 1280.0})
    row = memory.box_variant(box, grade)
    assert (row.name, row.ratio, row.metric_medians["complete"]) == (memory.BOX_NAME, 2.0, 1.0)
    assert memory.box_goal(box)["met"] is True
    slow = memory.box_run(harness_result(seconds=200.0), tmp_path, set(NAMES))
    assert slow.ok and memory.box_goal(slow)["met"] is False  # complete, but over 3 minutes
    result = type("R", (), {"variant": lambda self, name: grade})()
    goal = memory.peak_goal(result)
    assert goal["met"] is False and goal["measured"] == "median 1280 MiB"
