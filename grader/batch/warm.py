"""A warm grading server per batch worker: torch, pytest and hypothesis imported once.

    server = WarmServer.shared(threads=1)            # one per Dask worker process, kept
    code = server.grade(argv, log_path, timeout_s)   # ``python -m grader.batch.run argv...``

Each batch task used to start ``python -m grader.batch.run`` afresh, paying the imports of
torch, pytest and hypothesis (about 3 s of CPU) for every student. The server
(``python -m grader.batch.warm``) imports them once, with a plain environment
(sandbox/zygote.py), and never loads the solutions or the hidden graders. For each
submission it forks a grading process that runs ``grade_main`` and exits: the solutions,
the graders and everything the student's grade touched die with that fork, and the next
student's grade is forked again from the untouched server. Where there is no bubblewrap, that
fork is still clean enough to fork the sandbox's supervisor from (zygote.py), so one copy of
torch serves the whole worker.

Protocol (JSON lines): request ``{"argv": [...], "log": path}`` on the server's stdin; replies
``{"pid": n}`` once the grading process runs, then ``{"pid": n, "exit": code}``. When stdin
ends (the worker died or closed it), the server kills a running grade and exits.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path


class WarmServerError(RuntimeError):
    """The server is gone or did not answer: the caller grades in a fresh process instead."""


class WarmServer:
    _shared: dict[tuple[int, int], WarmServer] = {}

    def __init__(self, threads: int, env: dict[str, str]) -> None:
        self.threads = threads
        from grader.entry import trusted_argv

        self.proc = subprocess.Popen(
            trusted_argv("grader.batch.warm", []),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
            start_new_session=True)
        if self._read(120.0) != {"ready": True}:
            self.close()
            raise WarmServerError("the warm grading server did not start")

    @classmethod
    def shared(cls, threads: int, env: dict[str, str]) -> WarmServer:
        """This process's server for ``threads`` (started on first use, restarted if dead)."""
        key = (os.getpid(), threads)
        server = cls._shared.get(key)
        if server is None or server.proc.poll() is not None:
            server = cls._shared[key] = cls(threads, env)
        return server

    def _read(self, timeout: float) -> dict:
        stdout = self.proc.stdout
        assert stdout is not None  # a PIPE
        ready, _, _ = select.select([stdout], [], [], max(0.0, timeout))
        if not ready:
            raise TimeoutError
        line = stdout.readline()
        if not line:
            raise WarmServerError("the warm grading server exited")
        return json.loads(line)

    def grade(self, argv: list[str], log: Path, timeout: float) -> int:
        """Run ``grade_main(argv)`` in a fresh fork; its exit status (TimeoutError: killed)."""
        stdin = self.proc.stdin
        assert stdin is not None  # a PIPE
        try:
            stdin.write(json.dumps({"argv": argv, "log": str(log)}).encode() + b"\n")
            stdin.flush()
            pid = self._read(30.0)["pid"]
        except (OSError, ValueError, KeyError, TimeoutError) as exc:
            self.close()
            raise WarmServerError(f"the warm grading server failed: {exc}") from None
        deadline = time.monotonic() + timeout
        try:
            reply = self._read(deadline - time.monotonic())
        except TimeoutError:
            _kill_group(pid)
            self._read(30.0)  # its exit, so the next request starts clean
            raise
        return int(reply["exit"])

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# -- the server (python -m grader.batch.warm) ----------------------------------------------------
def serve() -> None:
    """Answer requests until stdin ends: the worker that started us is gone (or done)."""
    import pytest  # noqa: F401  (everything a grade imports before the graders: once, here)

    import grader.batch.run
    import grader.grade
    import grader.plugin  # noqa: F401
    from grader.sandbox import zygote

    zygote.prepare()  # the worker package, warm torch, gc.freeze: shared by every fork
    _reply({"ready": True})
    while (line := _read_line()) is not None:
        request = json.loads(line)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        pid = os.fork()
        if pid == 0:
            _grade_child(request["argv"], log)
        os.close(log)
        _reply({"pid": pid})
        status = _wait_or_orphaned(pid)
        if status is None:  # the worker died mid-grade: take the grade down with us
            _kill_group(pid)
            os.waitpid(pid, 0)
            return
        _reply({"pid": pid, "exit": os.waitstatus_to_exitcode(status)})


def _reply(message: dict) -> None:
    os.write(1, json.dumps(message).encode() + b"\n")


def _read_line() -> bytes | None:
    """One request from stdin (unbuffered: a fork must not inherit pending input)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(0, 4096)
        if not chunk:
            return None
        data += chunk
    return data


def _wait_or_orphaned(pid: int) -> int | None:
    """The grading process's wait status, or None when stdin closed first."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        readable, _, _ = select.select([0], [], [], 0.2)
        if readable and not os.read(0, 1):
            return None


def _grade_child(argv: list[str], log: int) -> None:
    """The forked grading process: its own session, output to the log, then exit."""
    code = 1
    try:
        os.setsid()  # a timeout kills its whole tree, sandbox included
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        from grader.batch.run import grade_main

        code = grade_main(argv + ["--parent", str(os.getppid())])  # dies with the server
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001  (the log says why; the batch reports the status)
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    from grader.entry import trusted_argv
    from grader.sandbox.zygote import clean_environment

    clean_environment(trusted_argv("grader.batch.warm", sys.argv[1:])[1:])
    serve()
