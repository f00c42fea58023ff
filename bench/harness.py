"""Side-by-side timing: run named variants interleaved, report medians and ratios.

    variants = [Variant("in-process", [sys.executable, "-m", "grader", "grade", ...]),
                Variant("sandbox", [...])]
    result = run_interleaved(variants, repeats=5, warmup=1, baseline="in-process")
    print(markdown_table(result))
    write_json(result, "bench/results/grade.json")

Machines are noisy (shared cores, thermal drift, caches), so variants run interleaved, A B A B
(or A B B A with ``alternate=True``), never all A then all B: slow drift hits every variant
alike and the ratio of medians stays honest even when the absolute times do not. A command
variant runs in a fresh subprocess per repeat, and process start is part of what is measured
(grading starts processes too). A callable variant is timed in this process, around the call.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
TAIL_CHARS = 2000  # of a failed command's output, for the error message


class BenchError(RuntimeError):
    """A variant failed (bad exit status, timeout, or its own check): the numbers mean nothing."""


@dataclass
class RunOutput:
    """What one measured run left behind, for a variant's ``collect`` hook."""

    returncode: int
    stdout: str
    stderr: str


@dataclass
class Variant:
    """One thing to time: a command (``argv``, run in a fresh process) or a callable (``fn``).

    ``before`` runs untimed before every run (e.g. clear an output folder); ``collect`` turns a
    run's output into extra numbers (a score, images/s, per-exercise seconds), summarized by
    median like the wall time. ``ok_returncodes`` are the exit statuses that count as success
    (the self-check of the stubs exits 1: its tests fail, as they should).
    """

    name: str
    argv: Sequence[str] | None = None
    fn: Callable[[], Any] | None = None
    cwd: str | Path | None = None
    env: Mapping[str, str] | None = None
    before: Callable[[], None] | None = None
    collect: Callable[[RunOutput], Mapping[str, float]] | None = None
    ok_returncodes: tuple[int, ...] = (0,)
    timeout_s: float = 900.0

    def __post_init__(self) -> None:
        if (self.argv is None) == (self.fn is None):
            raise ValueError(f"variant {self.name!r}: give exactly one of argv or fn")


@dataclass
class Stats:
    n: int
    median: float
    min: float
    max: float
    q1: float
    q3: float
    iqr: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        if not values:
            raise ValueError("no values to summarize")
        if len(values) == 1:  # quantiles need two points; one run has no spread
            v = float(values[0])
            return cls(1, v, v, v, v, v, 0.0)
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        return cls(len(values), statistics.median(values), min(values), max(values),
                   q1, q3, q3 - q1)


@dataclass
class VariantResult:
    name: str
    command: list[str] | None
    times_s: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    wall: Stats | None = None
    ratio: float | None = None  # median / baseline's median
    metric_medians: dict[str, float] = field(default_factory=dict)


@dataclass
class BenchResult:
    suite: str
    baseline: str
    repeats: int
    warmup: int
    schedule: list[str]  # the measured runs' order, e.g. ["A", "B", "A", "B"]
    variants: list[VariantResult]
    environment: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    goals: list[dict[str, Any]] = field(default_factory=list)

    def variant(self, name: str) -> VariantResult:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(f"no variant {name!r} in suite {self.suite!r}")


def schedule(names: Sequence[str], repeats: int, alternate: bool = False) -> list[str]:
    """The run order: ``A B A B ...``, or ``A B B A ...`` (odd rounds reversed) if ``alternate``,
    which also cancels the advantage of always running right after the same variant."""
    order: list[str] = []
    for r in range(repeats):
        names_r = list(names)[::-1] if alternate and r % 2 else list(names)
        order.extend(names_r)
    return order


def _tail(text: str) -> str:
    return text[-TAIL_CHARS:].strip()


def run_once(variant: Variant) -> tuple[float, RunOutput]:
    """Time one run of ``variant``; raise BenchError if it failed."""
    if variant.before is not None:
        variant.before()
    if variant.fn is not None:
        started = time.perf_counter()
        variant.fn()
        return time.perf_counter() - started, RunOutput(0, "", "")
    env = None if variant.env is None else dict(variant.env)
    # Output goes to files, not pipes: a chatty command cannot block on a full pipe, and
    # reading it back happens after the clock stops.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        try:
            proc = subprocess.run(list(variant.argv), cwd=variant.cwd, env=env, stdout=out,
                                  stderr=err, stdin=subprocess.DEVNULL,
                                  timeout=variant.timeout_s)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{variant.name}: did not finish within {variant.timeout_s:g} s: "
                             f"{' '.join(variant.argv)}") from None
        elapsed = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        output = RunOutput(proc.returncode, out.read(), err.read())
    if output.returncode not in variant.ok_returncodes:
        raise BenchError(f"{variant.name}: exit status {output.returncode} (expected "
                         f"{' or '.join(map(str, variant.ok_returncodes))}): "
                         f"{' '.join(variant.argv)}\n{_tail(output.stdout + output.stderr)}")
    return elapsed, output


def environment() -> dict[str, Any]:
    """Where the numbers come from: they mean little without the machine and its load."""
    env: dict[str, Any] = {
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    if hasattr(os, "sched_getaffinity"):
        env["cpus_usable"] = len(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):
        env["loadavg_start"] = list(os.getloadavg())
    try:  # the version without importing torch (2 s) into the timing process
        from importlib.metadata import version

        env["torch"] = version("torch")
    except Exception:  # noqa: BLE001  (an environment without torch still benchmarks)
        env["torch"] = None
    try:  # read-only: which commit was measured
        env["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                       capture_output=True, text=True, timeout=10
                                       ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        env["commit"] = None
    return env


def run_interleaved(variants: Sequence[Variant], repeats: int = 5, warmup: int = 1,
                    baseline: str | None = None, suite: str = "adhoc", alternate: bool = False,
                    log: Callable[[str], None] | None = None) -> BenchResult:
    """Run every variant ``warmup`` times (unrecorded), then ``repeats`` times interleaved."""
    if not variants:
        raise ValueError("no variants to run")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"variant names must be unique, got {names}")
    baseline = baseline or names[0]
    if baseline not in names:
        raise ValueError(f"baseline {baseline!r} is not one of {names}")
    if repeats < 1 or warmup < 0:
        raise ValueError("repeats must be >= 1 and warmup >= 0")
    log = log or (lambda _msg: None)
    by_name = {v.name: v for v in variants}
    results = {v.name: VariantResult(v.name, list(v.argv) if v.argv else None)
               for v in variants}
    env = environment()

    for i, name in enumerate(schedule(names, warmup)):
        seconds, _ = run_once(by_name[name])
        log(f"  warm-up {i // len(names) + 1}/{warmup} {name}: {seconds:.2f} s")
    order = schedule(names, repeats, alternate)
    for i, name in enumerate(order):
        variant = by_name[name]
        seconds, output = run_once(variant)
        res = results[name]
        res.times_s.append(seconds)
        if variant.collect is not None:
            for key, value in variant.collect(output).items():
                res.metrics.setdefault(key, []).append(float(value))
        log(f"  run {i // len(names) + 1}/{repeats} {name}: {seconds:.2f} s")

    if hasattr(os, "getloadavg"):
        env["loadavg_end"] = list(os.getloadavg())
    summarize(results.values(), baseline)
    return BenchResult(suite, baseline, repeats, warmup, order, list(results.values()), env)


def summarize(results: Iterable[VariantResult], baseline: str) -> None:
    """Fill in each variant's stats, metric medians and ratio of medians against ``baseline``."""
    results = list(results)
    for res in results:
        res.wall = Stats.of(res.times_s)
        res.metric_medians = {k: statistics.median(v) for k, v in res.metrics.items()}
    base = next(r for r in results if r.name == baseline).wall.median
    for res in results:
        res.ratio = res.wall.median / base if base > 0 else None


# -- output -------------------------------------------------------------------------------------
def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown_table(result: BenchResult) -> str:
    """Wall time per variant (median, min, IQR, ratio), then the collected metrics' medians."""
    lines = [f"| {result.suite} | median s | min s | IQR s | ratio vs {result.baseline} | n |",
             "|---|---:|---:|---:|---:|---:|"]
    for v in result.variants:
        lines.append(f"| {v.name} | {_fmt(v.wall.median)} | {_fmt(v.wall.min)} | "
                     f"{_fmt(v.wall.iqr)} | {_fmt(v.ratio)}x | {v.wall.n} |")
    # all-zero metrics (e.g. "lost:EXERCISE" points when nothing was lost) are only noise here
    keys = sorted({k for v in result.variants for k, vals in v.metrics.items()
                   if any(vals) and k in v.metric_medians})
    if keys:
        lines += ["", "| metric (median) | " + " | ".join(v.name for v in result.variants) + " |",
                  "|---|" + "---:|" * len(result.variants)]
        for key in keys:
            cells = [_fmt(v.metric_medians.get(key)) for v in result.variants]
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
    for goal in result.goals:
        lines.append(f"\ngoal: {goal['goal']}: {'met' if goal['met'] else 'MISSED'} "
                     f"({goal['measured']})")
    lines += [f"\nnote: {n}" for n in result.notes]
    env = result.environment
    lines.append(f"\n{env.get('cpus_usable', env.get('cpu_count'))} CPUs, load average "
                 f"{_fmt((env.get('loadavg_start') or [None])[0])} at start, "
                 f"{_fmt((env.get('loadavg_end') or [None])[0])} at end; "
                 f"{result.warmup} warm-up + {result.repeats} interleaved runs per variant")
    return "\n".join(lines)


def to_dict(result: BenchResult) -> dict[str, Any]:
    return asdict(result)


def default_path(suite: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return RESULTS_DIR / f"{suite}-{stamp}.json"


def write_json(data: BenchResult | Mapping[str, Any], path: str | Path | None = None,
               suite: str | None = None) -> Path:
    """Write a result (or any JSON-able mapping) to ``path`` or ``bench/results/SUITE-*.json``."""
    payload = to_dict(data) if isinstance(data, BenchResult) else dict(data)
    name = suite or payload.get("suite") or "bench"
    target = Path(path) if path else default_path(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=2) + "\n")
    return target


def python() -> str:
    """The interpreter the benchmarks launch: this one (the kit's venv)."""
    return sys.executable
