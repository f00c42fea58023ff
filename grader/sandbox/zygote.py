"""Import torch once, fork many times: the sandbox's supervisor as a fork of the grader.

    python -m grader grade SUB       # cli.py: clean_environment() re-execs with a plain env
    prepare()                        # torch, the worker package, the probes, warm, gc.freeze
    proc = fork_supervisor(argv, env, keep_fds, log_fd)      # no second torch import

Without namespaces (a container, a laptop) the supervisor needs no fresh interpreter: it can
be a fork of the grading process, taken before that process has read anything secret. Its
torch pages are then shared copy-on-write with the grader and with every confined child it
forks, instead of a second ~290 MB copy and ~1.5 s import. ``gc.freeze()`` before the fork
keeps the garbage collector from writing to (and so copying) the shared heap.

A fork copies memory, so it is taken only from a *clean* process (``unsafe_reason``):
- started with an environment of plain settings (``clean_environment`` re-execs the CLI with
  one: a fork cannot forget an API token that was in the environment block);
- no solutions or hidden graders loaded (checked in ``sys.modules``; the reference cache
  and the grader version, which hashes the solutions, are read only inside pytest);
- a single thread (fork copies only the calling thread; a lock held elsewhere would hang).
Otherwise, and under bubblewrap (a new mount namespace needs a new process), the supervisor
is started as before: ``python -I supervisor.py`` in a fresh interpreter.
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
import threading
from pathlib import Path

GRADER_DIR = Path(__file__).resolve().parents[1]
REPO = GRADER_DIR.parent
DISABLE_ENV = "KIT_ZYGOTE"  # "0": always start the supervisor in a fresh interpreter
CLEAN_ENV = "KIT_CLEAN_ENV"  # set by clean_environment() on its re-exec
# Environment variables a grading process keeps: settings, never credentials.
KEEP = {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TERM", "COLORTERM", "COLUMNS",
        "LINES", "TMPDIR", "TEMP", "TMP", "TZ", "PWD", "SHELL", "VIRTUAL_ENV", "NO_COLOR",
        "FORCE_COLOR", "CI", "SOURCE_DATE_EPOCH", "PYTHONPATH", "PYTHONHASHSEED",
        "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTHONWARNINGS", "PYTHONFAULTHANDLER",
        "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"}
KEEP |= {"KIT_SANDBOX_DISABLE", "KIT_ZYGOTE", "KIT_REFERENCE_CACHE", "KIT_BATCH_WARM",
         "KIT_AUTOGRADER_ONLY", "KIT_AUTOGRADER_HANDLE", "KIT_CLEAN_ENV",
         "KIT_TEST_TIERS", "KIT_REQUIRE_TIERS",
         "KIT_PACK_PATH"}  # the kit's own settings, by name
KEEP_PREFIXES = ("LC_", "HYPOTHESIS_", "PYTEST_", "XDG_")

_clean_start = False  # this process began with a KEEP-only environment
_prepared = False


def plain_environment(env: dict[str, str] | os._Environ = os.environ) -> dict[str, str]:
    return {k: v for k, v in env.items() if k in KEEP or k.startswith(KEEP_PREFIXES)}


def clean_environment(argv: list[str]) -> None:
    """At an entry point, before anything is imported: run on with a plain environment.

    Re-execs ``python argv...`` with ``plain_environment()`` when this one has more; either
    way marks the process as one whose memory never held another variable.
    """
    global _clean_start
    if os.environ.get(DISABLE_ENV) == "0":
        return
    plain = plain_environment()
    # numpy's OpenBLAS starts an idle thread server at import; one thread forks cleanly
    plain.setdefault("OPENBLAS_NUM_THREADS", "1")
    if plain == dict(os.environ):
        _clean_start = True
        return
    plain[CLEAN_ENV] = "1"
    try:
        os.execve(sys.executable, [sys.executable, *argv], plain)
    except OSError:  # cannot re-exec here: the supervisor starts in a fresh interpreter
        pass


def secret_modules() -> list[str]:
    """Loaded modules that a student must never see in memory: solutions, hidden graders."""
    from grader.packs import loaded_packs

    packs = loaded_packs()
    names = {"solutions", *(p.solutions_package for p in packs)}
    folders = [str(REPO / "solutions"), str(GRADER_DIR / "packs"), *(str(p.root) for p in packs)]
    found = []
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None) or ""
        if name.split(".")[0] in names or file.startswith(folders[0]) or \
                (file.startswith(tuple(folders[1:])) and "/graders/" in file):
            found.append(name)
    return found


def unsafe_reason() -> str:
    """Why this process may not fork a supervisor ("" when it may)."""
    if os.environ.get(DISABLE_ENV) == "0":
        return f"{DISABLE_ENV}=0"
    if not _clean_start:
        return "the process did not start with a plain environment"
    if secret_modules():
        return f"secret modules are loaded: {', '.join(sorted(secret_modules())[:3])}"
    if threading.active_count() > 1 or len(os.listdir("/proc/self/task")) > 1:
        return "the process has more than one thread"
    return ""


def prepare() -> None:
    """Everything a supervisor and its children want warm, loaded here once; then freeze."""
    global _prepared
    if _prepared:
        return
    _prepared = True
    from grader.sandbox.worker import confine, guard, protocol, supervisor, wire  # noqa: F401

    try:
        import pyseccomp  # noqa: F401  (finds libseccomp via a subprocess: not in a child)
    except ImportError:
        pass
    supervisor.preload_probes(str(REPO))
    supervisor.warm_up()
    gc.collect()
    gc.freeze()  # the shared heap is left alone by the collector in every fork


class ForkedProcess:
    """The little of ``subprocess.Popen`` the sandbox handle uses, for a forked supervisor."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def fork_supervisor(argv: list[str], env: dict[str, str], keep_fds: tuple[int, ...],
                    log_fd: int) -> ForkedProcess:
    """Fork; the child becomes ``supervisor.main(argv)`` in a session of its own, its output
    going to ``log_fd`` (the caller's: opened once, in a folder no worker can write)."""
    from grader.sandbox.worker import supervisor

    pid = os.fork()
    if pid:
        return ForkedProcess(pid)
    code = 1
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        keep = sorted({0, 1, 2, *keep_fds})
        for low, high in zip([-1, *keep], [*keep, 1 << 16], strict=True):
            if low + 1 < high:  # closerange(n, n) would close everything from n up
                os.closerange(low + 1, high)
        os.environ.clear()
        os.environ.update(env)
        tempfile.tempdir = None  # the grader's cached /tmp: children use their TMPDIR
        # the interpreter's own paths only: no PYTHONPATH, no working folder, no repository
        prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
        sys.path[:] = [p for p in sys.path
                       if p and any(Path(p).resolve().is_relative_to(r) for r in prefixes)]
        sys.argv = ["supervisor.py", *argv]
        supervisor.main(argv)
        code = 0
    except BaseException:  # noqa: BLE001  (the log says why; never return into the grader)
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
    finally:
        os._exit(code)
