"""Handles run probes: on the reference (trusted, in the grader) or on a student's submission.

    expected = reference.run(probe, case)      # solutions.<probe.module>
    got = student.run(probe, case)             # exercises.<probe.module> of the submission

``InProcessHandle`` imports the submission into this process (the student self-check and the
quick path); the sandbox swaps in isolated workers behind the same ``run`` method, so no grader
changes. Student failures come back as ``ProbeFailure`` with a one-line message.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import signal
import sys
import traceback
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from grader.probes import ProbeFailure, ProbeFn, sanitize

DEFAULT_TIMEOUT_S = 60.0


class _ProbeTimeout(BaseException):
    """Raised by the alarm; a BaseException so student ``except Exception`` cannot swallow it."""


@contextmanager
def _time_limit(seconds: float):
    if seconds <= 0 or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum, frame):
        raise _ProbeTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def describe_exception(exc: BaseException, package_dir: Path | None = None) -> str:
    """``"ValueError: bad shape (blocks.py, line 12)"``: the innermost line in the submission."""
    text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"SyntaxError: {exc.msg} ({Path(exc.filename).name}, line {exc.lineno})"
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        inside = package_dir is None or Path(frame.filename).resolve().is_relative_to(package_dir)
        if inside:
            where = f" ({Path(frame.filename).name}, line {frame.lineno})"
    text = " ".join(text.split())  # one line
    if len(text) > 300:
        text = text[:297] + "..."
    return text + where


def _qualname(probe: ProbeFn) -> str:
    return getattr(probe, "probe_name", getattr(probe, "__qualname__", repr(probe)))


class ReferenceHandle:
    """Runs probes on the hidden reference package (``solutions``) in the grader process."""

    kind = "reference"

    def __init__(self, package: str = "solutions") -> None:
        self.package = package

    def run(self, probe: ProbeFn, case: dict) -> Any:
        module = importlib.import_module(f"{self.package}.{probe.module}")
        return sanitize(probe(module, copy.deepcopy(case)))


class InProcessHandle:
    """Imports the submission as the package ``exercises`` in this process and runs probes.

    Use as a context manager: while open, ``sys.modules["exercises"]`` is the submission.
    """

    kind = "in-process"

    def __init__(self, package_dir: str | Path, package: str = "exercises",
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.package_dir = Path(package_dir).resolve()
        self.package = package
        self.timeout_s = timeout_s
        self._saved: dict[str, types.ModuleType] = {}
        self._import_failures: dict[str, ProbeFailure] = {}
        self.notes: list[str] = []

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> InProcessHandle:
        self._saved = {k: v for k, v in sys.modules.items()
                       if k == self.package or k.startswith(self.package + ".")}
        for k in self._saved:
            del sys.modules[k]
        init = self.package_dir / "__init__.py"
        spec = importlib.util.spec_from_file_location(
            self.package, init if init.exists() else None,
            submodule_search_locations=[str(self.package_dir)])
        if spec is None or not init.exists():
            pkg = types.ModuleType(self.package)
            pkg.__path__ = [str(self.package_dir)]
            sys.modules[self.package] = pkg
            return self
        pkg = importlib.util.module_from_spec(spec)
        sys.modules[self.package] = pkg
        try:
            spec.loader.exec_module(pkg)
        except BaseException as exc:  # a broken __init__ must not stop grading
            if isinstance(exc, KeyboardInterrupt):
                raise
            self.notes.append(f"your __init__.py failed: {describe_exception(exc)}")
            pkg = types.ModuleType(self.package)
            pkg.__path__ = [str(self.package_dir)]
            sys.modules[self.package] = pkg
        return self

    def __exit__(self, *exc_info: object) -> None:
        for k in [k for k in sys.modules if k == self.package or k.startswith(self.package + ".")]:
            del sys.modules[k]
        sys.modules.update(self._saved)

    close = __exit__

    # -- probes ------------------------------------------------------------------------------
    def module(self, name: str) -> types.ModuleType:
        """The submission's module ``name``, or ProbeFailure("import_error") saying why not."""
        if name in self._import_failures:
            raise self._import_failures[name]
        full = f"{self.package}.{name}"
        if full in sys.modules:
            return sys.modules[full]
        if not (self.package_dir / f"{name}.py").exists():
            failure = ProbeFailure("import_error", f"{name}.py is missing from the submission")
        else:
            try:
                with _time_limit(self.timeout_s):
                    return importlib.import_module(full)
            except _ProbeTimeout:
                failure = ProbeFailure("timeout", f"importing your module {name}.py did not "
                                       f"finish within {self.timeout_s:g} s")
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                sys.modules.pop(full, None)
                failure = ProbeFailure("import_error", f"your module {name}.py could not be "
                                       f"imported: {describe_exception(exc, self.package_dir)}")
        self._import_failures[name] = failure
        raise failure

    def run(self, probe: ProbeFn, case: dict) -> Any:
        module = self.module(probe.module)
        try:
            with _time_limit(self.timeout_s):
                result = probe(module, copy.deepcopy(case))
        except ProbeFailure:
            raise
        except NotImplementedError as exc:
            hint = f": {exc}" if str(exc) else ""
            raise ProbeFailure("not_implemented", f"not implemented yet{hint}") from None
        except _ProbeTimeout:
            raise ProbeFailure("timeout", f"your code did not finish within {self.timeout_s:g} s "
                               f"({_qualname(probe)})") from None
        except RecursionError:
            raise ProbeFailure("exception", "RecursionError: maximum recursion depth exceeded "
                               "(does a method call itself?)") from None
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise ProbeFailure("exception", describe_exception(exc, self.package_dir)) from None
        return sanitize(result)


def open_handle(package_dir: str | Path, mode: str = "in-process", **options: Any):
    """The handle the plugin gives graders as ``student``; the sandbox adds its own modes."""
    if mode == "in-process":
        return InProcessHandle(package_dir, **options)
    raise ValueError(f"unknown handle mode {mode!r}")
