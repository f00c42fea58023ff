"""Calling student code: import the submission, run a probe, turn any failure into one line.

    install_submission_package("exercises", Path("/submission"))   # the folder as a package
    module = import_submission_module("exercises", folder, "blocks", timeout_s=20)
    result = guarded_call(lambda: probe(module, case), 20, folder, "blocks:forward")

Runs where student code runs: in a sandbox worker, or in the student's own process for the
self-check. Every failure comes out as ``ProbeFailure(kind, one_line_message)``.
"""

from __future__ import annotations

import importlib
import importlib.util
import signal
import sys
import traceback
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from grader.probes import ProbeFailure


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
