"""The kit's pytest plugin (entry point ``pytest11: kit``), for grading and for the self-check.

* markers: one per exercise id of the pack, plus ``points(n)``; registered, so
  ``--strict-markers`` catches a typo and ``pytest exercises -m basic_block`` selects one;
* a grade's settings: a ``KitGrading`` object (a typed ``GradeConfig``, the submission, an
  early-started handle) that ``grade.py`` passes to ``pytest.main(args, plugins=[...])``,
  and that carries the ``GradeReport`` back; the options of group "exercise kit"
  (``--submission``, ``--kit-only``, ``--kit-handle``, ...) are for a person at the terminal
  and become the same object;
* fixtures: ``student`` (a handle on the submission), ``reference`` (a handle on the hidden
  solutions), ``static_scan`` (grader/static_check.py: the submission's source, read as text
  once per grade), ``load_exercise`` (the self-check's import with a clear failure message);
* scores: collected in a ``pytest_runtest_makereport`` wrapper, shown per exercise in
  ``pytest_terminal_summary``, and written as ``results.json`` (Gradescope schema) with
  ``--kit-report``.

The plugin changes nothing in a pytest run that neither grades nor self-checks (one that
collects none of the pack's public tests): it only registers its markers and options.

Usage:
    pytest exercises                                  # student self-check, in process
    pytest grader/packs/day02/graders --submission SUB --kit-report out/results.json
                                                      # the graders by hand (grade.py: typed)
"""

from __future__ import annotations

import builtins
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, Phase, settings

from grader.config import GradeConfig, HandleMode, check_only, parse_only
from grader.feedback import PropertyFailed
from grader.handle import (
    InProcessHandle,
    ModuleUnavailable,
    describe_exception,
    import_submission_module,
    open_handle,
)
from grader.manifest import Pack
from grader.packs import DEFAULT_PACK, load_pack
from grader.probes import ProbeFailure
from grader.results import GradeReport, PropertyResult, format_table
from grader.text import visible
from grader.versions import GRADING_PROFILE, case_versions

if TYPE_CHECKING:  # grading only: the release's self-check ships no static check
    from collections.abc import Generator

    from grader.static_check import Scan

# Grading: every student faces the same cases, and a regrade gives the same report.
# Grading leaves out Hypothesis' explain phase: it only annotates the failing case ("# or any
# other generated value") and, measured, triples the time of every failing exercise (the stubs'
# param_count: 11.4 s with it, 3.6 s without); cases, shrinking and scores are unchanged.
settings.register_profile(
    "grading", derandomize=True, database=None, deadline=None, print_blob=False,
    report_multiple_bugs=False, max_examples=20,
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])
# Self-check: explores new cases on every run (explicitly: on a CI machine hypothesis's own
# default profile would otherwise derandomize it). No explain phase either: its "these lines
# were always and only run by failing test cases" points into torch, not at the student's bug.
settings.register_profile(
    "selfcheck", derandomize=False, deadline=None, report_multiple_bugs=False, max_examples=20,
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture])

# hypothesis may raise a group of failures (Python 3.11+ builtin, or the backport on 3.10)
_EXCEPTION_GROUPS = tuple(t for t in (getattr(builtins, "BaseExceptionGroup", None),) if t)
STATE = pytest.StashKey["KitState"]()
PREVIOUS_PROFILE = pytest.StashKey[str]()
HANDLE_WORDS = {"in-process": "inside the grader process (trusted code only)",
                "unavailable": "not at all"}
SELF_CHECK_NOTE = ("This is the self-check: public tests only. Hidden checks with more cases "
                   "run at grading.")


class KitGrading:
    """The grade's settings, handed to pytest as an object, and its report handed back.

        grading = KitGrading(GradeConfig(...), package_dir, handle=early_sandbox)
        pytest.main(args, plugins=[grading]); grading.report      # a GradeReport

    ``handle``: a student handle grade.py entered before pytest started (the sandbox starts
    while pytest collects); the ``student`` fixture uses it and closes it at the end. A person
    running the graders by hand with ``--submission`` gets the same object, from the options.
    """

    def __init__(self, config: GradeConfig, submission: Path, handle: Any = None) -> None:
        self.config = config
        self.submission = Path(submission)
        self.handle = handle
        self.report: GradeReport | None = None


@dataclass
class KitState:
    pack: Pack
    profile: str
    grading: KitGrading | None  # None: the self-check (public tests on ``exercises``)
    only: tuple[str, ...] = ()
    # self-check: the factor that makes an exercise's public properties add up to its points
    scale: dict[str, float] = field(default_factory=dict)
    results: dict[str, PropertyResult] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    notes: list[str] = field(default_factory=list)
    # the submission's source read as text (grading only: None in the self-check, and when
    # there is no submission to read)
    scan: Scan | None = None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kit", "exercise kit")
    group.addoption("--submission", default=None, metavar="DIR",
                    help="grade this submission folder (its modules form the package "
                    "'exercises'); without it, tests import 'exercises' directly (self-check)")
    group.addoption("--kit-profile", default=None, choices=("grading", "selfcheck"),
                    help="hypothesis profile: 'grading' (derandomized, no database) or "
                    "'selfcheck' (random); default: grading with --submission")
    group.addoption("--kit-report", default=None, metavar="PATH",
                    help="write the Gradescope-schema results.json here")
    group.addoption("--kit-only", default=None, metavar="IDS",
                    help="comma-separated exercise ids: run only their tests")
    group.addoption("--kit-pack", default=None,
                    help=f"course pack (default: the kit_pack ini value, else {DEFAULT_PACK})")
    parser.addini("kit_pack", f"the course pack the self-check scores (default: {DEFAULT_PACK})",
                  default=DEFAULT_PACK)
    group.addoption("--kit-handle", default="in-process",
                    help="how student code runs while grading: in-process, sandbox or "
                    "fallback (default: %(default)s)")
    group.addoption("--kit-timeout", default=None, type=float, metavar="SECONDS",
                    help="wall-clock limit of one probe call (default: the handle's)")
    group.addoption("--kit-threads", default=None, type=int, metavar="N",
                    help="torch threads for the references and each sandbox worker (default: "
                    "min(4, cores)); a batch sets its share of the cores")
    group.addoption("--kit-reference-cache", default=None, metavar="DIR",
                    help="keep reference results in DIR (shared across students; put "
                    "the grader version in the path), or 'auto': the machine's cache for this "
                    "grader version, where the sandbox keeps student code from writing it")
    group.addoption("--figures", default=None, metavar="DIR",
                    help="self-check: also draw your models' gradient norms, filters and loss "
                    "curve as PNGs in DIR")


def _grading_of(config: pytest.Config) -> KitGrading | None:
    """The KitGrading grade.py passed in, or one made from the options a person typed."""
    given = [p for p in config.pluginmanager.get_plugins() if isinstance(p, KitGrading)]
    if given:
        return given[0]
    if config.getoption("--submission") is None:
        return None
    return KitGrading(GradeConfig(
        pack=_pack_name(config), handle=HandleMode(config.getoption("--kit-handle")),
        only=parse_only(config.getoption("--kit-only")),
        probe_timeout=config.getoption("--kit-timeout"),
        threads=config.getoption("--kit-threads"),
        reference_cache=config.getoption("--kit-reference-cache")),
        Path(config.getoption("--submission")))


def _pack_name(config: pytest.Config) -> str:
    return config.getoption("--kit-pack") or config.getini("kit_pack") or DEFAULT_PACK


def pytest_configure(config: pytest.Config) -> None:
    try:
        grading = _grading_of(config)
    except ValueError as exc:  # a --kit-handle that is no HandleMode
        raise pytest.UsageError(str(exc)) from None
    try:
        pack = load_pack(grading.config.pack if grading else _pack_name(config))
    except ValueError as exc:  # no such pack: one clear usage line
        raise pytest.UsageError(str(exc)) from None
    for ex in pack.exercises:
        config.addinivalue_line("markers", f"{ex.id}: exercise '{ex.title}' ({ex.points} points)")
    config.addinivalue_line("markers", "points(n): how many points this property is worth")
    only = grading.config.only if grading else parse_only(config.getoption("--kit-only"))
    try:
        check_only(only, pack)
    except ValueError as exc:  # unknown id: one clear usage line at start-up
        raise pytest.UsageError(str(exc)) from None
    profile = config.getoption("--kit-profile") or ("grading" if grading else "selfcheck")
    state = KitState(pack, profile, grading, only)
    if grading is not None:  # what opening the submission skipped: links, undecodable names
        state.notes.extend(grading.config.notes)
    if grading is not None and grading.config.handle is not HandleMode.UNAVAILABLE and \
            grading.config.read_source:
        from grader.static_check import scan_submission

        # once per grade, before any grader asks; it reads the folder the handle runs
        state.scan = scan_submission(grading.submission, pack.submission_package)
    config.stash[STATE] = state
    if grading or config.getoption("--kit-profile"):  # the graders' own settings, from now on
        _load_profile(config, profile)


def _load_profile(config: pytest.Config, profile: str) -> None:
    """Switch hypothesis's profile for this run only (pytest_unconfigure switches back)."""
    if PREVIOUS_PROFILE not in config.stash:
        config.stash[PREVIOUS_PROFILE] = settings.get_current_profile_name()
    settings.load_profile(profile)
    if profile == GRADING_PROFILE and LOCAL_CONSTANTS not in config.stash:
        config.stash[LOCAL_CONSTANTS] = _no_local_constants()


# Hypothesis draws 5% of its values from constants it reads in the source of every "local"
# module loaded in this process (not site-packages), and caches them in .hypothesis/constants/
# in the working folder. A derandomized grade would then draw cases that depend on whether the
# kit is an editable install or a wheel, on whether the solutions were imported (a reference
# cache miss), and, with the in-process handle, on the student's own literals. Grading turns
# that pool off: the cases depend on the lock's versions only, and nothing is written.
LOCAL_CONSTANTS = pytest.StashKey[object]()


def _no_local_constants() -> object:
    """Make hypothesis's local constant pool empty; returns what to put back (``None`` when this
    hypothesis has no such pool: nothing to do)."""
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants
    except ImportError:
        return None
    original = getattr(providers, "_get_local_constants", None)
    if original is None:
        return None
    providers._get_local_constants = Constants  # an empty pool, every time
    providers.CONSTANTS_CACHE.cache.clear()  # pools already filtered from the old one
    return original


def pytest_unconfigure(config: pytest.Config) -> None:
    # a nested pytest.main (grading from a test) must not leave its profile behind
    previous = config.stash.get(PREVIOUS_PROFILE, None)
    if previous is not None:
        settings.load_profile(previous)
    original = config.stash.get(LOCAL_CONSTANTS, None)
    if original is not None:
        from hypothesis.internal.conjecture import providers

        providers._get_local_constants = original
        providers.CONSTANTS_CACHE.cache.clear()


def _exercise_of(item: pytest.Item, pack: Pack) -> str | None:
    ids = [m.name for m in item.iter_markers() if m.name in pack.ids]
    return ids[0] if ids else None


def _points_of(item: pytest.Item) -> float:
    marker = item.get_closest_marker("points")
    return float(marker.args[0]) if marker and marker.args else 1.0


def _property_name(item: pytest.Item, exercise: str) -> str:
    doc = (getattr(item, "function", None).__doc__ or "").strip() if hasattr(item, "function") \
        else ""
    title = doc.splitlines()[0].strip() if doc else item.name.removeprefix("test_")
    callspec = getattr(item, "callspec", None)
    if callspec is not None and doc:
        title += f" [{callspec.id}]"
    return f"{exercise}: {title}"


@pytest.hookimpl(tryfirst=True)  # before -m / -k deselect: the scale sees every public test
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash[STATE]
    for item in items:
        if _exercise_of(item, state.pack) is not None:
            _skip_traceback_of_short_failures(item)
    if not state.grading:
        state.scale = _public_scale(items, state.pack)
        if state.scale and PREVIOUS_PROFILE not in config.stash:
            # the pack's public tests were collected: a self-check (the profile changes
            # nothing in any other pytest run of an environment where the kit is installed)
            _load_profile(config, state.profile)
    if not state.only:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        (keep if _exercise_of(item, state.pack) in state.only else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


SHORT_FAILURES = (ProbeFailure, NotImplementedError)  # reported as their feedback alone


def _skip_traceback_of_short_failures(item: pytest.Item) -> None:
    """pytest formats a failure's traceback (parsing the source of every file in it) before
    pytest_runtest_makereport sees the report. Where the feedback replaces that traceback,
    or is all it would say, the formatting is skipped: a stub's NotImplementedError or a probe
    failure; in a grade, the graders' own Tried / Got / Expected (PropertyFailed: its message
    is the feedback, kept in junit.xml); in a self-check with the default --tb, every failure.
    Measured: 68 tracebacks were about 1 s of the stubs' 8 s self-check, and formatting the
    failures was 15 of 85 s of grading 28 corpus variants. A grader's own error keeps its
    traceback."""
    original = item.repr_failure

    def repr_failure(excinfo, *args, **kwargs):
        if _feedback_replaces_traceback(item.config, excinfo):
            return str(excinfo.value)  # the feedback, or what the report replaces
        return original(excinfo, *args, **kwargs)

    item.repr_failure = repr_failure  # type: ignore[method-assign]


def _feedback_replaces_traceback(config: pytest.Config, excinfo: pytest.ExceptionInfo) -> bool:
    if excinfo.errisinstance(SHORT_FAILURES):
        return True
    if config.stash[STATE].grading is not None:
        return excinfo.errisinstance(PropertyFailed)
    return getattr(config.option, "tbstyle", "auto") == "auto"  # (makereport replaces it)


def _public_scale(items: list[pytest.Item], pack: Pack) -> dict[str, float]:
    """Per exercise: its points / the raw ``points(n)`` of its collected public tests, so the
    self-check's table shows the points the grade gives (the notebook scales the same way)."""
    raw: dict[str, float] = {}
    for item in items:
        exercise = _exercise_of(item, pack)
        if exercise is not None:
            raw[exercise] = raw.get(exercise, 0.0) + _points_of(item)
    return {ex: pack.exercise(ex).points / total for ex, total in raw.items() if total}


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def reference(request: pytest.FixtureRequest):
    """Runs probes on the hidden solutions (grading only; the release has none)."""
    from grader.handle import ReferenceHandle

    state = request.config.stash[STATE]
    grading = state.grading
    cache = grading.config.reference_cache if grading else None
    if cache == "auto":  # here, not before pytest: the cache's name hashes the solutions
        from grader.handle import reference_cache

        cache = reference_cache(grading.config.handle)
    return ReferenceHandle(state.pack.solutions_package, cache)


@pytest.fixture(scope="session")
def student(request: pytest.FixtureRequest):
    """Runs probes on the submission being graded (``KitGrading``, or ``--submission``)."""
    state = request.config.stash[STATE]
    grading = state.grading
    if grading is None:
        pytest.skip("no --submission given: this test runs only while grading")
    settings_ = grading.config
    options: dict = {"timeout_s": settings_.probe_timeout} if settings_.probe_timeout else {}
    if settings_.threads:
        import torch

        torch.set_num_threads(settings_.threads)  # the reference runs in this process
        if settings_.handle.sandboxed:
            options["threads"] = settings_.threads
    prepared = grading.handle is not None  # grade.py started it, to overlap its start-up
    handle = grading.handle if prepared else open_handle(
        grading.submission, settings_.handle, state.pack.name, reason=settings_.reason,
        **options)
    try:
        if not prepared:
            handle.__enter__()
        if hasattr(handle, "wait_ready"):
            handle.wait_ready()
    except RuntimeError as exc:  # the grader's own machinery failed: stop, don't score
        pytest.exit(f"grader error: {exc}", returncode=pytest.ExitCode.INTERNAL_ERROR)
    try:
        yield handle
    finally:
        handle.__exit__(None, None, None)
        tier = getattr(handle, "tier", None)  # the sandbox names what was in force
        words = HANDLE_WORDS.get(handle.isolation, handle.isolation)
        state.notes.insert(0, tier.describe() if tier else f"Student code ran: {words}.")
        state.notes.extend(getattr(handle, "notes", []))


@pytest.fixture(scope="session")
def static_scan(request: pytest.FixtureRequest) -> Scan:
    """The submission's source read as text, never run (grader/static_check.py): what a
    grader checks that the worker cannot hide. Empty when nothing is graded."""
    from grader.static_check import Scan

    return request.config.stash[STATE].scan or Scan()


@pytest.fixture(autouse=True)
def _kit_context(request: pytest.FixtureRequest) -> None:
    """Tell the student handle which exercise and test the next probes belong to."""
    if "student" not in request.fixturenames:
        return
    handle = request.getfixturevalue("student")
    exercise = _exercise_of(request.node, request.config.stash[STATE].pack)
    if hasattr(handle, "set_context") and exercise:
        handle.set_context(exercise, request.node.nodeid)


@pytest.fixture
def kit_note(request: pytest.FixtureRequest):
    """``kit_note("...")`` adds a line to the report's top-level output (once per text)."""
    notes = request.config.stash[STATE].notes

    def note(text: str) -> None:
        if text not in notes:
            notes.append(text)

    return note


@pytest.fixture
def load_exercise(request: pytest.FixtureRequest):
    """``load_exercise("blocks")`` imports ``exercises.blocks``, failing with one clear line.

    The import is the grader's (worker/guard.py): a syntax error in one module fails only its
    tests, and a module that imports a broken sibling it does not need still loads.
    """
    import importlib

    package_name = request.config.stash[STATE].pack.submission_package  # "exercises"

    def load(name: str):
        try:
            package = importlib.import_module(package_name)
        except Exception as exc:  # noqa: BLE001  (a student's __init__.py: one line)
            pytest.fail(f"{package_name}/__init__.py could not be imported: "
                        f"{describe_exception(exc)}", pytrace=False)
        try:
            return import_submission_module(package_name, Path(package.__path__[0]), name, 0)
        except ProbeFailure as failure:
            pytest.fail(failure.message.replace("your module ", f"{package_name}/"),
                        pytrace=False)

    return load


# -- scores -------------------------------------------------------------------------------------
def _feedback(excinfo: pytest.ExceptionInfo, self_check: str = "") -> str:
    """One readable message; ``self_check`` names the student package in a self-check."""
    exc = excinfo.value
    while isinstance(exc, _EXCEPTION_GROUPS) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, ProbeFailure):
        return exc.message  # the hypothesis example adds nothing to "not implemented"
    if isinstance(exc, NotImplementedError):
        return f"not implemented yet: {exc}" if str(exc) else "not implemented yet"
    if isinstance(exc, AssertionError):
        text = str(exc).strip() or "assertion failed"
        if "\nassert " in text:  # pytest's rewritten comparison after our Tried/Got block
            text = text[:text.index("\nassert ")]
        lines = text.split("\n")  # pytest indents a message's later lines by two spaces
        if len(lines) > 1 and all(line.startswith("  ") for line in lines[1:]):
            text = "\n".join([lines[0], *(line[2:] for line in lines[1:])])
    elif isinstance(exc, pytest.fail.Exception):
        text = str(exc.msg if hasattr(exc, "msg") else exc)
    elif isinstance(exc, ModuleUnavailable):  # a name from a module that failed to import
        text = f"{exc}\nHint: fix that module first; this check needs it"
    elif self_check:  # the student's code raised inside a public test
        text = (f"your code raised {_student_error(exc, self_check)}\nHint: the error comes "
                "from that line of your code; run again with --tb=short to see the calls that "
                "led there")
    else:
        text = f"the check could not run: {describe_exception(exc)}"
    notes = [n for n in getattr(exc, "__notes__", [])
             if n.startswith(("Falsifying example", "Failing test case"))]
    if notes:
        text += "\nSmallest failing case found: " + _drawn_arguments(notes[0])
    return _ADDRESS.sub("", text)  # the same submission always gets the same words


def _student_error(exc: BaseException, package: str) -> str:
    """``"ValueError: bad (conv.py, line 12)"``: the innermost line in the student's modules
    (not in torch, not in the public tests)."""
    import traceback

    text = describe_exception(exc, Path("/nonexistent"))  # the message, no location yet
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename)
        if path.parent.name == package or (
                path.parent.parent.name == package and path.parent.name != "tests"):
            where = f" ({path.name}, line {frame.lineno})"
    return text + where


# a fixture argument in hypothesis's note: ``student=<...SandboxHandle object at 0x7f...>``
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_OBJECT_ARG = re.compile(r"\w+=<[^<>]*object at 0x[0-9a-fA-F]+>,?\s*")


def _drawn_arguments(note: str) -> str:
    """``test_x(student=<obj at 0x..>, case={...})`` -> ``case={...}``: only the drawn values,
    so the same submission always gets the same words (no memory addresses, no fixtures)."""
    example = " ".join(note.split()).split(":", 1)[-1].strip()
    example = _OBJECT_ARG.sub("", example)
    inner = re.fullmatch(r"\w+\((.*?),?\s*\)", example)
    return (inner.group(1) if inner else example).strip()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    state: KitState = item.config.stash[STATE]
    exercise = _exercise_of(item, state.pack)
    if exercise is None:
        return report
    result = state.results.get(item.nodeid)
    if result is None:
        points = _points_of(item) * state.scale.get(exercise, 1.0)
        result = PropertyResult(exercise, _property_name(item, exercise), points)
        state.results[item.nodeid] = result
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if report.passed:
            result.score, result.output = result.max_score, "passed"
        elif report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else "skipped"
            result.score, result.output = 0.0, reason.removeprefix("Skipped: ")
        else:
            result.score = 0.0
            self_check = not state.grading
            package = state.pack.submission_package if self_check else ""
            # the student's exception messages are in it: shown, never obeyed (text.py)
            result.output = visible(_feedback(call.excinfo, package) if call.excinfo
                                    else "failed", newlines=True)
            short = call.excinfo and call.excinfo.errisinstance(SHORT_FAILURES)
            if short or (self_check and getattr(item.config.option, "tbstyle", "auto") == "auto"):
                # the Tried / Got / Expected / Hint block, not the test's source (--tb=long
                # still shows the traceback)
                report.longrepr = (result.output if short else
                                   f"{result.name}\n{result.output}")
    return report


def build_report(state: KitState) -> GradeReport:
    # what drew the cases: two machines give the same cases only where these agree
    extra: dict[str, Any] = {"versions": case_versions(state.profile)}
    findings = state.scan.all_findings() if state.scan else []
    if findings:  # for a person to read: a finding changes no score by itself
        extra["static_findings"] = [visible(f) for f in findings]
    if state.grading is not None and state.grading.config.handle is HandleMode.UNAVAILABLE:
        # the submission could not be opened: a batch lists it as such, not as graded
        extra["submission_problem"] = visible(state.grading.config.reason)
    report = GradeReport(list(state.results.values()),
                         execution_time=time.monotonic() - state.started, extra_data=extra)
    lines = [f"{state.pack.title}: {report.score:g} / {report.max_score:g} points."]
    lines += [visible(note) for note in state.notes]  # each one line, whatever it holds
    report.output = "\n".join(lines)
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None:
        return
    report = build_report(state)
    if state.grading is not None:
        state.grading.report = report  # back to grade.py, in memory
    path = session.config.getoption("--kit-report")
    if path:
        report.write_json(path)


# The outermost wrapper (tryfirst): pytest's own prints the short summary ("FAILED ...", one
# line per failing test) after the other plugins' summaries; the score table comes after it,
# so it is the last thing a student sees, above pytest's final count.
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter, exitstatus: int,
                            config: pytest.Config) -> Generator[None, None, None]:
    try:
        return (yield)
    finally:
        _score_summary(terminalreporter, config)


def _score_summary(terminalreporter, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if config.getoption("--figures") and state is not None and not state.grading:
        _draw_figures(terminalreporter, config.getoption("--figures"), state.pack)
    if state is None or not state.results:
        return
    report = build_report(state)
    terminalreporter.section("exercise scores")
    terminalreporter.write_line(format_table(report.by_exercise(state.pack.ids)))
    for note in state.notes:
        terminalreporter.write_line(visible(note))
    if not state.grading:
        terminalreporter.write_line(SELF_CHECK_NOTE)


def _draw_figures(terminalreporter, out: str, pack: Pack) -> None:
    """``--figures DIR``: the student's own models, drawn after the self-check."""
    import importlib.util

    from grader.figures import draw_all, summary

    spec = importlib.util.find_spec(pack.submission_package)
    if spec is None or not spec.submodule_search_locations:
        terminalreporter.write_line(f"figures: the package '{pack.submission_package}' was "
                                    "not found")
        return
    terminalreporter.section("figures")
    with InProcessHandle(spec.submodule_search_locations[0], pack.submission_package) as handle:
        terminalreporter.write_line(summary(draw_all(handle, out, pack)))
