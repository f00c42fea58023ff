"""Handles run probes: on the reference (trusted, in the grader) or on a student's submission.

    expected = reference.run(probe, case)      # solutions.<probe.module>
    got = student.run(probe, case)             # exercises.<probe.module> of the submission

``InProcessHandle`` imports the submission into this process (the student self-check and the
quick path); the sandbox swaps in isolated workers behind the same ``run`` method, so no grader
changes. Student failures come back as ``ProbeFailure`` with a one-line message.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.util
import io
import signal
import sys
import time
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


def install_submission_package(package: str, package_dir: Path) -> list[str]:
    """Make ``package_dir`` importable as ``package`` (its ``__init__.py`` optional).

    The package is built from the folder itself, never found on ``sys.path``, so the
    submission cannot shadow torch or anything else. Returns notes for the report.
    """
    init = package_dir / "__init__.py"
    pkg = types.ModuleType(package)
    pkg.__path__ = [str(package_dir)]
    notes = []
    if init.exists():
        spec = importlib.util.spec_from_file_location(
            package, init, submodule_search_locations=[str(package_dir)])
        pkg = importlib.util.module_from_spec(spec)
        sys.modules[package] = pkg
        try:
            spec.loader.exec_module(pkg)
        except BaseException as exc:  # a broken __init__ must not stop grading
            if isinstance(exc, KeyboardInterrupt):
                raise
            notes.append(f"your __init__.py failed and was skipped: {describe_exception(exc)}")
            pkg = types.ModuleType(package)
            pkg.__path__ = [str(package_dir)]
    sys.modules[package] = pkg
    return notes


def import_submission_module(package: str, package_dir: Path, name: str,
                             timeout_s: float) -> types.ModuleType:
    """Import ``package.name`` from the submission or raise a one-line ProbeFailure."""
    full = f"{package}.{name}"
    if full in sys.modules:
        return sys.modules[full]
    if not (package_dir / f"{name}.py").exists():
        raise ProbeFailure("import_error", f"{name}.py is missing from the submission")
    try:
        with _time_limit(timeout_s):
            return importlib.import_module(full)
    except _ProbeTimeout:
        raise ProbeFailure("timeout", f"importing your module {name}.py did not finish "
                           f"within {timeout_s:g} s") from None
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        sys.modules.pop(full, None)
        if isinstance(exc, SystemExit):
            why = f"it called sys.exit({exc.code!r})"
        elif isinstance(exc, UnicodeDecodeError):
            why = "it is not valid UTF-8 text"
        else:
            why = describe_exception(exc, package_dir)
        raise ProbeFailure("import_error",
                           f"your module {name}.py could not be imported: {why}") from None


def _qualname(probe: ProbeFn) -> str:
    return getattr(probe, "probe_name", getattr(probe, "__qualname__", repr(probe)))


class ReferenceHandle:
    """Runs probes on the hidden reference package (``solutions``) in the grader process."""

    kind = "reference"
    CACHE_AFTER_S = 0.1  # results that took longer are kept in ``cache_dir``

    def __init__(self, package: str = "solutions", cache_dir: str | Path | None = None) -> None:
        self.package = package
        # A batch grades every student against the same reference runs (the smoke run alone
        # is seconds): slow results are kept on disk, keyed by probe and case. The caller
        # puts the grader version in the path; only the grader process reads or writes it.
        self.cache_dir = Path(cache_dir) if cache_dir else None

    def run(self, probe: ProbeFn, case: dict) -> Any:
        path = self._cache_path(probe, case)
        if path is not None and path.is_file():
            try:
                return sanitize(torch_load(path.read_bytes()))
            except Exception:  # noqa: BLE001  (a damaged entry: compute it again)
                pass
        module = importlib.import_module(f"{self.package}.{probe.module}")
        started = time.perf_counter()
        result = sanitize(probe(module, copy.deepcopy(case)))
        if path is not None and time.perf_counter() - started > self.CACHE_AFTER_S:
            _write_atomically(path, torch_save(result))
        return result

    def _cache_path(self, probe: ProbeFn, case: dict) -> Path | None:
        if self.cache_dir is None or not _plain(case):
            return None
        key = f"{getattr(probe, 'probe_name', _qualname(probe))}\0{case!r}"
        return self.cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()}.pt"


def _plain(value: Any) -> bool:
    """Builtin data only, so that ``repr`` is an exact, stable cache key."""
    if type(value) is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if type(value) in (list, tuple):
        return all(_plain(v) for v in value)
    return type(value) in (type(None), bool, int, float, str)


def torch_save(value: Any) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(value, buf)
    return buf.getvalue()


def torch_load(data: bytes) -> Any:
    import torch

    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _write_atomically(path: Path, data: bytes) -> None:
    from grader.results import atomic_write  # grader side only: the sandbox has no results.py

    try:
        atomic_write(path, data)
    except OSError:  # a cache that cannot be written is no cache, not an error
        pass


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
        self.notes += install_submission_package(self.package, self.package_dir)
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
        try:
            return import_submission_module(self.package, self.package_dir, name,
                                            self.timeout_s)
        except ProbeFailure as failure:
            self._import_failures[name] = failure
            raise

    def run(self, probe: ProbeFn, case: dict) -> Any:
        for other in getattr(probe, "uses", ()):
            self.module(other)  # its import failure, not a confusing one from inside the probe
        module = self.module(probe.module)
        timeout_s = float(getattr(probe, "timeout", None) or self.timeout_s)  # as in a worker
        result = guarded_call(lambda: probe(module, copy.deepcopy(case)), timeout_s,
                              self.package_dir, _qualname(probe))
        return sanitize(result)


# nn.Module's default forward raises NotImplementedError with this text
_MISSING_FORWARD = "missing the required \"forward\" function"


def guarded_call(fn, timeout_s: float, package_dir: Path | None, what: str) -> Any:
    """Run student code; turn anything it does wrong into a one-line ProbeFailure."""
    try:
        with _time_limit(timeout_s):
            return fn()
    except ProbeFailure:
        raise
    except NotImplementedError as exc:
        if _MISSING_FORWARD in str(exc):  # torch's, not a stub's: the class has no forward()
            raise ProbeFailure("exception", f"NotImplementedError: {exc} (did you define "
                               "forward(), spelled exactly so, inside the class?)") from None
        hint = f": {exc}" if str(exc) else ""
        raise ProbeFailure("not_implemented", f"not implemented yet{hint}") from None
    except _ProbeTimeout:
        raise ProbeFailure("timeout", f"your code did not finish within {timeout_s:g} s "
                           f"({what})") from None
    except RecursionError:
        raise ProbeFailure("exception", "RecursionError: maximum recursion depth exceeded "
                           "(does a method call itself?)") from None
    except MemoryError:
        raise ProbeFailure("exception", "MemoryError: your code ran out of memory") from None
    except SystemExit as exc:
        raise ProbeFailure("exception", f"your code called sys.exit({exc.code!r})") from None
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ProbeFailure("exception", describe_exception(exc, package_dir)) from None


class UnavailableHandle:
    """Stands in for a submission that could not be opened: every probe fails with why."""

    kind = "unavailable"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.notes = [f"could not grade the submission: {reason}"]

    def __enter__(self) -> UnavailableHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def run(self, probe: ProbeFn, case: dict) -> Any:
        raise ProbeFailure("import_error", self.reason)


def open_handle(package_dir: str | Path, mode: str = "in-process", pack_name: str = "day02",
                **options: Any):
    """The handle the plugin gives graders as ``student``: in process, or sandboxed workers."""
    if mode.startswith("unavailable:"):
        return UnavailableHandle(mode.removeprefix("unavailable:"))
    if mode == "in-process":
        return InProcessHandle(package_dir, **options)
    if mode in ("sandbox", "fallback"):
        from grader.sandbox.handle import SandboxHandle

        return SandboxHandle(package_dir, pack_name, force_fallback=mode == "fallback",
                             **options)
    raise ValueError(f"unknown handle mode {mode!r} (in-process, sandbox or fallback)")
