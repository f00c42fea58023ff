"""Batch grading throughput: a generated class graded with 1 and with 2 Dask workers.

    python -m bench.batch                      # 20 submissions, jobs 1 and 2, full grades
    python -m bench.batch --size 6 --only conv_output_size,receptive_field   # a quick look

The class mixes correct submissions (the reference and correct alternatives from
tests/corpus), buggy ones (two or three corpus bugs in different modules, and the untouched
stubs) and hostile ones (an endless loop, a memory bomb, a hanging import, os._exit). Each
run is ``python -m grader batch --force`` in a fresh process, so cluster start, the grading
processes and the sandboxes are all in the wall time. Reports submissions per minute per
worker count, their ratio, the projected time for 200 submissions against the goal (under an
hour on one 2-core machine), and a per-submission cost breakdown from the batch's own
timings plus standalone measurements of a sandbox start and a torch import.

Runs are long (minutes each), so each worker count runs once, 1 then 2: the ratio is only as
good as the machine was quiet. The environment (load average at start and end) is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "bench" / "results"
GOAL_SUBMISSIONS, GOAL_MINUTES = 200, 20.0  # issue 11 (it was 60 min before)

HOSTILE = {  # appended to one module: the graders must survive it and move on
    "loops_forever": ("conv", "\n\ndef conv_output_size(*args, **kwargs):\n"
                      "    while True:\n        pass\n"),
    "memory_bomb": ("param_count", "\n\ndef conv2d_params(*args, **kwargs):\n"
                    "    return len(bytearray(16 << 30))\n"),
    "hangs_on_import": ("blocks", "\nimport time\ntime.sleep(10 ** 6)\n"),
    "exits_mid_probe": ("train", "\n\ndef make_optimizer(*args, **kwargs):\n"
                        "    import os\n    os._exit(3)\n"),
}


def make_class(dest: Path, size: int = 20) -> dict[str, str]:
    """``size`` student folders in ``dest``; returns {student: kind}."""
    sys.path.insert(0, str(REPO))
    from tests.corpus import SOLUTIONS, Variant, all_variants, build_submission

    variants = all_variants()
    correct = [v for v in variants if not v.hurts]
    buggy_by_module: dict[str, list[Variant]] = {}
    for v in variants:
        if v.hurts and len(v.modules) == 1:
            buggy_by_module.setdefault(v.modules[0], []).append(v)
    modules = sorted(buggy_by_module)
    n_hostile = min(len(HOSTILE), max(1, size // 6))
    n_correct = max(1, (size - n_hostile) // 2)
    n_buggy = size - n_hostile - n_correct
    kinds: dict[str, str] = {}
    for i in range(n_correct):  # the reference first, then correct alternatives
        name = f"s{len(kinds):02d}_correct"
        if i == 0:
            shutil.copytree(SOLUTIONS, dest / name, ignore=shutil.ignore_patterns("__*"))
        else:
            build_submission(correct[(i - 1) % len(correct)], dest / name)
        kinds[name] = "correct"
    for i in range(n_buggy):
        if i == 0:  # a student who handed in the stubs untouched
            name = f"s{len(kinds):02d}_stubs"
            shutil.copytree(REPO / "exercises", dest / name,
                            ignore=shutil.ignore_patterns("__*", "tests"))
            kinds[name] = "stubs"
            continue
        name = f"s{len(kinds):02d}_buggy"
        picks = [buggy_by_module[modules[(i + k) % len(modules)]] for k in range(1 + i % 3)]
        edits = tuple(e for j, vs in enumerate(picks) for e in vs[(i + j) % len(vs)].edits)
        build_submission(Variant(name, edits, ("x",)), dest / name)
        kinds[name] = "buggy"
    for attack in sorted(HOSTILE)[:n_hostile]:
        name = f"s{len(kinds):02d}_{attack}"
        module, code = HOSTILE[attack]
        folder = build_submission(Variant(name, (), ()), dest / name)
        with open(folder / f"{module}.py", "a") as f:
            f.write(code)
        kinds[name] = "hostile"
    return kinds


# The designs compared side by side: issue 11's warm grading, and the one before it.
DESIGNS = {"warm": {}, "previous": {"KIT_BATCH_WARM": "0", "KIT_ZYGOTE": "0"}}


def run_batch_cli(source: Path, out: Path, jobs: int, only: str, log,
                  design: str = "warm") -> dict[str, Any]:
    argv = [sys.executable, "-m", "grader", "batch", str(source), "--out", str(out),
            "--jobs", str(jobs), "--force"]
    if only:
        argv += ["--only", only]
    env = {**os.environ, **DESIGNS[design]}
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=4 * 3600,
                          env=env)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"batch failed ({done.returncode}): {done.stderr[-2000:]}")
    log(f"  {design}, jobs={jobs}: {wall:.1f} s; {done.stdout.strip()}")
    metas = [json.loads(p.read_text()) for p in sorted(out.glob("*/.batch.json"))]
    return {"design": design, "jobs": jobs, "wall_s": round(wall, 2), "submissions": len(metas),
            "submissions_per_minute": round(60 * len(metas) / wall, 3),
            "grader_errors": sum(m["status"] != "graded" for m in metas),
            "per_submission": {m["student"]: m["timings"] for m in metas},
            "workers": sorted({m["worker"] for m in metas})}


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def breakdown(per_submission: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Medians over the class of each phase of one submission's grade."""
    timings = list(per_submission.values())
    phases = {key: _median([t[key] for t in timings if key in t])
              for key in ("task_s", "process_start_s", "imports_s", "grade_s")}
    exercises: dict[str, list[float]] = {}
    for t in timings:
        for ex, s in t.get("exercises_s", {}).items():
            exercises.setdefault(ex, []).append(s)
    phases["exercises_s"] = {ex: _median(v) for ex, v in exercises.items()}
    phases["slowest_submission_s"] = max((t.get("task_s", 0) for t in timings), default=None)
    return phases


def standalone_costs(repeats: int = 3) -> dict[str, float | None]:
    """A fresh interpreter importing torch, and a sandbox start (bwrap + torch import)."""
    from grader.sandbox.client import SandboxHandle

    torch_s, sandbox_s = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-c", "import torch"], check=True)
        torch_s.append(time.perf_counter() - started)
    for _ in range(repeats):
        started = time.perf_counter()
        with SandboxHandle(REPO / "solutions", threads=1) as sandbox:
            sandbox.wait_ready()  # torch imported inside (or a fork of this process)
            sandbox_s.append(time.perf_counter() - started)
    return {"torch_import_s": _median(torch_s), "sandbox_start_s": _median(sandbox_s)}


def _environment() -> dict[str, Any]:
    env = {"cpu_count": os.cpu_count(), "python": sys.version.split()[0],
           "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if hasattr(os, "getloadavg"):
        env["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
    return env


def run(size: int = 20, jobs: tuple[int, ...] = (1, 2), only: str = "",
        keep: Path | None = None, log=print,
        designs: tuple[str, ...] = ("warm", "previous")) -> dict[str, Any]:
    """The whole suite; returns the JSON-able result (see markdown() for the table)."""
    result: dict[str, Any] = {"suite": "batch", "size": size, "only": only,
                              "environment": _environment(), "runs": []}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        root = keep or Path(tmp)
        source = root / "class"
        source.mkdir(parents=True, exist_ok=True)
        result["class"] = make_class(source, size)
        log(f"class of {size}: " + ", ".join(f"{k} {list(result['class'].values()).count(k)}"
                                              for k in ("correct", "buggy", "stubs", "hostile")))
        log("standalone costs ...")
        result["standalone"] = standalone_costs()
        for j in jobs:
            for design in designs:  # side by side: the same class, one after the other
                out = root / f"out-{design}-jobs{j}"
                shutil.rmtree(out, ignore_errors=True)
                run_result = run_batch_cli(source, out, j, only, log, design)
                run_result["breakdown"] = breakdown(run_result["per_submission"])
                result["runs"].append(run_result)
    if hasattr(os, "getloadavg"):
        result["environment"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    by_jobs = {r["jobs"]: r for r in result["runs"] if r["design"] == designs[0]}
    if 1 in by_jobs and 2 in by_jobs:
        result["ratio_2_vs_1"] = round(by_jobs[2]["submissions_per_minute"]
                                       / by_jobs[1]["submissions_per_minute"], 3)
    best = max((r for r in result["runs"] if r["design"] == designs[0]),
               key=lambda r: r["submissions_per_minute"])
    minutes = GOAL_SUBMISSIONS / best["submissions_per_minute"]
    result["goal"] = {"goal": f"{GOAL_SUBMISSIONS} submissions in under {GOAL_MINUTES:g} min",
                      "projected_minutes": round(minutes, 1), "with_jobs": best["jobs"],
                      "met": minutes < GOAL_MINUTES, "full_grade": not only}
    return result


def markdown(result: dict[str, Any]) -> str:
    lines = ["| design | jobs | wall s | submissions/min | minutes for 200 | grader errors | "
             "median s/submission |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["runs"]:
        minutes = GOAL_SUBMISSIONS / r["submissions_per_minute"]
        lines.append(f"| {r.get('design', 'warm')} | {r['jobs']} | {r['wall_s']:.1f} | "
                     f"{r['submissions_per_minute']:.2f} | {minutes:.1f} | "
                     f"{r['grader_errors']} | {r['breakdown']['task_s']} |")
    if "ratio_2_vs_1" in result:
        lines.append(f"\nthroughput ratio 2 vs 1 workers: {result['ratio_2_vs_1']:.2f}x")
    goal = result["goal"]
    lines.append(f"goal {goal['goal']}: projected {goal['projected_minutes']} min with "
                 f"{goal['with_jobs']} jobs: {'met' if goal['met'] else 'MISSED'}"
                 + ("" if goal["full_grade"] else " (NOT a full grade: --only)"))
    first = result["runs"][0]["breakdown"]
    lines += ["", f"per-submission cost (medians, jobs={result['runs'][0]['jobs']}):",
              f"- grading process start {first['process_start_s']} s + imports "
              f"{first['imports_s']} s, grade {first['grade_s']} s, whole task "
              f"{first['task_s']} s (slowest {first['slowest_submission_s']} s)",
              f"- standalone: torch import {result['standalone']['torch_import_s']} s, "
              f"sandbox start {result['standalone']['sandbox_start_s']} s (the first "
              "exercise's time includes one)"]
    for ex, s in first["exercises_s"].items():
        lines.append(f"- {ex}: {s} s")
    env = result["environment"]
    lines.append(f"\n{env['cpu_count']} CPUs, load average {env.get('loadavg_start')} at "
                 f"start, {env.get('loadavg_end')} at end (shared machine: measured under load)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=20)
    parser.add_argument("--jobs", default="1,2", help="worker counts to compare")
    parser.add_argument("--only", default="", help="exercise ids (a quick look, not the goal)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the class and reports")
    parser.add_argument("--json", type=Path, default=None, help="where to write the result")
    args = parser.parse_args(argv)
    jobs = tuple(int(j) for j in args.jobs.split(","))
    result = run(args.size, jobs, args.only, args.keep,
                 log=lambda m: print(m, file=sys.stderr, flush=True))
    path = args.json or RESULTS_DIR / f"batch-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
