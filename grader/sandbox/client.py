"""The grader-side handle on a sandboxed submission: same ``run(probe, case)`` as in process.

    with SandboxHandle(package_dir, pack_name="day02") as student:
        student.set_context("basic_block", test_id)      # the plugin does this per test
        got = student.run(probes.blocks.forward, case)   # plain data, checked, or ProbeFailure

One sandbox per submission; its supervisor forks a fresh child per exercise, so a crash, hang
or memory bomb costs only the exercise it happened in. After a timeout or crash, the rest of
that test fails fast with the same message (no second 20 s wait per hypothesis example), and
after three in one exercise, the rest of the exercise does.
"""

from __future__ import annotations

import os
import pickle
import re
import signal
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from grader import limits
from grader.packs import DEFAULT_PACK, load_pack
from grader.probes import ProbeFailure, ProbeFn, sanitize
from grader.sandbox import memory, paths, tiers, zygote
from grader.sandbox.launcher import (
    GRADER_DIR,
    Limits,
    Plan,
    build_kit,
    kill_uid,
    plan,
    protect,
    remove_files_of,
    remove_ipc_of,
    remove_tree,
)
from grader.sandbox.worker import protocol, wire
from grader.submission import foreign_hard_link

FAIL_KINDS = {"not_implemented", "exception", "import_error", "timeout", "crash",
              "invalid_result"}
STICKY_KINDS = {"timeout", "crash"}  # failures that cost real time: do not repeat them
# An exercise stops after 3 crashes, or after its first timeout: a hostile or looping
# submission paid 3 x 20 s per exercise before (46-59 s of a class's time each).
MAX_STICKY_PER_EXERCISE = 3
# the worker's words for an import that hung (worker/guard.py, import_submission_module)
_HUNG_IMPORT = re.compile(r"importing your module (\w+)\.py did not finish")
MAX_SOURCE_BYTES = 2 << 20


def stage_submission(src: Path, dest: Path) -> list[str]:
    """Copy the submission's Python modules (regular ``*.py`` files, never links) to a
    world-readable folder. Nothing else is staged: a zip, a ``.pyc`` or a ``.so`` beside the
    modules would be importable code that the static check (grader/static_check.py) never
    reads. Each file is opened without following a link or blocking on a FIFO, and checked to
    be a regular file on the descriptor itself (a link swapped in after the listing is not
    read)."""
    notes: list[str] = []
    skipped: list[str] = []
    dest.mkdir(mode=0o755)
    for entry in sorted(src.iterdir()):
        info = entry.lstat()
        if stat.S_ISLNK(info.st_mode):
            notes.append(f"{entry.name} is a symbolic link and was ignored")
        elif not stat.S_ISREG(info.st_mode):
            continue  # folders (__pycache__, data), FIFOs, sockets: nothing a module needs
        elif not entry.name.endswith(".py"):
            skipped.append(entry.name)
        elif info.st_size > MAX_SOURCE_BYTES:
            notes.append(f"{entry.name} is larger than {MAX_SOURCE_BYTES >> 20} MiB and was "
                         "ignored")
        elif not _copy_regular(entry, dest / entry.name):
            notes.append(f"{entry.name} could not be read as a regular file and was ignored")
    if skipped:
        shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5
                                          else "")
        notes.append(f"only Python modules (.py) are graded; not staged: {shown}")
    return notes


def _copy_regular(src: Path, dest: Path) -> bool:
    """Copy ``src`` if it is still a regular file of at most MAX_SOURCE_BYTES when opened."""
    try:
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SOURCE_BYTES \
                or foreign_hard_link(fd, src):
            return False
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(MAX_SOURCE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_SOURCE_BYTES:
        return False
    out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                  0o644)
    with os.fdopen(out, "wb") as f:
        f.write(data)
    os.chmod(dest, 0o644)
    return True


def decode(data: bytes | bytearray) -> Any:
    """A reply from the sandbox as trusted plain data, or ProbeFailure. Runs no sandbox code,
    and allocates no more than grader/limits.py's REPLY_* caps (wire.loads, sanitize)."""
    try:
        reply = wire.loads(data)
    except wire.Refused as refused:  # over a cap, or not what an honest worker sends
        raise ProbeFailure("invalid_result", str(refused)) from None
    except Exception:  # noqa: BLE001  (any undecodable reply is the student's)
        raise ProbeFailure("invalid_result", "your code returned something that is not plain "
                           "data (tensors, numbers, strings, lists, tuples, dicts)") from None
    if type(reply) is not dict or reply.get("status") not in ("ok", "fail"):
        raise ProbeFailure("invalid_result", "the worker sent back a malformed reply")
    if reply["status"] == "fail":
        kind, message = reply.get("kind"), reply.get("message")
        if kind not in FAIL_KINDS or type(message) is not str:
            raise ProbeFailure("invalid_result", "the worker sent back a malformed reply")
        raise ProbeFailure(kind, " ".join(message.split())[:400])
    return sanitize(reply.get("result"))


class SandboxHandle:
    """Runs probes in the best sandbox tier this machine has (tiers.py names it)."""

    def __init__(self, package_dir: str | Path, pack_name: str = DEFAULT_PACK,
                 limits: Limits | None = None, threads: int | None = None,
                 force_fallback: bool = False, timeout_s: float | None = None) -> None:
        self.source_dir = Path(package_dir).resolve()
        self.pack = load_pack(pack_name)
        self.limits = limits or Limits()
        if (box := memory.container_limit()) is not None:
            # every process a worker forks copies page tables and refcount-touched pages of
            # a torch-sized process: in a small container 512 of them thrash it for minutes
            self.limits.processes = min(self.limits.processes,
                                        max(32, box // memory.BYTES_PER_PROCESS))
        if timeout_s:
            self.limits.probe_timeout = timeout_s
        self.threads = threads or memory.worker_threads(max(1, min(4, os.cpu_count() or 1)))
        self.force_fallback = force_fallback
        self.tier = tiers.detect(force_fallback)
        self.notes: list[str] = []
        self.isolation = "sandbox"
        self._oom_kills = memory.oom_kills()
        self._proc: subprocess.Popen | zygote.ForkedProcess | None = None
        self._fds: tuple[int, int] | None = None
        self._root: Path | None = None  # ours: no worker can write it (0755, our uid)
        self._log_fd: int | None = None  # the supervisor's output: open for our lifetime
        self._exercise = "unknown"
        self._begun: str | None = None
        self._test = ""
        self._sticky_test: tuple[str, ProbeFailure] | None = None
        self._sticky_count: dict[str, list[ProbeFailure]] = {}
        # modules whose import hung: every later probe of them fails at once, in any exercise
        self._hung_imports: dict[str, ProbeFailure] = {}
        # set when the container is too small for the sandbox itself: every probe fails fast
        self._out_of_memory: ProbeFailure | None = None
        self._supervisor_ooms = 0
        self._oom_retry = True  # a worker the container's OOM killer took runs once more
        self._ready = False
        self.started_by = ""  # "fork" (of this process: zygote.py) or "exec" (a fresh one)

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> SandboxHandle:
        root = self._root = Path(tempfile.mkdtemp(prefix="kit-sandbox-"))
        os.chmod(root, 0o755)
        self.kit = build_kit(root / "kit", self.pack)
        for path in [self.kit, *self.kit.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        self.package_dir = root / "submission"
        self.notes += stage_submission(self.source_dir, self.package_dir)
        if memory.too_small():
            self.notes.append(memory.too_small())
        # Workers write only scratch; sticky, so a worker of another uid cannot replace what
        # the grader made in it (scratch/home). The grader itself opens nothing in there: its
        # supervisor log lives here in root, made once, read back through this descriptor.
        self.scratch = root / "scratch"
        self.scratch.mkdir(mode=0o700)
        os.chmod(self.scratch, 0o1777)
        self._log_fd = os.open(root / "supervisor.log", os.O_RDWR | os.O_CREAT | os.O_EXCL
                               | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        self._start()
        return self

    def wait_ready(self) -> None:
        """Block until the sandbox can run probes (RuntimeError if it cannot start)."""
        if self._proc is not None and not self._ready:
            try:
                self._await()
            except RuntimeError:
                if not self._container_oom(after=1):  # too small a container: a report
                    raise

    def _start(self) -> None:
        """Start the supervisor; its greeting is awaited at the first request (``_await``),
        so under bubblewrap its start overlaps the grader's own collection of tests."""
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        if "uid" in self.tier.pieces:  # the worker's uid is an "other": keep secrets from it
            protect(*paths.hidden_dirs([Path("/")]), GRADER_DIR / "packs", self.pack.root)
        how: Plan = plan(self.kit, self.package_dir, self.scratch, req_r, rep_w, self.limits,
                         self.tier, self.threads, self.pack.submission_package)
        for note in (how.warning, *self.tier.gaps()):
            if note and note not in self.notes:
                self.notes.append(note)
        self.isolation = "sandbox" if how.isolated else "unsandboxed"
        assert self._log_fd is not None  # __enter__ opened it
        why_not = "bubblewrap needs a fresh process" if self.tier.namespaces else \
            zygote.unsafe_reason()
        if not why_not:
            zygote.prepare()
            why_not = zygote.unsafe_reason()  # prepare() must not have started a thread
        if not why_not:
            self._proc = zygote.fork_supervisor(how.argv[3:], how.env, (req_r, rep_w),
                                                self._log_fd)
            self.started_by = "fork"
        else:
            self._proc = subprocess.Popen(
                how.argv, pass_fds=(req_r, rep_w), stdin=subprocess.DEVNULL,
                stdout=self._log_fd, stderr=self._log_fd, env=how.env, start_new_session=True,
                close_fds=True)
            self.started_by = "exec"
        os.close(req_r)
        os.close(rep_w)
        self._fds = (req_w, rep_r)
        self._begun = None
        self._ready = False

    def _await(self) -> None:
        """The supervisor's greeting: it has imported torch and can fork children."""
        assert self._fds is not None  # _start() opened them
        try:
            greeting = protocol.receive(self._fds[1], timeout=limits.STARTUP_TIMEOUT_S,
                                        max_bytes=limits.REPLY_MAX_WIRE_BYTES)
            if decode(greeting) != "ready":
                raise ProbeFailure("crash", "unexpected greeting")
        except (protocol.ChannelClosed, protocol.ChannelTimeout, ProbeFailure) as exc:
            tail = self._log_tail(400)
            self._stop()
            raise RuntimeError(f"the grading sandbox did not start ({exc}): {tail}") from None
        self._ready = True

    def _log_tail(self, limit: int) -> str:
        """The end of the supervisor's log, through our own descriptor (no path reopened)."""
        if self._log_fd is None:
            return ""
        size = os.fstat(self._log_fd).st_size
        return os.pread(self._log_fd, limit, max(0, size - limit)).decode(errors="replace")

    def _uid(self) -> int | None:
        """The uid the workers run as, in the tiers that give them one of their own."""
        if self._proc is None or self.tier.namespaces or "uid" not in self.tier.pieces:
            return None
        return paths.UID_BASE + self._proc.pid

    def _stop(self) -> None:
        uid = self._uid()
        if self._fds:
            for fd in self._fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._fds = None
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)  # bwrap and everything under it
            except (ProcessLookupError, PermissionError):
                pass
            self._proc.wait()
            self._proc = None
        if uid is not None:  # whatever the student started, even if it escaped the supervisor
            kill_uid(uid)
            remove_files_of(uid)
            remove_ipc_of(uid, self.kit)

    def __exit__(self, *exc_info: object) -> None:
        if self._fds:
            try:
                protocol.send(self._fds[0], pickle.dumps({"op": "end"}))
            except protocol.ChannelClosed:
                pass
        self._stop()
        if self._log_fd is not None:
            os.close(self._log_fd)
            self._log_fd = None
        if self._root is not None:
            remove_tree(self._root)
            self._root = None

    # -- probes ------------------------------------------------------------------------------
    def set_context(self, exercise: str, test: str) -> None:
        """Called by the plugin before each test: which exercise (child) and which test."""
        self._exercise, self._test = exercise, test

    def _request(self, message: dict, timeout: float) -> bytearray:
        if self._proc is None:
            try:
                self._start()
                self._await()
            except RuntimeError:
                if self._container_oom():
                    assert self._out_of_memory is not None  # _container_oom() set it
                    raise self._out_of_memory from None
                raise
        elif not self._ready:
            self._await()
        assert self._fds is not None  # _start() opened them
        try:
            protocol.send(self._fds[0], pickle.dumps(message))
            return protocol.receive(self._fds[1], timeout=timeout,
                                    max_bytes=limits.REPLY_MAX_WIRE_BYTES)
        except (protocol.ChannelClosed, protocol.ChannelTimeout):
            self._stop()  # the supervisor died (killed by student code?): restart next time
            if self._container_oom():
                assert self._out_of_memory is not None  # _container_oom() set it
                raise self._out_of_memory from None
            raise ProbeFailure("crash", "your code killed the grading worker") from None

    def _container_oom(self, after: int = 2) -> bool:
        """The sandbox's supervisor, not student code, was OOM-killed: after the second time
        the container is too small to grade in, and every later probe says so at once."""
        kills = memory.oom_kills()
        if kills > self._oom_kills:
            self._oom_kills = kills
            self._supervisor_ooms += 1
        if self._supervisor_ooms >= after and self._out_of_memory is None:
            limit = memory.describe(memory.container_limit())
            self._out_of_memory = ProbeFailure(
                "crash", f"not graded: the grading container ran out of memory (limit {limit}; "
                f"a grade needs about {memory.describe(memory.MIN_CONTAINER_BYTES)}). Not "
                "your code's fault: ask your instructor to raise the autograder's memory")
            self.notes.append(f"The grading container ran out of memory (limit {limit}); "
                              "exercises graded after that were not graded.")
        return self._out_of_memory is not None

    def run(self, probe: ProbeFn, case: dict) -> Any:
        if self._out_of_memory is not None:
            raise self._out_of_memory
        exercise = self._exercise
        if self._sticky_test and self._sticky_test[0] == self._test:
            raise self._sticky_test[1]
        for name in (*getattr(probe, "uses", ()), probe.module):
            if name in self._hung_imports:
                raise self._hung_imports[name]
        earlier = self._sticky_count.get(exercise, [])
        if len(earlier) >= MAX_STICKY_PER_EXERCISE:
            raise earlier[-1]
        looped = next((f for f in earlier if f.kind == "timeout"), None)
        if looped is not None:  # an endless loop is paid for once per exercise, not per property
            raise ProbeFailure("timeout", "not run: an earlier check of this exercise did not "
                               f"finish ({looped.message})")
        try:
            return self._probe_retrying_oom(exercise, probe, case)
        except ProbeFailure as failure:
            failure = self._explain_oom(failure)
            hung = _HUNG_IMPORT.match(failure.message)
            if failure.kind == "timeout" and hung:
                self._hung_imports[hung.group(1)] = failure
            if failure.kind in STICKY_KINDS:
                self._sticky_test = (self._test, failure)
                self._sticky_count.setdefault(exercise, []).append(failure)
                if failure.kind == "crash":
                    self._begun = None
            raise failure from None

    def _probe_retrying_oom(self, exercise: str, probe: ProbeFn, case: dict) -> Any:
        """``_probe``; when the kernel killed the worker for the container's limit (not its own
        rlimit), once per grade it runs again in a fresh child, the grader's freed memory
        given back first (a memory bomb is killed twice and costs its exercise)."""
        try:
            return self._probe(exercise, probe, case)
        except ProbeFailure as failure:
            if not self._oom_retry or not self._container_killed(failure):
                raise
        self._oom_retry = False
        self._oom_kills = memory.oom_kills()
        self._begun = None
        memory.give_back_freed()
        self.notes.append(f"{exercise}: the container's memory limit "
                          f"({memory.describe(memory.container_limit())}) stopped its worker; "
                          "it was run once more, alone.")
        return self._probe(exercise, probe, case)

    def _probe(self, exercise: str, probe: ProbeFn, case: dict) -> Any:
        """One probe in ``exercise``'s child (begun first when another exercise ran last)."""
        timeout = float(getattr(probe, "timeout", None) or self.limits.probe_timeout)
        if self._begun != exercise:
            decode(self._request({"op": "begin", "exercise": exercise}, 30.0))
            self._begun = exercise
            if (uid := self._uid()) is not None:  # the last exercise's leftovers
                kill_uid(uid)
                remove_ipc_of(uid, self.kit)
        request = {"op": "probe", "probe": probe.probe_name, "module": probe.module,
                   "uses": list(getattr(probe, "uses", ())), "case": case, "timeout": timeout}
        return decode(self._request(request, timeout + 30.0))

    def _container_killed(self, failure: ProbeFailure) -> bool:
        """The worker crashed and the kernel's OOM killer took a process since the last look:
        the container's limit stopped it (an rlimit gives MemoryError, not a kill)."""
        return failure.kind == "crash" and self._out_of_memory is None and \
            memory.oom_kills() > self._oom_kills

    def _explain_oom(self, failure: ProbeFailure) -> ProbeFailure:
        """A worker killed by the kernel's OOM killer (the container's limit, not an rlimit)."""
        if not self._container_killed(failure):
            return failure
        self._oom_kills = memory.oom_kills()
        limit = memory.describe(memory.container_limit())
        if memory.too_small():  # correct code dies there too: say so, don't blame the student
            return ProbeFailure("crash", f"ran out of memory in a container smaller than a grade "
                                f"needs (limit {limit}, needs about "
                                f"{memory.describe(memory.MIN_CONTAINER_BYTES)}): not "
                                "necessarily your code's fault")
        return ProbeFailure("crash", f"your code ran out of memory (limit {limit}) and was "
                            "stopped")
