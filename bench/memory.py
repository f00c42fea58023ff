"""The memory suite: the peak memory of one grade, and one grade in Gradescope's default box.

    python -m bench memory                                    # 1 warm-up + 3 grades, box run
    python -m bench memory --only conv2d --repeats 1 --warmup 0   # a quick look

``grade``: ``python -m grader grade solutions --out TMP`` (the default, sandboxed handle) run
through the Docker-like harness (tests/dockerlike.py) without caps, as a container would run
it; the peak of its cgroup is the peak memory of the grade's whole process tree (the grader,
its sandbox workers and their children), page cache it brought in included. Median over the
interleaved runs, in MiB, against the goal: Gradescope's default 768 MB.

``box-768M-0.5cpu``: one grade in Gradescope's default box (``--memory 768M --cpus 0.5``,
600 s), reporting what a course would see: the exit status, whether results.json is there and
complete (every test the uncapped grades reported), the score, the seconds and OOM kills.
A failed or OOM-killed box run is a measurement, not an error. Needs root and cgroups.

The ``box`` suite asks the question a course asks: does a correct submission get full marks
*every* time in that box? ``python -m bench box`` (20 runs by default, ``--repeats N``) runs
``grader precompute`` first, untimed, as the Gradescope ``setup.sh`` does, then grades the
reference N times in the box and counts the runs at full marks, with the peak (median and
largest), the seconds and the OOM kills.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.harness import REPO, BenchError, BenchResult, RunOutput, Stats, Variant, VariantResult
from bench.harness import python as bench_python
from bench.suites import PREVIOUS, Options, Plan, Suite, _clean_env, _counts, _fresh
from tests import dockerlike

MiB = 2**20
GOAL_BYTES = 768 * MiB  # Gradescope's default box (Docker's 768M: binary units)
BOX_MEMORY = "768M"
BOX_CPUS = 0.5
BOX_TIMEOUT_S = 600.0
BOX_GOAL_S = 180.0  # issue 11: a complete report in under 3 minutes
BOX_NAME = "box-768M-0.5cpu"


def grade_argv(out: Path, only: str | None = None) -> list[str]:
    argv = [bench_python(), "-m", "grader", "grade", "solutions", "--out", str(out)]
    return argv + (["--only", only] if only else [])


def harness_argv(report: Path, command: list[str]) -> list[str]:
    """``command`` under the Docker-like harness, without caps; its result JSON at ``report``."""
    return [bench_python(), "-m", "tests.dockerlike", "--report", str(report), "--", *command]


def to_mib(n_bytes: float | None) -> float | None:
    return None if n_bytes is None else n_bytes / MiB


def read_grade(out: Path) -> dict | None:
    """The grade's results.json, or None when it wrote none (or a broken one)."""
    try:
        return json.loads((out / "results.json").read_text())
    except (OSError, ValueError):
        return None


def peak_collector(report: Path, out: Path, expected: set[str]):
    """Peak MiB, OOM kills and score of one uncapped grade; its test names go to ``expected``
    (what a complete results.json of the box run must hold)."""
    def collect(_output: RunOutput) -> dict[str, float]:
        result = json.loads(report.read_text())
        grade = read_grade(out)
        if grade is None:
            raise BenchError(f"the grade wrote no readable {out / 'results.json'}")
        expected.update(t["name"] for t in grade["tests"])
        if result["peak_bytes"] is None:
            raise BenchError("the kernel reports no peak memory for the cgroup")
        return {"peak_mib": to_mib(result["peak_bytes"]), "oom_kills": result["oom_kills"],
                "score": float(grade["score"]), "max_score": float(grade["max_score"])}
    return collect


@dataclass(frozen=True)
class BoxRun:
    """What one grade in the box produced."""

    returncode: int
    timed_out: bool
    seconds: float
    peak_bytes: int | None
    oom_kills: int
    has_results: bool
    tests_found: int
    tests_expected: int
    score: float | None
    max_score: float | None

    @property
    def complete(self) -> bool:
        return self.has_results and self.tests_found >= self.tests_expected > 0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and self.complete


def box_run(result: dockerlike.Result, out: Path, expected: set[str]) -> BoxRun:
    grade = read_grade(out)
    names = {t.get("name") for t in grade.get("tests", [])} if grade else set()
    return BoxRun(result.returncode, result.timed_out, result.seconds, result.peak_bytes,
                  result.oom_kills, grade is not None, len(names & expected), len(expected),
                  None if grade is None else float(grade["score"]),
                  None if grade is None else float(grade["max_score"]))


def describe_box(box: BoxRun) -> str:
    """One line: what a course running this grade on Gradescope's default box would see."""
    if box.timed_out:
        status = f"killed after the {BOX_TIMEOUT_S:g} s timeout"
    elif box.returncode < 0:
        status = f"killed by signal {-box.returncode}"
    else:
        status = f"exit {box.returncode}"
    if not box.has_results:
        report = "no results.json"
    else:
        report = (f"results.json {'complete' if box.complete else 'INCOMPLETE'} "
                  f"({box.tests_found}/{box.tests_expected} tests), "
                  f"score {box.score:g}/{box.max_score:g}")
    peak = "?" if box.peak_bytes is None else f"{to_mib(box.peak_bytes):.0f}"
    return (f"{status}, {report}, {box.seconds:.1f} s, peak {peak} MiB, "
            f"oom kills {box.oom_kills}")


def run_box(only: str | None, expected: set[str]) -> BoxRun:
    with tempfile.TemporaryDirectory(prefix="bench-memory-box-") as tmp:
        out = Path(tmp) / "grade"
        _log(f"[memory] one grade in Gradescope's default box ({BOX_MEMORY}, {BOX_CPUS:g} "
             f"CPU, up to {BOX_TIMEOUT_S:g} s) ...")
        result = dockerlike.run(grade_argv(out, only), memory=BOX_MEMORY, cpus=BOX_CPUS,
                                timeout=BOX_TIMEOUT_S, cwd=REPO, env=_clean_env())
        box = box_run(result, out, expected)
    _log(f"  {BOX_NAME}: {describe_box(box)}")
    if not box.ok:
        _log(f"  its output ends:\n{(result.stdout + result.stderr)[-1500:].strip()}")
    return box


def box_variant(box: BoxRun, baseline: VariantResult) -> VariantResult:
    """The box run as a one-run row of the table, beside the uncapped grades."""
    metrics = {"exit_status": float(dockerlike.exit_status(box.returncode)),
               "oom_kills": float(box.oom_kills), "complete": float(box.complete),
               "peak_mib": to_mib(box.peak_bytes) or 0.0, "score": box.score or 0.0}
    row = VariantResult(BOX_NAME, None, [box.seconds], {k: [v] for k, v in metrics.items()})
    row.wall = Stats.of(row.times_s)
    row.metric_medians = dict(metrics)
    row.ratio = box.seconds / baseline.wall.median if baseline.wall.median > 0 else None
    return row


def peak_goal(result: BenchResult) -> dict:
    peak = result.variant("grade").metric_medians["peak_mib"]
    return {"goal": f"peak memory of one grade under {GOAL_BYTES / MiB:.0f} MiB (Gradescope's "
                    "default box)", "measured": f"median {peak:.0f} MiB",
            "met": peak * MiB < GOAL_BYTES}


def box_goal(box: BoxRun) -> dict:
    return {"goal": f"a complete grade in Gradescope's default box ({BOX_MEMORY}, "
                    f"{BOX_CPUS:g} CPU) in under {BOX_GOAL_S:g} s (issue 11)",
            "measured": describe_box(box), "met": box.ok and box.seconds < BOX_GOAL_S}


def unavailable() -> str:
    """Why this suite cannot run here ("" when it can): the harness needs root and cgroups."""
    return dockerlike.available()


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build(opts: Options, work: Path) -> Plan:
    problem = unavailable()
    if problem:
        raise BenchError(f"the memory suite needs the Docker-like harness: {problem}")
    repeats, warmup = _counts(opts, SUITE)
    out, report, expected = work / "grade", work / "harness.json", set()
    variant = Variant("grade", harness_argv(report, grade_argv(out, opts.only)), cwd=REPO,
                      env=_clean_env(), before=_fresh(out),
                      collect=peak_collector(report, out, expected))
    previous_out, previous_report = work / "previous", work / "previous.json"
    previous = Variant("grade-previous",
                       harness_argv(previous_report, grade_argv(previous_out, opts.only)),
                       cwd=REPO, env=_clean_env(**PREVIOUS), before=_fresh(previous_out),
                       collect=peak_collector(previous_report, previous_out, set()))

    def finish(result: BenchResult) -> None:
        result.goals.append(peak_goal(result))
        box = run_box(opts.only, expected)
        result.variants.append(box_variant(box, result.variant("grade")))
        result.goals.append(box_goal(box))

    notes = ["peak = the cgroup's peak (the grade's whole process tree, page cache it brought "
             "in included); runs are Docker-like (root, Docker's capabilities and seccomp)"]
    if opts.only:
        notes.append(f"graded only {opts.only}")
    notes.append("grade-previous: the design before issue 11 (the supervisor a fresh "
                 "interpreter, no reference cache), side by side")
    return Plan([variant, previous], "grade", repeats, warmup, finish, notes)


# -- box: N grades in Gradescope's default box ------------------------------------------------
BOX_RUNS = 20  # issue 23's goal: 20 of 20 runs at full marks
ANY_STATUS = tuple(range(-64, 256))  # an OOM-killed or failed grade is a measurement


def full_marks(grade: dict | None) -> bool:
    return grade is not None and grade.get("max_score", 0) > 0 and \
        grade.get("score") == grade.get("max_score")


def box_collector(report: Path, out: Path):
    """One box run's numbers: full marks (1 or 0), score, peak MiB, OOM kills, exit status."""
    def collect(_output: RunOutput) -> dict[str, float]:
        result = json.loads(report.read_text())
        grade = read_grade(out)
        return {"full_marks": float(full_marks(grade)),
                "score": float(grade["score"]) if grade else 0.0,
                "peak_mib": to_mib(result["peak_bytes"]) or 0.0,
                "oom_kills": float(result["oom_kills"]),
                "exit_status": float(dockerlike.exit_status(result["returncode"]))
                if "returncode" in result else 0.0}
    return collect


def box_argv(report: Path, out: Path, only: str | None) -> list[str]:
    return [bench_python(), "-m", "tests.dockerlike", "--memory", BOX_MEMORY, "--cpus",
            f"{BOX_CPUS:g}", "--timeout", f"{BOX_TIMEOUT_S:g}", "--report", str(report), "--",
            *grade_argv(out, only)]


def precompute_reference() -> None:
    """The reference's results, computed outside the box (setup.sh does it at image build)."""
    import subprocess

    _log("[box] grader precompute (untimed, as setup.sh) ...")
    done = subprocess.run([bench_python(), "-m", "grader", "precompute"], cwd=REPO,
                          env=_clean_env(), capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise BenchError(f"grader precompute failed: {(done.stdout + done.stderr)[-800:]}")


def box_summary(row: VariantResult) -> dict:
    """The goal row: k of n runs at full marks, the peaks, the seconds, the OOM kills."""
    full, peaks = row.metrics.get("full_marks", []), row.metrics.get("peak_mib", [])
    kills = int(sum(row.metrics.get("oom_kills", [])))
    n, k = len(full), int(sum(full))
    scores = sorted({f"{v:g}" for v, f in zip(row.metrics.get("score", []), full, strict=False)
                     if not f})
    measured = (f"{k} of {n} runs at full marks"
                + (f" (the others: {', '.join(scores)})" if scores else "")
                + (f"; peak median {sorted(peaks)[len(peaks) // 2]:.0f} MiB, largest "
                   f"{max(peaks):.0f} MiB" if peaks else "")
                + f"; median {row.wall.median:.0f} s; OOM kills {kills}" if row.wall else "")
    return {"goal": f"full marks for the reference in every run in Gradescope's default box "
                    f"({BOX_MEMORY}, {BOX_CPUS:g} CPU, reference precomputed): {BOX_RUNS} of "
                    f"{BOX_RUNS}", "measured": measured, "met": n >= BOX_RUNS and k == n}


def build_box(opts: Options, work: Path) -> Plan:
    problem = unavailable()
    if problem:
        raise BenchError(f"the box suite needs the Docker-like harness: {problem}")
    precompute_reference()
    repeats, warmup = _counts(opts, BOX_SUITE)
    out, report = work / "grade", work / "harness.json"
    variant = Variant(BOX_NAME, box_argv(report, out, opts.only), cwd=REPO, env=_clean_env(),
                      before=_fresh(out), collect=box_collector(report, out),
                      ok_returncodes=ANY_STATUS, timeout_s=BOX_TIMEOUT_S + 60)

    def finish(result: BenchResult) -> None:
        result.goals.append(box_summary(result.variant(BOX_NAME)))

    notes = [f"each run: python -m grader grade solutions in a Docker-like box ({BOX_MEMORY} "
             f"memory cgroup, {BOX_CPUS:g} CPU, root with Docker's capabilities and seccomp)"]
    if opts.only:
        notes.append(f"graded only {opts.only}")
    return Plan([variant], BOX_NAME, repeats, warmup, finish, notes)


BOX_SUITE = Suite("box", f"a correct grade, {BOX_RUNS} times, in Gradescope's default box "
                  f"({BOX_MEMORY}, {BOX_CPUS:g} CPU): full marks every time?", build_box,
                  BOX_RUNS, 0)


SUITE = Suite("memory", "peak memory of one grade (its cgroup), and a grade in Gradescope's "
              "768M / 0.5 CPU box", build, 3, 1)
