"""``python -m bench [SUITE ...]``: run benchmark suites, print tables, write JSON results.

    python -m bench grade --repeats 3          # sandbox vs in-process grade of solutions/
    python -m bench selfcheck                  # pytest exercises: stubs vs solutions
    python -m bench smoke                      # the smoke_test exercise on CPU
    python -m bench train --device cuda        # ResNet-18 throughput: one JSON line on stdout
    python -m bench memory                     # peak memory of a grade; Gradescope's box
    python -m bench box                        # 20 grades in Gradescope's box: full marks?
    python -m bench batch                      # a class of 12 by `grader batch`: warm vs before
    python -m bench all                        # all of the above (the default)

Progress goes to stderr, tables (and train's JSON line) to stdout. Results are written to
``bench/results/SUITE-YYYYmmdd-HHMMSS.json``, or to ``--out`` (a file for one suite, a folder
for several). Exit status 0 when every suite ran, whatever the numbers; 1 when one could not
(a failed command, no CUDA device for ``--device cuda``, memory asked for by name where it
needs root and cgroups; ``all`` skips it there); 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bench import batch, harness, memory, suites, train_throughput

# Suites that need more than Python live outside bench/suites.py: memory needs root and
# cgroups (tests/dockerlike.py). Registered here; `all` runs them too, where they can run.
EXTRA_SUITES = {memory.SUITE.name: memory.SUITE, memory.BOX_SUITE.name: memory.BOX_SUITE}
suites.ALL = (*suites.ALL, *(n for n in EXTRA_SUITES if n not in suites.ALL))


def get_suite(name: str) -> suites.Suite:
    return EXTRA_SUITES[name] if name in EXTRA_SUITES else suites.get(name)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suites", nargs="*", default=["all"],
                   help=f"{', '.join([*suites.SUITES, *EXTRA_SUITES])} or all (default: all)")
    p.add_argument("--repeats", type=int, default=None,
                   help="measured runs per variant (default: the suite's, usually 3)")
    p.add_argument("--warmup", type=int, default=None,
                   help="unrecorded runs per variant first (default: 1)")
    p.add_argument("--alternate", action="store_true",
                   help="A B B A order instead of A B A B")
    p.add_argument("--only", default=None,
                   help="grade, memory: comma-separated exercise ids")
    p.add_argument("--out", default=None,
                   help="JSON file (one suite) or folder (several); default bench/results/")
    p.add_argument("--class-size", type=int, default=12,
                   help="batch: submissions in the generated class (default: %(default)s)")
    train = p.add_argument_group("train")
    train_throughput.add_arguments(train)
    return p


def expand(names: list[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        for n in (suites.ALL if name == "all" else (name,)):
            get_suite(n)  # raises ValueError for an unknown name
            if n not in out:
                out.append(n)
    return out


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def out_path(args: argparse.Namespace, suite: str, several: bool) -> Path | None:
    if not args.out:
        return None
    return Path(args.out) / f"{suite}.json" if several else Path(args.out)


# (suite, goal dict) of every suite run in this invocation: the closing table of `make bench`
GOALS: list[tuple[str, dict]] = []


def goals_table(goals: list[tuple[str, dict]]) -> str:
    """Every goal of this run against its number, with the date and the machine."""
    import datetime
    import os
    import platform

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    when = datetime.date.today().isoformat()
    lines = [f"## goals ({when}, {platform.machine()} {platform.node() or 'host'}, {cpus} "
             f"CPUs usable, no GPU unless a suite says so)", "",
             "| suite | goal | measured | met |", "|---|---|---|---|"]
    for suite, goal in goals:
        measured = goal.get("measured") or (f"projected {goal.get('projected_minutes')} min "
                                            f"with {goal.get('with_jobs')} jobs")
        lines.append(f"| {suite} | {goal['goal']} | {measured} | "
                     f"{'met' if goal['met'] else 'MISSED'} |")
    return "\n".join(lines)


def run_timed(name: str, args: argparse.Namespace, target: Path | None) -> int:
    suite = get_suite(name)
    opts = suites.Options(args.repeats, args.warmup, args.only, args.alternate)
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        try:  # build too: memory cannot run without root and cgroups
            plan = suite.build(opts, Path(tmp))
            _log(f"[{name}] {', '.join(v.name for v in plan.variants)}: {plan.warmup} "
                 f"warm-up + {plan.repeats} interleaved runs each")
            result = harness.run_interleaved(plan.variants, plan.repeats, plan.warmup,
                                              plan.baseline, name, args.alternate, _log)
        except harness.BenchError as exc:
            _log(f"[{name}] failed: {exc}")
            return 1
    result.notes.extend(plan.notes)
    if plan.finish is not None:
        plan.finish(result)
    GOALS.extend((name, goal) for goal in result.goals)
    path = harness.write_json(result, target)
    print(f"\n## {name}: {suite.help}\n\n{harness.markdown_table(result)}\n\nwritten to {path}",
          flush=True)
    return 0


def run_train(args: argparse.Namespace, target: Path | None) -> int:
    _log("[train] measuring training throughput of the reference ResNet-18 ...")
    code, record = train_throughput.run(args)
    print(json.dumps(record), flush=True)  # one line: what the device run hands back
    if code == 0:
        path = harness.write_json(record, target, suite="train")
        _log(f"[train] {record['device']}: {record['images_per_s']:.0f} images/s, "
             f"{record['tflops']:.2f} TFLOP/s; written to {path}")
    else:
        _log(f"[train] {record['error']}")
    return code


def run_batch(args: argparse.Namespace, target: Path | None) -> int:
    """The class suite: one batch per design with 2 workers (minutes per run)."""
    _log(f"[batch] a class of {args.class_size}, graded by `grader batch` with 2 workers, "
         "warm and previous design ...")
    try:
        result = batch.run(args.class_size, (2,), args.only or "", log=_log)
    except (RuntimeError, OSError) as exc:
        _log(f"[batch] failed: {exc}")
        return 1
    GOALS.append(("batch", result["goal"]))
    path = harness.write_json(result, target, suite="batch")
    print(f"\n## batch: {suites.get('batch').help}\n\n{batch.markdown(result)}\n\n"
          f"written to {path}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        names = expand(args.suites)
        if (args.repeats is not None and args.repeats < 1) or \
                (args.warmup is not None and args.warmup < 0):
            raise ValueError("--repeats must be at least 1 and --warmup at least 0")
        train_throughput.config_from_args(args, "cpu")  # validate the numbers before hours
    except ValueError as exc:
        parser.error(str(exc))
    several = len(names) > 1
    status = 0
    for name in names:
        target = out_path(args, name, several)
        if name == "train":
            status = max(status, run_train(args, target))
        elif name == "batch":
            status = max(status, run_batch(args, target))
        elif name in EXTRA_SUITES and "all" in args.suites and memory.unavailable():
            _log(f"[{name}] skipped (all runs what can run here): {memory.unavailable()}")
        else:
            status = max(status, run_timed(name, args, target))
    if several and GOALS:
        print("\n" + goals_table(GOALS), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
