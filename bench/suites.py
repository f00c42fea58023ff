"""The benchmark suites, by name: what to run side by side, and how to read the results.

    grade      grade solutions/ with --handle sandbox vs --handle in-process (issue 4's goal:
               sandbox within 1.3x of in-process and under 60 s on 2 cores), per-exercise times
    selfcheck  ``pytest exercises`` on the stubs vs on the solutions (staged as ``exercises``)
    smoke      the smoke_test exercise alone: grade --only smoke_test (both handles) and the
               smoke probe run directly on the reference
    train      training throughput of the reference ResNet-18 (bench/train_throughput.py)
    batch      a generated class graded by `grader batch`, warm vs previous (bench/batch.py)

Every timed suite builds a :class:`Plan` (variants + baseline + repeats) in a scratch folder;
``python -m bench`` runs it with :func:`bench.harness.run_interleaved`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import REPO, BenchError, BenchResult, RunOutput, Variant, python

GRADE_GOAL_RATIO = 1.3  # issue 4: the sandboxed grade within 1.3x of the in-process one
GRADE_GOAL_SECONDS = 60.0  # ... and under 60 s on 2 cores
WARM_GOAL_SECONDS = 8.0  # issue 11: one sandboxed grade of a correct submission
SELFCHECK_GOAL_SECONDS = 5.0  # issue 11: pytest exercises on the stubs
# name, --handle, environment: the grade suite's variants, side by side
PREVIOUS = {"KIT_ZYGOTE": "0", "KIT_REFERENCE_CACHE": "off"}  # the design before issue 11
GRADE_VARIANTS = (("in-process", "in-process", {}), ("sandbox", "sandbox", {}),
                  ("sandbox-container", "sandbox", {"KIT_SANDBOX_DISABLE": "namespaces"}),
                  ("sandbox-previous", "sandbox", PREVIOUS))


@dataclass
class Options:
    repeats: int | None = None  # None: the suite's default
    warmup: int | None = None
    only: str | None = None  # grade: comma-separated exercise ids
    alternate: bool = False  # A B B A instead of A B A B


@dataclass
class Plan:
    variants: list[Variant]
    baseline: str
    repeats: int
    warmup: int
    finish: Callable[[BenchResult], None] | None = None  # adds goals and notes
    notes: list[str] = field(default_factory=list)


@dataclass
class Suite:
    name: str
    help: str
    build: Callable[[Options, Path], Plan] | None  # None: not a timed suite (train)
    default_repeats: int = 3
    default_warmup: int = 1


def _counts(opts: Options, suite: Suite) -> tuple[int, int]:
    repeats = suite.default_repeats if opts.repeats is None else opts.repeats
    warmup = suite.default_warmup if opts.warmup is None else opts.warmup
    return repeats, warmup


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without pytest/hypothesis knobs that would change what runs."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "HYPOTHESIS_")) and k != "PYTHONPATH"}
    env.update(extra)
    return env


def _fresh(folder: Path) -> Callable[[], None]:
    """An untimed ``before`` hook: an empty output folder for every run."""
    def clear() -> None:
        shutil.rmtree(folder, ignore_errors=True)
    return clear


# -- grade --------------------------------------------------------------------------------------
def grade_command(out: Path, handle: str, only: str | None = None,
                  submission: str = "solutions") -> list[str]:
    argv = [python(), "-m", "grader", "grade", submission, "--out", str(out), "--handle", handle]
    return argv + (["--only", only] if only else [])


def exercise_seconds(report_dir: Path) -> dict[str, float]:
    """Seconds per exercise: junit.xml's per-test times, keyed by results.json's tags.

    Both files list the properties in run order, so they pair up one to one. The time a session
    fixture takes (starting the sandbox) lands on the first property that asks for it.
    """
    tests = json.loads((report_dir / "results.json").read_text())["tests"]
    cases = list(ET.parse(report_dir / "junit.xml").getroot().iter("testcase"))
    totals: dict[str, float] = {}
    if len(cases) == len(tests):
        for test, case in zip(tests, cases, strict=True):
            key = test["tags"][0] if test.get("tags") else "untagged"
            totals[key] = totals.get(key, 0.0) + float(case.get("time", 0.0))
    else:  # should not happen; then at least per grader module
        for case in cases:
            key = case.get("classname", "?").rsplit(".", 1)[-1]
            totals[key] = totals.get(key, 0.0) + float(case.get("time", 0.0))
    return totals


def lost_points(report: dict) -> dict[str, float]:
    """Points lost per exercise (0 where full marks), from a results.json."""
    lost: dict[str, float] = {}
    for test in report["tests"]:
        key = test["tags"][0] if test.get("tags") else "untagged"
        lost[key] = lost.get(key, 0.0) + float(test["max_score"]) - float(test["score"])
    return lost


def grade_collector(report_dir: Path, per_exercise: bool = True,
                    failures: list[str] | None = None
                    ) -> Callable[[RunOutput], dict[str, float]]:
    """Score, lost points and seconds per exercise of one grade; ``failures`` collects the
    feedback of every property the reference failed (why it did not get full marks)."""
    def collect(_output: RunOutput) -> dict[str, float]:
        report = json.loads((report_dir / "results.json").read_text())
        if failures is not None:
            for test in report["tests"]:
                line = f"{test['name']}: {' '.join(str(test.get('output', '')).split())[:200]}"
                if test["score"] < test["max_score"] and line not in failures:
                    failures.append(line)
        metrics = {"score": float(report["score"]), "max_score": float(report["max_score"]),
                   "pytest_s": float(report.get("execution_time") or 0.0)}
        metrics.update({f"lost:{k}": v for k, v in lost_points(report).items()})
        if per_exercise:
            metrics.update({f"s:{k}": v for k, v in exercise_seconds(report_dir).items()})
        return metrics
    return collect


def _full_marks_note(result: BenchResult) -> None:
    """The reference must get full marks from an unchanged pack, or the times mean little."""
    for v in result.variants:
        scores, tops = v.metrics.get("score", []), v.metrics.get("max_score", [])
        if len(set(tops)) > 1:
            result.notes.append(f"{v.name}: max_score changed between runs "
                                f"({', '.join(f'{t:g}' for t in tops)}): the pack changed "
                                "while the benchmark ran; rerun for comparable numbers")
        short = [i for i, (s, t) in enumerate(zip(scores, tops, strict=True)) if s < t]
        if not short:
            continue
        lost = ", ".join(f"{k.removeprefix('lost:')} -{vals[i]:g} (run {i + 1})"
                         for k, vals in sorted(v.metrics.items()) if k.startswith("lost:")
                         for i in short if i < len(vals) and vals[i] > 0)
        result.notes.append(f"{v.name}: the reference lost points in {len(short)} of "
                            f"{len(scores)} runs ({lost}): the grader or the handle misbehaved "
                            "(a timeout under load?), so those times are suspect")


def _with_failures(finish: Callable[[BenchResult], None], failures: dict[str, list[str]]
                   ) -> Callable[[BenchResult], None]:
    """``finish``, then a note with the first failed properties of each variant."""
    def done(result: BenchResult) -> None:
        finish(result)
        for name, lines in failures.items():
            if lines:
                result.notes.append(f"{name}: failed properties of the reference: "
                                    + " | ".join(lines[:3]))
    return done


def grade_goals(result: BenchResult, sandbox: str = "sandbox") -> None:
    v = result.variant(sandbox)
    tiers = {"sandbox": "the best tier here (bubblewrap where namespaces work)",
             "sandbox-container": "the container tier (no namespaces)"}
    for name, words in tiers.items():
        if any(x.name == name for x in result.variants):
            wall = result.variant(name).wall.median
            result.goals.append({"goal": f"one grade of a correct submission in "
                                         f"{WARM_GOAL_SECONDS:g} s or less, {words}",
                                 "measured": f"median {wall:.1f} s",
                                 "met": wall <= WARM_GOAL_SECONDS})
    result.goals.append({"goal": f"sandbox within {GRADE_GOAL_RATIO}x of in-process",
                         "measured": f"{v.ratio:.2f}x", "met": v.ratio <= GRADE_GOAL_RATIO})
    cores = result.environment.get("cpus_usable") or result.environment.get("cpu_count")
    result.goals.append({"goal": f"sandbox grade under {GRADE_GOAL_SECONDS:g} s on 2 cores",
                         "measured": f"median {v.wall.median:.1f} s on {cores} CPUs",
                         "met": v.wall.median < GRADE_GOAL_SECONDS})
    _full_marks_note(result)


def build_grade(opts: Options, work: Path) -> Plan:
    repeats, warmup = _counts(opts, SUITES["grade"])
    variants, failures = [], {}
    for name, handle, env in GRADE_VARIANTS:
        out = work / f"grade-{name}"
        failures[name] = []
        variants.append(Variant(name, grade_command(out, handle, opts.only), cwd=REPO,
                                env=_clean_env(**env), before=_fresh(out),
                                collect=grade_collector(out, failures=failures[name])))
    notes = [f"graded only {opts.only}"] if opts.only else []
    notes.append("sandbox: the best tier here (bubblewrap starts while pytest collects); "
                 "sandbox-container: the tier without namespaces, whose supervisor is a fork "
                 "of the grader; sandbox-previous: before issue 11 (a fresh interpreter for "
                 "the supervisor, no reference cache); the reference cache is warm after the "
                 "warm-up run")
    return Plan(variants, "in-process", repeats, warmup, _with_failures(grade_goals, failures),
                notes)


# -- selfcheck ----------------------------------------------------------------------------------
def stage_selfcheck(root: Path, modules_from: Path) -> Path:
    """``root/exercises``: the modules of ``modules_from`` plus the public self-check tests.

    The self-check imports ``exercises.<module>`` (the ``load_exercise`` fixture), so the
    solutions are measured by staging them under that name; ``root`` goes first on the path.
    """
    src = REPO / "exercises"
    dest = root / "exercises"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(src / "tests", dest / "tests", ignore=ignore)
    shutil.copyfile(src / "__init__.py", dest / "__init__.py")
    for module in sorted(modules_from.glob("*.py")):
        if module.name != "__init__.py":
            shutil.copyfile(module, dest / module.name)
    return root


_PYTEST_COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped)\b")


def pytest_counts(output: RunOutput) -> dict[str, float]:
    """passed/failed/... from pytest's last summary line ("3 failed, 40 passed in 9.1s")."""
    summary = next((ln for ln in reversed(output.stdout.splitlines())
                    if re.search(r"\d+ (passed|failed)", ln)), None)
    if summary is None:
        raise BenchError(f"no pytest summary line in the output: {output.stdout[-500:]!r}")
    counts = {"passed": 0.0, "failed": 0.0}
    for number, what in _PYTEST_COUNTS.findall(summary):
        counts["errors" if what.startswith("error") else what] = float(number)
    return counts


def selfcheck_command() -> list[str]:
    return [python(), "-m", "pytest", "exercises", "-q", "-p", "no:cacheprovider"]


def _selfcheck_goals(result: BenchResult) -> None:
    sol = result.variant("solutions").metric_medians
    stubs = result.variant("stubs").metric_medians
    if sol.get("failed", 0) or not sol.get("passed"):
        result.notes.append(f"solutions: {sol.get('failed', 0):g} self-check tests failed: "
                            "the staging or the tests are broken")
    if not stubs.get("failed"):
        result.notes.append("stubs: no self-check test failed: are the stubs really stubs?")
    wall = result.variant("stubs").wall.median
    result.goals.append({"goal": f"self-check on the stubs in {SELFCHECK_GOAL_SECONDS:g} s or "
                                 "less (issue 11)", "measured": f"median {wall:.1f} s",
                         "met": wall <= SELFCHECK_GOAL_SECONDS})


def build_selfcheck(opts: Options, work: Path) -> Plan:
    repeats, warmup = _counts(opts, SUITES["selfcheck"])
    variants = []
    for name, modules, ok in (("stubs", REPO / "exercises", (1,)),
                              ("solutions", REPO / "solutions", (0,))):
        root = stage_selfcheck(work / f"selfcheck-{name}", modules)
        variants.append(Variant(name, selfcheck_command(), cwd=root,
                                env=_clean_env(PYTHONPATH=str(root)), collect=pytest_counts,
                                ok_returncodes=ok))
    return Plan(variants, "stubs", repeats, warmup, _selfcheck_goals,
                ["both variants run from a staged copy (exercises/tests + the modules), so "
                 "neither reads the repo's pytest config"])


# -- smoke --------------------------------------------------------------------------------------
SMOKE_PROBE_CODE = "from bench.suites import smoke_probe_main; smoke_probe_main()"


def smoke_probe_main() -> None:
    """Run the smoke probe once on the reference (CPU case); print one JSON line."""
    import time

    started = time.perf_counter()
    from grader.handle import ReferenceHandle
    from grader.packs.day02.graders.test_smoke import CPU_CASE
    from grader.packs.day02.probes.smoke import smoke_run

    imported = time.perf_counter()
    result = ReferenceHandle().run(smoke_run, dict(CPU_CASE))
    print(json.dumps({"import_s": imported - started,
                      "probe_s": time.perf_counter() - imported,
                      "images_per_s": float(result.get("images_per_s", 0.0))}))


def last_json_line(output: RunOutput) -> dict[str, float]:
    for line in reversed(output.stdout.splitlines()):
        if line.startswith("{"):
            return {k: float(v) for k, v in json.loads(line).items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)}
    raise BenchError(f"no JSON line in the output: {output.stdout[-500:]!r}")


def build_smoke(opts: Options, work: Path) -> Plan:
    repeats, warmup = _counts(opts, SUITES["smoke"])
    variants, failures = [], {}
    for handle in ("in-process", "sandbox"):
        out = work / f"smoke-{handle}"
        failures[f"grade-{handle}"] = []
        variants.append(Variant(f"grade-{handle}", grade_command(out, handle, "smoke_test"),
                                cwd=REPO, env=_clean_env(), before=_fresh(out),
                                collect=grade_collector(out, False, failures[f"grade-{handle}"])))
    variants.append(Variant("probe-reference", [python(), "-c", SMOKE_PROBE_CODE], cwd=REPO,
                            env=_clean_env(), collect=last_json_line))
    return Plan(variants, "grade-in-process", repeats, warmup,
                _with_failures(_full_marks_note, failures),
                ["grade-* run the student side and the reference (two smoke runs); "
                 "probe-reference runs one, in a fresh process"])


# -- suite: the kit's own tests, as make test and make test-fast run them -----------------------
SUITE_GOAL_MINUTES = {"test": 15.0, "test-fast": 1.0}  # issue 23 (DEVELOPERS.md: 15 minutes)


def suite_command(fast: bool) -> list[str]:
    """The Makefile's pytest command of make test-fast or make test (make test-ci is CI's)."""
    return [python(), "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "-m", "not slow and not ci" if fast else "not ci"]


def _suite_goals(result: BenchResult) -> None:
    for name, minutes in SUITE_GOAL_MINUTES.items():
        row = result.variant(name)
        counts = row.metric_medians
        result.goals.append({
            "goal": f"make {name} in {minutes:g} min or less on this machine",
            "measured": f"{row.wall.median / 60:.1f} min ({counts.get('passed', 0):g} passed, "
                        f"{counts.get('failed', 0):g} failed)",
            "met": row.wall.median <= minutes * 60 and not counts.get("failed")})


def build_suite(opts: Options, work: Path) -> Plan:
    repeats, warmup = _counts(opts, SUITES["suite"])
    tiers = os.environ.get("TEST_TIERS", "bubblewrap")
    env = _clean_env(KIT_TEST_TIERS=tiers, KIT_REQUIRE_TIERS=tiers)
    variants = [Variant(name, suite_command(name == "test-fast"), cwd=REPO, env=env,
                        collect=pytest_counts, timeout_s=3600.0)
                for name in SUITE_GOAL_MINUTES]
    return Plan(variants, "test-fast", repeats, warmup, _suite_goals,
                [f"the Makefile's pytest commands (tiers: {tiers}), without its install and "
                 "lint steps"])


SUITES: dict[str, Suite] = {s.name: s for s in (
    Suite("grade", "grade solutions/: sandbox vs in-process handle", build_grade, 3, 1),
    Suite("selfcheck", "pytest exercises on the stubs vs the solutions", build_selfcheck, 3, 1),
    Suite("smoke", "the smoke_test exercise on CPU: grade --only smoke_test, and the probe",
          build_smoke, 3, 1),
    Suite("train", "ResNet-18 training throughput (images/s, TFLOP/s); --device cuda",
          None, 1, 0),
    Suite("batch", "a generated class graded with `grader batch`, warm vs previous design: "
          "minutes for 200 submissions (bench/batch.py)", None, 1, 0),
    Suite("suite", "the kit's tests as make test and make test-fast run them (minutes)",
          build_suite, 1, 0),
)}
ALL = ("grade", "selfcheck", "smoke", "train", "batch", "suite")


def get(name: str) -> Suite:
    try:
        return SUITES[name]
    except KeyError:
        raise ValueError(f"unknown suite {name!r}; known: {', '.join(SUITES)}, all") from None
