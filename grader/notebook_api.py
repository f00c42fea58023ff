"""What the test cells of a notebook course call: the kit's graders on the notebook's code.

    from grader.notebook_api import check, self_check
    self_check("conv2d")     # the public self-check tests (no solutions needed)
    check("conv2d")          # the hidden graders (inside ### BEGIN HIDDEN TESTS)

Both collect the definitions of the calling notebook (its global namespace) into the package
``exercises``: one small module file per submission module, in a temporary folder, each
holding every public name of the notebook (``from exercises.blocks import BasicBlock`` works,
and so does a probe's ``import exercises.resnet``). Then they run that exercise's tests in
this kernel, print a short per-property summary on stdout, and return the score scaled to
the exercise's points in the pack: the cell's last expression, so nbgrader gives partial
credit (``determine_grade`` reads a number in ``[0, points]`` as the cell's score).

Rules nbgrader 0.9.6 imposes on a graded cell, kept here: nothing reaches stderr (any stderr
output scores the cell 0), so warnings, pytest's and the student's stderr are caught and
shown on stdout; student failures never raise (a raise scores 0, partial credit is lost).
``check`` raises only when the grader itself cannot grade (no graders for the exercise, the
graders did not run): the cell then shows a traceback and scores 0 until an instructor looks.

Trust: this runs student code in the kernel's process, like nbgrader itself does. It is not
the sandbox of ``python -m grader grade`` (see the README, "Notebook courses (nbgrader)").
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import os
import sys
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grader import limits
from grader.manifest import Pack
from grader.packs import DEFAULT_PACK, load_pack
from grader.results import GradeReport

# Names IPython puts in a notebook's namespace; they are no part of a submission.
KERNEL_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit"})
SHIM = ('"""The notebook\'s definitions, exposed as a submission module by '
        'grader.notebook_api."""\n'
        "from grader.notebook_api import exports as _exports\n\n"
        "globals().update(_exports({token!r}))\n")
_NAMESPACES: dict[str, dict[str, Any]] = {}
MAX_STDERR_CHARS = 2000
PROBE_TIMEOUT_S = limits.NOTEBOOK_PROBE_TIMEOUT_S  # grader/limits.py says why


def exports(token: str) -> dict[str, Any]:
    """The public names of the notebook registered under ``token`` (called by the shims)."""
    namespace = _NAMESPACES[token]
    return {k: v for k, v in namespace.items()
            if not k.startswith("_") and k not in KERNEL_NAMES}


@contextlib.contextmanager
def notebook_package(namespace: dict[str, Any], modules: tuple[str, ...]) -> Iterator[Path]:
    """A temporary folder of shim modules, one per name in ``modules``, over ``namespace``."""
    token = uuid.uuid4().hex
    _NAMESPACES[token] = namespace
    try:
        with tempfile.TemporaryDirectory(prefix="kit-notebook-") as tmp:
            folder = Path(tmp)
            (folder / "__init__.py").write_text('"""A notebook, as a submission."""\n')
            for module in modules:
                (folder / f"{module}.py").write_text(SHIM.format(token=token))
            yield folder
    finally:
        del _NAMESPACES[token]


def _caller_namespace(depth: int = 2) -> dict[str, Any]:
    return sys._getframe(depth).f_globals


@contextlib.contextmanager
def _stderr_to(sink: io.StringIO) -> Iterator[None]:
    """Keep everything off stderr: Python-level writes, warnings, and fd 2 (C extensions)."""
    with tempfile.TemporaryFile(mode="w+b") as fd_sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        saved_fd = None
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
            saved_fd = os.dup(2)
            os.dup2(fd_sink.fileno(), 2)
        try:
            with contextlib.redirect_stderr(sink):
                yield
        finally:
            if saved_fd is not None:
                os.dup2(saved_fd, 2)
                os.close(saved_fd)
            fd_sink.seek(0)
            sink.write(fd_sink.read().decode("utf-8", errors="replace"))


def _summary(title: str, report: GradeReport, scale: float) -> str:
    lines = [title]
    for test in report.tests:
        mark = "ok  " if test.passed else "FAIL"
        name = test.name.split(": ", 1)[-1]
        lines.append(f"  {mark} {name} ({test.score * scale:.3g} / {test.max_score * scale:.3g})")
        if not test.passed and test.output:
            lines += [f"         {line}" for line in test.output.splitlines()]
    return "\n".join(lines)


def _score(report: GradeReport, points: float) -> tuple[float, float]:
    """(score scaled to ``points``, the scale): never above ``points``, never negative."""
    if not report.max_score:
        return 0.0, 0.0
    scale = points / report.max_score
    return round(min(points, max(0.0, report.score * scale)), 4), scale


def _run_hidden(pack: Pack, package_dir: Path, exercise: str, out: Path) -> GradeReport:
    from grader.config import GradeConfig, HandleMode
    from grader.grade import run_graders

    # the folder holds our shims, not the notebook's source: no static check in the kernel
    # (python -m grader grade on the notebook file reads its cells)
    config = GradeConfig(pack=pack.name, handle=HandleMode.IN_PROCESS, only=(exercise,),
                         probe_timeout=PROBE_TIMEOUT_S, read_source=False)
    return run_graders(pack, package_dir, out, config, quiet=True)


def _run_public(pack: Pack, package_dir: Path, exercise: str, out: Path) -> GradeReport | None:
    """The self-check tests of the exercise's modules, on the notebook's definitions."""
    import pytest

    from grader.grade import GRADER_DIR

    spec = importlib.util.find_spec(f"{pack.submission_package}.tests")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the public self-check tests ({pack.submission_package}.tests) "
                           "are not installed in this kernel's environment")
    tests_dir = Path(spec.submodule_search_locations[0])
    tests = [tests_dir / f"test_{m}.py" for m in pack.exercise(exercise).modules]
    files = [str(f) for f in tests if f.is_file()]
    if not files:
        return None
    report_path = out / "results.json"
    args = [*files, "-c", str(GRADER_DIR / "grading.ini"), "--rootdir", str(tests_dir),
            "-p", "grader.plugin", "-p", "no:cacheprovider", "-p", "no:terminal",
            "--kit-pack", pack.name, "--kit-only", exercise, "--kit-profile", "grading",
            "--kit-report", str(report_path)]
    with _seeded(pack, package_dir), _env("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1"):
        code = pytest.main(args)
    if code == pytest.ExitCode.NO_TESTS_COLLECTED or not report_path.is_file():
        return None
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        raise RuntimeError(f"the self-check did not run (pytest exit code {int(code)})")
    report = GradeReport.from_gradescope_dict(json.loads(report_path.read_text()))
    return report if report.tests else None


@contextlib.contextmanager
def _seeded(pack: Pack, package_dir: Path) -> Iterator[None]:
    """``exercises.<module>`` imports the shims while the installed ``exercises`` package
    (home of the self-check tests) stays the package; sys.modules is restored afterwards."""
    package = pack.submission_package
    importlib.import_module(package)
    names = [f"{package}.{m}" for m in pack.modules]
    saved = {n: sys.modules[n] for n in names if n in sys.modules}
    try:
        for module, name in zip(pack.modules, names, strict=True):
            spec = importlib.util.spec_from_file_location(name, package_dir / f"{module}.py")
            assert spec is not None and spec.loader is not None  # a .py file always has both
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
        yield
    finally:
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _grade(exercise: str, namespace: dict[str, Any], pack_name: str, hidden: bool) -> float | None:
    pack = load_pack(pack_name)
    points = float(pack.exercise(exercise).points)  # an unknown id raises: the cell is wrong
    stderr = io.StringIO()
    try:
        with _stderr_to(stderr), notebook_package(namespace, pack.modules) as package_dir, \
                tempfile.TemporaryDirectory(prefix="kit-notebook-report-") as out:
            run = _run_hidden if hidden else _run_public
            report = run(pack, package_dir, exercise, Path(out))
    except RuntimeError as exc:
        if hidden:
            raise
        # the self-check is advice: it must not fail a cell whose hidden check grades it
        print(f"{exercise}: the self-check could not run here ({exc})")
        return None
    kind = "hidden tests" if hidden else "self-check, public tests only"
    if report is None or not report.tests:
        if hidden:
            raise RuntimeError(f"no hidden graders ran for exercise {exercise!r}: this kit "
                               "cannot grade it (is the grader package complete?)")
        print(f"{exercise}: no public self-check for this exercise; it is graded when you "
              "submit.")
        return None
    score, scale = _score(report, points)
    title = f"{exercise}: {score:g} / {points:g} points ({kind})"
    print(_summary(title, report, scale))
    if stderr.getvalue().strip():
        text = stderr.getvalue().strip()[:MAX_STDERR_CHARS]
        print("  (stderr while checking, shown here instead)\n" +
              "\n".join(f"  | {line}" for line in text.splitlines()))
    return score


def check(exercise: str, *, pack: str = DEFAULT_PACK,
          namespace: dict[str, Any] | None = None) -> float:
    """Grade ``exercise`` with the hidden graders; returns the score in ``[0, points]``."""
    ns = namespace if namespace is not None else _caller_namespace()
    return _grade(exercise, ns, pack, hidden=True) or 0.0  # None never: _grade raises


def self_check(exercise: str, *, pack: str = DEFAULT_PACK,
               namespace: dict[str, Any] | None = None) -> float | None:
    """Run the public self-check of ``exercise``; the score scaled to its points, or None."""
    ns = namespace if namespace is not None else _caller_namespace()
    return _grade(exercise, ns, pack, hidden=False)


__all__ = ["check", "self_check", "exports", "notebook_package"]
