"""The benchmark harness and suites (bench/): order, statistics, output; no timing assertions.

Speed is measured by ``python -m bench``, never asserted here: these tests check that the
harness interleaves, that its medians and ratios are the right arithmetic, that results come
out as JSON and a table, and that every suite builds the commands it claims to run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench import harness, suites, train_throughput
from bench.__main__ import expand
from bench.__main__ import main as bench_main
from bench.harness import BenchError, RunOutput, Stats, Variant, run_interleaved, schedule

PY = sys.executable


# -- order ----------------------------------------------------------------------------------------
def test_schedule_interleaves():
    assert schedule(["A", "B"], 3) == ["A", "B", "A", "B", "A", "B"]
    assert schedule(["A", "B", "C"], 2, alternate=True) == ["A", "B", "C", "C", "B", "A"]
    assert schedule(["A", "B"], 0) == []


def test_runs_are_interleaved_after_warmup():
    calls: list[str] = []
    variants = [Variant(n, fn=lambda n=n: calls.append(n)) for n in ("A", "B")]
    result = run_interleaved(variants, repeats=3, warmup=1)
    assert calls == ["A", "B"] + ["A", "B"] * 3  # warm-up round, then A B A B, never A A A
    assert result.schedule == ["A", "B"] * 3
    assert [len(v.times_s) for v in result.variants] == [3, 3]  # warm-up not recorded


def test_before_hook_runs_before_every_run():
    events: list[str] = []
    v = Variant("A", fn=lambda: events.append("run"), before=lambda: events.append("before"))
    run_interleaved([v], repeats=2, warmup=1)
    assert events == ["before", "run"] * 3


# -- statistics -----------------------------------------------------------------------------------
def test_stats_median_min_iqr():
    s = Stats.of([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.n, s.median, s.min, s.max) == (5, 3.0, 1.0, 5.0)
    assert (s.q1, s.q3, s.iqr) == (2.0, 4.0, 2.0)
    one = Stats.of([7.0])
    assert (one.median, one.min, one.iqr) == (7.0, 7.0, 0.0)
    with pytest.raises(ValueError):
        Stats.of([])


def test_ratio_is_of_medians_against_the_baseline():
    a = harness.VariantResult("A", None, times_s=[1.0, 9.0, 2.0])  # median 2
    b = harness.VariantResult("B", None, times_s=[3.0, 3.0, 100.0], metrics={"x": [1, 5, 2]})
    harness.summarize([a, b], baseline="A")
    assert a.ratio == 1.0
    assert b.ratio == pytest.approx(1.5)  # 3 / 2: an outlier does not move a median
    assert b.metric_medians == {"x": 2}


def test_argument_errors():
    with pytest.raises(ValueError, match="exactly one"):
        Variant("A")
    with pytest.raises(ValueError, match="exactly one"):
        Variant("A", argv=[PY], fn=lambda: None)
    v = [Variant("A", fn=lambda: None)]
    with pytest.raises(ValueError, match="baseline"):
        run_interleaved(v, baseline="B")
    with pytest.raises(ValueError, match="unique"):
        run_interleaved(v * 2)
    with pytest.raises(ValueError, match="repeats"):
        run_interleaved(v, repeats=0)


# -- subprocesses and output ------------------------------------------------------------------
def _json_printer(value: int) -> list[str]:
    return [PY, "-c", f"print('noise'); print('{{\"value\": {value}, \"name\": \"x\"}}')"]


def test_commands_run_in_fresh_processes_and_collect_metrics(tmp_path):
    variants = [Variant("base", [PY, "-c", "pass"]),
                Variant("pid", [PY, "-c", "import os; print('{\"pid\": %d}' % os.getpid())"],
                        collect=suites.last_json_line),
                Variant("json", _json_printer(3), collect=suites.last_json_line)]
    result = run_interleaved(variants, repeats=2, warmup=0, suite="t")
    pids = result.variant("pid").metrics["pid"]
    assert len(set(pids)) == 2  # a new process per run
    assert result.variant("json").metric_medians == {"value": 3.0}  # strings are dropped
    assert result.variant("base").ratio == 1.0
    assert all(t > 0 for v in result.variants for t in v.times_s)

    path = harness.write_json(result, tmp_path / "r" / "t.json")
    data = json.loads(path.read_text())
    assert data["suite"] == "t" and data["baseline"] == "base" and data["repeats"] == 2
    assert data["schedule"] == ["base", "pid", "json"] * 2
    row = data["variants"][2]
    assert row["name"] == "json" and len(row["times_s"]) == 2
    assert set(row["wall"]) == {"n", "median", "min", "max", "q1", "q3", "iqr"}
    assert row["ratio"] == pytest.approx(row["wall"]["median"] / data["variants"][0]["wall"][
        "median"])
    assert {"timestamp", "cpu_count", "python"} <= set(data["environment"])

    table = harness.markdown_table(result)
    assert table.splitlines()[0].startswith("| t | median s | min s | IQR s | ratio vs base")
    assert "| json |" in table and "| value | - | - | 3.00 |" in table


def test_default_path_is_under_bench_results():
    path = harness.default_path("grade")
    assert path.parent == harness.RESULTS_DIR and path.name.startswith("grade-")
    assert path.suffix == ".json"


def test_failed_command_stops_the_benchmark():
    bad = Variant("bad", [PY, "-c", "import sys; print('boom'); sys.exit(3)"])
    with pytest.raises(BenchError, match=r"bad: exit status 3[\s\S]*boom"):
        run_interleaved([bad], repeats=1, warmup=0)
    allowed = Variant("ok1", [PY, "-c", "import sys; sys.exit(1)"], ok_returncodes=(1,))
    assert run_interleaved([allowed], repeats=1, warmup=0).variants[0].wall.n == 1
    slow = Variant("slow", [PY, "-c", "import time; time.sleep(5)"], timeout_s=0.5)
    with pytest.raises(BenchError, match="did not finish"):
        run_interleaved([slow], repeats=1, warmup=0)


# -- suites -------------------------------------------------------------------------------------
def test_suite_names():
    assert set(suites.SUITES) == {"grade", "selfcheck", "smoke", "train", "batch", "suite"}
    assert expand(["all"]) == list(suites.ALL)
    assert expand(["smoke", "grade", "smoke"]) == ["smoke", "grade"]
    with pytest.raises(ValueError, match="unknown suite 'nope'"):
        expand(["nope"])
    with pytest.raises(SystemExit) as exit_info:
        bench_main(["nope"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("name", [n for n, s in suites.SUITES.items() if s.build])
def test_timed_suites_build_their_commands(name, tmp_path):
    plan = suites.SUITES[name].build(suites.Options(repeats=2, warmup=0), tmp_path)
    names = [v.name for v in plan.variants]
    assert plan.baseline in names and len(names) >= 2 and (plan.repeats, plan.warmup) == (2, 0)
    for v in plan.variants:
        assert v.argv[0] == PY and v.fn is None
        assert Path(v.cwd).is_dir()


def test_grade_suite_compares_the_handles(tmp_path):
    plan = suites.build_grade(suites.Options(only="conv2d"), tmp_path)
    by_name = {v.name: v.argv for v in plan.variants}
    assert plan.baseline == "in-process"
    for name, argv in by_name.items():
        assert argv[1:5] == ["-m", "grader", "grade", "solutions"]
        handle = "in-process" if name == "in-process" else "sandbox"
        assert argv[argv.index("--handle") + 1] == handle
        assert argv[argv.index("--only") + 1] == "conv2d"
    assert set(by_name) == {"in-process", "sandbox", "sandbox-container", "sandbox-previous"}
    env = {v.name: v.env for v in plan.variants}
    assert env["sandbox-previous"]["KIT_ZYGOTE"] == "0"  # the design before, side by side
    assert env["sandbox-previous"]["KIT_REFERENCE_CACHE"] == "off"
    assert env["sandbox-container"]["KIT_SANDBOX_DISABLE"] == "namespaces"


def test_smoke_suite_grades_only_smoke_test(tmp_path):
    plan = suites.build_smoke(suites.Options(), tmp_path)
    argvs = {v.name: v.argv for v in plan.variants}
    assert argvs["grade-sandbox"][-2:] == ["--only", "smoke_test"]
    assert "smoke_probe_main" in argvs["probe-reference"][-1]


def test_selfcheck_suite_stages_solutions_as_exercises(tmp_path):
    plan = suites.build_selfcheck(suites.Options(), tmp_path)
    variants = {v.name: v for v in plan.variants}
    assert plan.baseline == "stubs" and variants["stubs"].ok_returncodes == (1,)
    sol = variants["solutions"]
    root = Path(sol.cwd)
    assert sol.env["PYTHONPATH"] == str(root)
    assert sol.argv[-4:] == ["exercises", "-q", "-p", "no:cacheprovider"]
    staged = (root / "exercises" / "blocks.py").read_text()
    assert staged == (suites.REPO / "solutions" / "blocks.py").read_text()
    assert any((root / "exercises" / "tests").glob("test_*.py"))


def test_exercise_seconds_pair_junit_with_results(tmp_path):
    tests = [{"name": "a", "tags": ["conv2d"]}, {"name": "b", "tags": ["conv2d"]},
             {"name": "c", "tags": ["filters"]}]
    (tmp_path / "results.json").write_text(json.dumps({"tests": tests}))
    (tmp_path / "junit.xml").write_text(
        '<testsuites><testsuite><testcase classname="m.test_conv" name="a" time="1.5"/>'
        '<testcase classname="m.test_conv" name="b" time="0.25"/>'
        '<testcase classname="m.test_visualize" name="c" time="2"/></testsuite></testsuites>')
    assert suites.exercise_seconds(tmp_path) == {"conv2d": 1.75, "filters": 2.0}


def test_grade_collector_reads_the_report(tmp_path):
    tests = [{"name": "smoke_test: loss falls", "tags": ["smoke_test"], "score": 0,
              "max_score": 2, "output": "your code did not finish\nwithin 60 s"},
             {"name": "filters: grid", "tags": ["filters"], "score": 4, "max_score": 4,
              "output": "passed"}]
    (tmp_path / "results.json").write_text(json.dumps(
        {"score": 4, "max_score": 6, "execution_time": 3.5, "tests": tests}))
    (tmp_path / "junit.xml").write_text(
        '<testsuites><testsuite><testcase name="a" time="3"/><testcase name="b" time="0.5"/>'
        '</testsuite></testsuites>')
    failures: list[str] = []
    metrics = suites.grade_collector(tmp_path, failures=failures)(RunOutput(0, "", ""))
    assert metrics == {"score": 4.0, "max_score": 6.0, "pytest_s": 3.5, "lost:smoke_test": 2.0,
                       "lost:filters": 0.0, "s:smoke_test": 3.0, "s:filters": 0.5}
    assert failures == ["smoke_test: loss falls: your code did not finish within 60 s"]


def test_pytest_counts():
    out = RunOutput(1, "....F\n== exercise scores ==\nconv2d 3/5\n2 failed, 61 passed in 4.1s\n",
                    "")
    assert suites.pytest_counts(out) == {"passed": 61.0, "failed": 2.0}
    with pytest.raises(BenchError, match="no pytest summary"):
        suites.pytest_counts(RunOutput(4, "usage error", ""))


def test_grade_goals_are_reported_not_asserted():
    ip = harness.VariantResult("in-process", None, times_s=[40.0, 40.0],
                               metrics={"score": [60.0, 100.0], "max_score": [60.0, 100.0],
                                        "lost:conv2d": [0.0, 0.0]})
    sb = harness.VariantResult("sandbox", None, times_s=[56.0, 56.0],
                               metrics={"score": [58.0, 60.0], "max_score": [60.0, 60.0],
                                        "lost:conv2d": [2.0, 0.0]})
    harness.summarize([ip, sb], "in-process")
    result = harness.BenchResult("grade", "in-process", 2, 0, [], [ip, sb],
                                 {"cpus_usable": 2})
    suites.grade_goals(result)
    # 56 s > 8 s (issue 11); 1.4x > 1.3x; 56 s < 60 s
    assert [g["met"] for g in result.goals] == [False, False, True]
    assert any(n.startswith("in-process: max_score changed") for n in result.notes)
    assert any("sandbox: the reference lost points in 1 of 2 runs (conv2d -2 (run 1))" in n
               for n in result.notes)
    table = harness.markdown_table(result)
    assert "| lost:conv2d | - | 1.00 |" not in table  # medians: in-process has 0, 0
    assert "| lost:conv2d | 0.00 | 1.00 |" in table  # shown: one run lost points
    ip.metrics["lost:conv2d"] = sb.metrics["lost:conv2d"] = [0.0, 0.0]
    assert "lost:conv2d" not in harness.markdown_table(result)  # all zero: hidden


def test_suite_goals_are_the_makefile_targets_in_minutes():
    rows = [harness.VariantResult("test", None, times_s=[1000.0],
                                  metrics={"passed": [900.0], "failed": [0.0]}),
            harness.VariantResult("test-fast", None, times_s=[50.0],
                                  metrics={"passed": [500.0], "failed": [1.0]})]
    harness.summarize(rows, "test-fast")
    result = harness.BenchResult("suite", "test-fast", 1, 0, [], rows, {})
    suites._suite_goals(result)
    assert [g["met"] for g in result.goals] == [False, False]  # 16.7 min; a failure
    assert result.goals[0]["measured"] == "16.7 min (900 passed, 0 failed)"
    plan = suites.build_suite(suites.Options(), Path("."))
    fast = next(v for v in plan.variants if v.name == "test-fast")
    assert fast.argv[-2:] == ["-m", "not slow and not ci"] and fast.env["KIT_REQUIRE_TIERS"]
    whole = next(v for v in plan.variants if v.name == "test")
    assert whole.argv[-2:] == ["-m", "not ci"]


def test_the_closing_table_lists_every_goal_with_date_and_machine():
    from bench.__main__ import goals_table

    table = goals_table([("grade", {"goal": "8 s", "measured": "median 9.0 s", "met": False}),
                         ("batch", {"goal": "200 in 20 min", "projected_minutes": 18.0,
                                    "with_jobs": 2, "met": True})])
    assert "CPUs usable" in table.splitlines()[0]
    assert "| grade | 8 s | median 9.0 s | MISSED |" in table
    assert "| batch | 200 in 20 min | projected 18.0 min with 2 jobs | met |" in table


def test_lost_points_per_exercise():
    report = {"tests": [{"tags": ["conv2d"], "score": 2, "max_score": 4},
                        {"tags": ["conv2d"], "score": 0, "max_score": 1},
                        {"tags": ["filters"], "score": 4, "max_score": 4}]}
    assert suites.lost_points(report) == {"conv2d": 3.0, "filters": 0.0}


# -- train --------------------------------------------------------------------------------------
def test_train_configs_and_peaks():
    gpu, cpu = train_throughput.default_config("cuda"), train_throughput.default_config("cpu")
    assert (gpu.batch, gpu.channels_last, gpu.bf16, gpu.fused_sgd) == (512, True, True, True)
    assert cpu.batch == 128 and not cpu.bf16
    assert train_throughput.peak_tflops("NVIDIA H200") == 989.0
    assert train_throughput.peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert train_throughput.peak_tflops("Some GPU") is None


@pytest.mark.skipif(train_throughput.cuda_available(), reason="this machine has CUDA")
def test_train_without_cuda_says_so(capsys):
    assert bench_main(["train", "--device", "cuda"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["error"].startswith("no CUDA device")


def test_train_step_runs_with_the_gpu_settings_on_cpu():
    """The CUDA path's code (channels_last, bf16 autocast, fused SGD, device loader), tiny."""
    cfg = train_throughput.Config("cpu", batch=4, warmup_steps=1, steps=1, windows=2,
                                  channels_last=True, bf16=True, fused_sgd=True)
    record = train_throughput.measure(cfg)
    assert record["loss_finite"] and len(record["images_per_s_windows"]) == 2
    assert record["tflops"] == pytest.approx(record["images_per_s"] * 3.33 / 1000, rel=1e-2)
    json.dumps(record)  # the device run hands it back as one JSON line


# -- batch (python -m bench.batch: minutes per run, so only its arithmetic and its class here) --
def test_batch_class_mixes_correct_buggy_and_hostile(tmp_path):
    from bench import batch

    kinds = batch.make_class(tmp_path, size=12)
    assert len(kinds) == 12 and sorted(p.name for p in tmp_path.iterdir()) == sorted(kinds)
    counts = {k: list(kinds.values()).count(k) for k in ("correct", "buggy", "stubs", "hostile")}
    assert counts == {"correct": 5, "buggy": 4, "stubs": 1, "hostile": 2}
    for name, kind in kinds.items():
        assert (tmp_path / name / "blocks.py").is_file()
        if kind == "hostile":
            module, code = batch.HOSTILE[name.split("_", 1)[1]]
            assert (tmp_path / name / f"{module}.py").read_text().endswith(code)
    reference = (tmp_path / "s00_correct" / "conv.py").read_text()
    assert "NotImplementedError" not in reference.split("def conv_output_size")[1][:400]


def test_batch_breakdown_and_table():
    from bench import batch

    per = {"a": {"task_s": 10.0, "process_start_s": 0.1, "imports_s": 2.0, "grade_s": 7.0,
                 "exercises_s": {"conv2d": 1.0}},
           "b": {"task_s": 20.0, "process_start_s": 0.3, "imports_s": 2.2, "grade_s": 17.0,
                 "exercises_s": {"conv2d": 3.0}}}
    phases = batch.breakdown(per)
    assert phases["task_s"] == 15.0 and phases["grade_s"] == 12.0
    assert phases["exercises_s"] == {"conv2d": 2.0} and phases["slowest_submission_s"] == 20.0
    runs = [{"design": "warm", "jobs": j, "wall_s": w, "submissions_per_minute": 60 * 2 / w,
             "grader_errors": 0, "breakdown": phases} for j, w in ((1, 30.0), (2, 20.0))]
    result = {"runs": runs, "ratio_2_vs_1": 1.5, "standalone": {"torch_import_s": 2.0,
              "sandbox_start_s": 3.0}, "environment": {"cpu_count": 2},
              "goal": {"goal": "200 submissions in under 60 min", "projected_minutes": 33.3,
                       "with_jobs": 2, "met": True, "full_grade": True}}
    table = batch.markdown(result)
    assert "| warm | 2 | 20.0 | 6.00 | 33.3 | 0 | 15.0 |" in table
    assert "ratio 2 vs 1 workers: 1.50x" in table and "met" in table and "conv2d: 2.0 s" in table
