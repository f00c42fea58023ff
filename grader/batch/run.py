"""Grading a class on Dask: one task per submission, results back as data.

    result = run_batch("submissions.zip", "grades", BatchOptions(jobs=2))
    result.exit_code        # 0, or 1 when the grader itself failed on some submission

The client (this process) collects the students, skips those already graded with the same
content hash, grader version and settings, and submits one task per remaining submission to
an embedded ``LocalCluster`` (``jobs`` single-threaded worker processes) or to an existing
scheduler. A task ships the submission's files to the worker as data; the worker writes them
to a private temp folder, grades them in a fresh grading process (``python -m
grader.batch.run``: ``grader.grade.grade`` with the sandbox, a fixed per-probe timeout and its
share of the host's cores) and returns the report as a dict. Only the client writes files, so
workers need no shared file system, and a worker that dies costs a retry, not a grade.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from grader import limits
from grader.batch.collect import Collection, Student, collect, write_files
from grader.batch.store import (
    BatchLock,
    Meta,
    grader_version,
    is_done,
    remove_stale_temp_files,
    save_error,
    save_graded,
)
from grader.config import check_only, parse_only
from grader.entry import trusted_argv
from grader.packs import DEFAULT_PACK, load_pack
from grader.text import one_line, visible
from grader.versions import LOCK, case_versions, differences

DEFAULT_PROBE_TIMEOUT_S = limits.PROBE_TIMEOUT_S  # fixed: a busy worker changes no timeout
SUBMISSION_TIMEOUT_S = limits.SUBMISSION_TIMEOUT_S
WORKER_WAIT_S = limits.WORKER_WAIT_S
LOG_TAIL = 1500
WARM_ENV = "KIT_BATCH_WARM"  # "0": a fresh grading process per submission (as before issue 11)


@dataclass
class BatchOptions:
    only: tuple[str, ...] = ()
    handle: str = "sandbox"  # sandbox, fallback, or in-process (trusted code only)
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT_S
    jobs: int | None = None  # grades at once; default: the cores (local) or the cluster's
    scheduler: str | None = None  # tcp://host:8786: grade on an existing Dask cluster
    force: bool = False
    gpu: bool = False  # each task needs a worker started with --resources GPU=1
    submission_timeout: float = SUBMISSION_TIMEOUT_S
    pack: str = DEFAULT_PACK
    quiet: bool = False
    allow_unsandboxed: bool = False  # grade where no sandbox tier is available (told loudly)

    def settings(self) -> dict[str, Any]:
        """What, besides content and grader, changes a score: part of the resume key."""
        return {"only": sorted(self.only), "handle": self.handle,
                "probe_timeout": float(self.probe_timeout), "pack": self.pack}


@dataclass
class BatchResult:
    out: Path
    graded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already graded, same hash and grader
    errors: dict[str, str] = field(default_factory=dict)  # the grader failed on these
    wall_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.errors else 0


# -- on the worker -----------------------------------------------------------------------------
def _threads_here(threads_by_host: dict[str, int]) -> int:
    """This grade's share of the host's cores: N grades at once must not oversubscribe them
    (torch's OpenMP threads spin, and N x cores threads on cores cores is slower than N)."""
    try:
        from distributed import get_worker

        host = urlparse(get_worker().address).hostname or ""
    except (ImportError, ValueError):
        host = ""
    busy = max(1, threads_by_host.get(host, 1))
    return max(1, (os.cpu_count() or 1) // busy)


def junit_seconds(junit: Path, tests: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds per exercise: junit's test times, matched to the report's tests in run order
    (the first exercise also pays for starting the sandbox)."""
    try:
        cases = ET.parse(junit).getroot().iter("testcase")
        times = [float(c.get("time", 0.0)) for c in cases]
    except (OSError, ET.ParseError, ValueError):
        return {}
    if len(times) != len(tests):
        return {}
    seconds: dict[str, float] = {}
    for test, t in zip(tests, times, strict=True):
        seconds[test["tags"][0]] = round(seconds.get(test["tags"][0], 0.0) + t, 3)
    return seconds


def grade_task(student_id: str, files: dict[str, bytes], problem: str,
               options: dict[str, Any], threads_by_host: dict[str, int]) -> dict[str, Any]:
    """One submission, graded on this worker; never raises (a failure is data too)."""
    started = time.time()
    answer: dict[str, Any] = {"status": "grader_error", "grader_version": "", "worker": "",
                              "timings": {}}
    try:
        from distributed import get_worker

        answer["worker"] = get_worker().address
    except (ImportError, ValueError):
        pass
    try:
        load_pack(options["pack"])  # a course's own pack counts in the version
        answer["grader_version"] = grader_version()
        answer["versions"] = case_versions()  # what draws the cases on this worker
        threads = _threads_here(threads_by_host)
        with tempfile.TemporaryDirectory(prefix="kit-batch-") as tmp:
            answer.update(_grade_in_subprocess(Path(tmp), student_id, files, problem, options,
                                               threads))
    except Exception as exc:  # noqa: BLE001  (reported per student, the batch goes on)
        answer["error"] = f"{type(exc).__name__}: {exc}"
    answer["timings"]["task_s"] = round(time.time() - started, 3)
    return answer


def _grade_in_subprocess(tmp: Path, student_id: str, files: dict[str, bytes], problem: str,
                         options: dict[str, Any], threads: int) -> dict[str, Any]:
    submission, out, log_path = tmp / "submission", tmp / "out", tmp / "grade.log"
    write_files(submission, files)
    # every value as --option=VALUE: an id or a problem that starts with "-" stays a value
    args = [str(submission), str(out), f"--student={student_id}",
            f"--handle={options['handle']}", f"--timeout={options['probe_timeout']}",
            f"--threads={threads}", f"--pack={options['pack']}", f"--t0={time.time()!r}"]
    if options["only"]:
        args += [f"--only={','.join(options['only'])}"]
    if options.get("allow_unsandboxed"):
        args += ["--allow-unsandboxed"]
    if problem:
        args += [f"--unavailable={problem}"]
    # python -m grader.batch.run, never importing from this worker's working directory
    argv = trusted_argv("grader.batch.run", [*args, f"--parent={os.getpid()}"])
    # the same grade on every worker: no pytest/hypothesis knobs from the worker's shell
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS_"))}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONHASHSEED="0")
    too_long = {"error": f"grading took longer than {options['submission_timeout']:g} s and "
                "was stopped"}
    code, warm_server = None, 0
    if os.environ.get(WARM_ENV) != "0":  # a fork of this worker's warm server (warm.py)
        from grader.batch.warm import WarmServer, WarmServerError

        try:
            server = WarmServer.shared(threads, env)
            warm_server = server.proc.pid
            code = server.grade(args, log_path, options["submission_timeout"])
        except TimeoutError:
            return too_long
        except WarmServerError:  # a fresh grading process instead
            code, warm_server = None, 0
    if code is None:
        with open(log_path, "ab") as log:
            # own session: a timeout kills the whole grading tree; the child also dies with us
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    env=env, start_new_session=True)
        try:
            code = proc.wait(timeout=options["submission_timeout"])
        except subprocess.TimeoutExpired:
            return too_long
        finally:
            _kill_group(proc)
    exited = time.time()
    if code != 0:
        tail = log_path.read_bytes()[-LOG_TAIL:].decode(errors="replace").strip()
        last = tail.splitlines()[-1] if tail else "no output"  # the exception, usually
        return {"error": f"the grading process exited with status {code}: {last}",
                "log_tail": tail}
    results = json.loads((out / "results.json").read_text())
    timings = json.loads((out / "timings.json").read_text())
    timings["exit_s"] = round(exited - timings.pop("graded_at"), 3)  # teardown of the process
    timings["exercises_s"] = junit_seconds(out / "junit.xml", results["tests"])
    timings["warm_server"] = warm_server  # its pid: forked from it, or 0: a fresh process
    return {"status": "graded", "results": results, "timings": timings}


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


# -- the grading process (python -m grader.batch.run) --------------------------------------------
def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when the worker that started it dies (a killed batch leaves no
    grading process behind; the sandbox below dies with us through --die-with-parent)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(70)


def grade_main(argv: list[str] | None = None) -> int:
    t_main = time.time()
    parser = argparse.ArgumentParser(prog="python -m grader.batch.run",
                                     description="grade one submission for a batch worker")
    parser.add_argument("submission")
    parser.add_argument("out")
    parser.add_argument("--student", required=True)
    parser.add_argument("--only", default="")
    parser.add_argument("--handle", default="sandbox")
    parser.add_argument("--timeout", type=float, default=DEFAULT_PROBE_TIMEOUT_S)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pack", default=DEFAULT_PACK)
    parser.add_argument("--unavailable", default="")
    parser.add_argument("--allow-unsandboxed", action="store_true")
    parser.add_argument("--parent", type=int, default=0)
    parser.add_argument("--t0", type=float, default=t_main)
    args = parser.parse_args(argv)
    if args.parent:
        _die_with_parent(args.parent)
    from grader.config import GradeConfig, HandleMode
    from grader.grade import grade, run_graders

    t_imported = time.time()
    only = parse_only(args.only)
    out = Path(args.out)
    if args.unavailable:  # the same complete report grade() gives an unopenable submission
        out.mkdir(parents=True, exist_ok=True)
        run_graders(load_pack(args.pack), out, out, GradeConfig(
            pack=args.pack, handle=HandleMode.UNAVAILABLE, reason=args.unavailable, only=only,
            probe_timeout=args.timeout, threads=args.threads), quiet=True)
    else:
        grade(args.submission, out, only=only, pack_name=args.pack, handle=args.handle,
              quiet=True, probe_timeout=args.timeout, threads=args.threads,
              reference_cache="auto",
              allow_unsandboxed=args.allow_unsandboxed)
    timings = {"process_start_s": round(t_main - args.t0, 3),
               "imports_s": round(t_imported - t_main, 3),
               "grade_s": round(time.time() - t_imported, 3), "threads": args.threads,
               "graded_at": time.time()}
    (out / "timings.json").write_text(json.dumps(timings))
    return 0


# -- on the client -----------------------------------------------------------------------------
def _threads_by_host(client: Any) -> dict[str, int]:
    hosts: dict[str, int] = {}
    for address, n in client.nthreads().items():
        host = urlparse(address).hostname or ""
        hosts[host] = hosts.get(host, 0) + n
    return hosts


def _open_client(options: BatchOptions):
    from distributed import Client, LocalCluster

    if options.scheduler:
        try:
            client = Client(options.scheduler, timeout="30s")
        except OSError as exc:  # one line for the CLI, not a traceback
            raise RuntimeError(f"cannot reach the Dask scheduler {options.scheduler}: "
                               f"{exc}") from None
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except (TimeoutError, OSError):
            client.close()
            raise RuntimeError(f"no worker joined {options.scheduler} within "
                               f"{WORKER_WAIT_S:g} s (start some with: dask worker "
                               f"{options.scheduler} --nthreads 1)") from None
        return client, None
    jobs = options.jobs or os.cpu_count() or 1
    # single-threaded worker processes: each grade is a process of its own anyway; no
    # memory manager (the memory is in the grading processes, not the workers); everything,
    # the scheduler's HTTP server included, on loopback and a free port
    cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                           dashboard_address="127.0.0.1:0", memory_limit=0,
                           silence_logs=logging.ERROR, host="127.0.0.1")
    return Client(cluster), cluster


def _progress(total: int, initial: int, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="sub", desc="grading", dynamic_ncols=True,
                disable=quiet or None, file=sys.stderr,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, "
                "{rate_fmt}]")


def grade_students(students: list[Student], out: Path, options: BatchOptions,
                   on_result: Callable[[Student, dict[str, Any]], None],
                   already: int = 0) -> None:
    """Submit one task per student (at most ``jobs`` in flight) and hand each answer over."""
    with _children_skip_working_directory():
        _grade_on_cluster(students, options, already, on_result)


@contextmanager
def _children_skip_working_directory():
    """Dask's nannies and multiprocessing's resource tracker start as `python -c ...`, which
    searches the working directory first (a class's multiprocessing.py would run as us): every
    Python started while the cluster lives skips it (PYTHONSAFEPATH, Python 3.11). Restored
    after, for a caller that runs more than the batch (a test session)."""
    before = os.environ.get("PYTHONSAFEPATH")
    os.environ["PYTHONSAFEPATH"] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ["PYTHONSAFEPATH"]
        else:
            os.environ["PYTHONSAFEPATH"] = before


def _grade_on_cluster(students, options: BatchOptions, already: int, on_result) -> None:
    from distributed import as_completed

    client, cluster = _open_client(options)
    bar = _progress(already + len(students), already, options.quiet)
    task_options = {"handle": options.handle, "probe_timeout": options.probe_timeout,
                    "only": list(options.only), "pack": options.pack,
                    "allow_unsandboxed": options.allow_unsandboxed,
                    "submission_timeout": options.submission_timeout}
    resources = {"GPU": 1} if options.gpu else None
    try:
        hosts = _threads_by_host(client)
        todo = iter(students)
        running = as_completed()
        by_key: dict[str, Student] = {}

        def submit_next() -> bool:
            student = next(todo, None)
            if student is None:
                return False
            future = client.submit(grade_task, student.id, student.files, student.problem,
                                   task_options, hosts, key=f"grade-{len(by_key)}-{student.id}",
                                   resources=resources)
            by_key[future.key] = student
            running.add(future)
            return True

        window = options.jobs or max(1, sum(client.nthreads().values()))
        for _ in range(window):
            submit_next()
        for future in running:
            student = by_key[future.key]
            try:
                answer = future.result()
            except Exception as exc:  # noqa: BLE001  (a worker died twice: KilledWorker)
                answer = {"status": "grader_error", "error": f"{type(exc).__name__}: {exc}",
                          "grader_version": "", "worker": "", "timings": {}}
            future.release()
            on_result(student, answer)
            bar.update(1)
            submit_next()
    finally:
        bar.close()
        client.close()
        if cluster is not None:
            cluster.close()


def run_batch(source: str | Path, out: str | Path,
              options: BatchOptions | None = None) -> BatchResult:
    """Grade every student in ``source`` into ``out``; write the gradebook and the summary."""
    from grader.batch.gradebook import feedback_markdown, write_class_reports

    options = options or BatchOptions()
    if options.gpu and not options.scheduler:
        raise ValueError("--gpu needs --scheduler: a cluster whose GPU workers were started "
                         "with --resources GPU=1")
    pack = load_pack(options.pack)
    check_only(options.only, pack)  # a typo is a usage error, reported before anything runs
    if options.handle in ("sandbox", "fallback") and not options.scheduler:
        from grader.sandbox.tiers import SandboxUnavailable, detect

        if not detect(options.handle == "fallback").usable and not options.allow_unsandboxed:
            raise SandboxUnavailable(detect(options.handle == "fallback"))
    started = time.monotonic()
    out = Path(out).resolve()
    found: Collection = collect(source)
    result = BatchResult(out)
    version, settings, versions = grader_version(), options.settings(), case_versions()
    with BatchLock(out):
        remove_stale_temp_files(out)
        todo = []
        for s in found.students:
            if not options.force and is_done(out / s.id, s.digest(), version, settings,
                                             versions):
                result.skipped.append(s.id)
            else:
                todo.append(s)

        def on_result(student: Student, answer: dict[str, Any]) -> None:
            try:
                save_result(student, answer)
            except OSError as exc:  # this student's folder cannot be written: the rest go on
                result.errors[student.id] = (f"its reports could not be written to "
                                             f"{out / student.id} ({exc.strerror or exc})")
                _tell(options, student, result.errors[student.id])

        def save_result(student: Student, answer: dict[str, Any]) -> None:
            # a submission the grading process could not open (a broken notebook) is a
            # student's problem, as one collection found: "could not be opened", not graded
            found_problem = (((answer.get("results") or {}).get("extra_data") or {})
                             .get("submission_problem") or "")
            meta = Meta(student.id, student.digest(), answer.get("grader_version", ""),
                        settings, "graded", problem=student.problem or str(found_problem),
                        worker=answer.get("worker", ""), timings=answer.get("timings", {}),
                        log_tail=answer.get("log_tail", ""),
                        versions=answer.get("versions", {}))
            if answer["status"] == "graded" and meta.grader_version != version:
                answer = {**answer, "status": "grader_error",
                          "error": _mismatch(meta, version, versions)}
            if answer["status"] == "graded":
                results = answer["results"]
                _add_notes(results, student)
                save_graded(out / student.id, meta, results,
                            feedback_markdown(student.id, results, pack))
                result.graded.append(student.id)
            else:
                meta.status, meta.error = "grader_error", answer.get("error", "unknown error")
                save_error(out / student.id, meta)
                result.errors[student.id] = meta.error
                _tell(options, student, meta.error)

        if todo:
            grade_students(todo, out, options, on_result, already=len(result.skipped))
        write_class_reports(out, pack, found, options.only)
    result.wall_s = time.monotonic() - started
    return result


def _mismatch(meta: Meta, version: str, versions: dict[str, str]) -> str:
    """Why a worker's grade cannot count in this batch: it drew other cases, or ran other
    code (the client's grader version is the batch's)."""
    drift = differences(versions, meta.versions)
    if drift:
        return (f"the worker draws cases with {', '.join(drift)}: install the grading lock "
                f"on every worker (pip install -c {LOCK} ...; README, \"Grading a class\")")
    return (f"the worker runs grader version {meta.grader_version}, this batch {version}: "
            "install the same kit on every worker")


def _tell(options: BatchOptions, student: Student, error: str) -> None:
    """A grader error on the terminal, as it happens (one line, shown and never obeyed)."""
    if not options.quiet:
        from tqdm import tqdm

        tqdm.write(f"grader error on {visible(student.id)}: {one_line(error, 300)}",
                   file=sys.stderr)


def _add_notes(results: dict[str, Any], student: Student) -> None:
    """What collection skipped or renamed goes into the student's report too."""
    if student.notes:
        results["output"] = "\n".join([results.get("output", "")]
                                      + [visible(n) for n in student.notes]).strip()


if __name__ == "__main__":
    from grader.sandbox.zygote import clean_environment

    clean_environment(trusted_argv("grader.batch.run", sys.argv[1:])[1:])
    sys.exit(grade_main())
