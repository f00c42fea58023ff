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
import time
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
        assert spec is not None and spec.loader is not None  # a .py file always has both
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


class ModuleUnavailable(Exception):
    """Student code used a name from a sibling module that failed to import."""


class _MissingName(type):
    """The type of a stand-in module's names: a class that fails, saying why, when used.

    A class (not a plain object) so that ``isinstance(m, BasicBlock)`` is simply False and
    ``class Mine(BasicBlock)`` still defines; calling it or reading its attributes raises.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise ModuleUnavailable(cls._kit_reason)

    def __getattr__(cls, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise ModuleUnavailable(cls._kit_reason)


class StandIn(types.ModuleType):
    """Takes the place of a student module that failed to import, so that a sibling which
    imports it can still be graded on what does not use it. Holds no code of ours: every name
    asked of it is a ``_MissingName`` that raises "BasicBlock is unavailable: ..." when used."""

    def __init__(self, full_name: str, failure: ProbeFailure, why: str) -> None:
        super().__init__(full_name)
        self.kit_failure = failure
        self.kit_why = why
        self.__all__: list[str] = []  # ``from .blocks import *`` imports nothing

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        short = self.__name__.rpartition(".")[2]
        missing = _MissingName(attr, (), {
            "_kit_reason": f"{attr} is unavailable: {short}.py failed to import ({self.kit_why})"})
        setattr(self, attr, missing)  # the same object every time it is imported
        return missing


def _failed_sibling(exc: BaseException, package_dir: Path, name: str) -> str | None:
    """The other submission module whose own top level failed while ``name`` imported it.

    The last module-level frame inside the submission says whose body raised: ``resnet.py``
    calling a broken function of ``blocks.py`` at import is resnet's failure, not blocks'.
    """
    if isinstance(exc, SyntaxError) and exc.filename:
        path = Path(exc.filename)
    else:
        path = None
        for frame in traceback.extract_tb(exc.__traceback__):
            where = Path(frame.filename)
            if frame.name == "<module>" and where.parent.resolve() == package_dir.resolve():
                path = where
    if path is None or path.suffix != ".py" or path.stem in (name, "__init__"):
        return None
    if path.parent.resolve() != package_dir.resolve():
        return None
    return path.stem


def import_submission_module(package: str, package_dir: Path, name: str,
                             timeout_s: float, _busy: frozenset[str] = frozenset()
                             ) -> types.ModuleType:
    """Import ``package.name`` from the submission or raise a one-line ProbeFailure.

    When it fails only because a *sibling* module it imports fails on its own, the sibling is
    replaced by a ``StandIn`` and ``name`` is imported again: ``resnet.py`` then grades on
    ``kaiming_init_`` although ``blocks.py`` has a syntax error.
    """
    full = f"{package}.{name}"
    loaded = sys.modules.get(full)
    if isinstance(loaded, StandIn):
        raise loaded.kit_failure
    if loaded is not None:
        return loaded
    if not (package_dir / f"{name}.py").exists():
        raise ProbeFailure("import_error", f"{name}.py is missing from the submission")
    deadline = time.monotonic() + timeout_s if timeout_s > 0 else None
    while True:
        exc = _import_once(full, deadline)
        if exc is None:
            return sys.modules[full]
        sibling = _failed_sibling(exc, package_dir, name)
        if sibling is None or sibling in _busy or isinstance(exc, _ProbeTimeout):
            raise _import_failure(exc, name, package_dir, timeout_s) from None
        left = 0.0 if deadline is None else max(deadline - time.monotonic(), 0.01)
        try:  # does the sibling fail on its own? (a cycle of imports does not count)
            import_submission_module(package, package_dir, sibling, left, _busy | {name})
        except ProbeFailure as failure:
            why = failure.message.partition(" could not be imported: ")[2] or failure.message
            stand_in = StandIn(f"{package}.{sibling}", failure, why)
            sys.modules[stand_in.__name__] = stand_in
            setattr(sys.modules[package], sibling, stand_in)
            continue
        raise _import_failure(exc, name, package_dir, timeout_s) from None


def _import_once(full: str, deadline: float | None) -> BaseException | None:
    """Import ``full``; return what it raised (None when it imported)."""
    left = 0.0 if deadline is None else max(deadline - time.monotonic(), 0.01)
    try:
        with _time_limit(left):
            importlib.import_module(full)
        return None
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        sys.modules.pop(full, None)
        return exc


def _import_failure(exc: BaseException, name: str, package_dir: Path,
                    timeout_s: float) -> ProbeFailure:
    if isinstance(exc, _ProbeTimeout):
        return ProbeFailure("timeout", f"importing your module {name}.py did not finish "
                            f"within {timeout_s:g} s")
    if isinstance(exc, SystemExit):
        why = f"it called sys.exit({exc.code!r})"
    elif isinstance(exc, UnicodeDecodeError):
        why = "it is not valid UTF-8 text"
    elif isinstance(exc, ModuleUnavailable):
        why = str(exc)
    else:
        why = describe_exception(exc, package_dir)
    return ProbeFailure("import_error", f"your module {name}.py could not be imported: {why}")


# nn.Module's default forward raises NotImplementedError with this text
_MISSING_FORWARD = "missing the required \"forward\" function"


def guarded_call(fn, timeout_s: float, package_dir: Path | None, what: str) -> Any:
    """Run student code; turn anything it does wrong into a one-line ProbeFailure."""
    try:
        with _time_limit(timeout_s):
            return fn()
    except ProbeFailure:
        raise
    except ModuleUnavailable as exc:  # a name from a sibling module that failed to import
        raise ProbeFailure("import_error", str(exc)) from None
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
