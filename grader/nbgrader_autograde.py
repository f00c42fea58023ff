"""``nbgrader autograde``, with the student's code run only in the kit's sandbox.

    python -m grader nbgrader-autograde COURSE ASSIGNMENT [--student ID] [--jobs N] [--force]

Three steps, all inside nbgrader's own flow:

1. **Sanitize.** Each ``submitted/<student>/<assignment>/<notebook>.ipynb`` goes through
   nbgrader's own sanitizing preprocessors (``Autograde.sanitize_preprocessors``: clear
   outputs, restore locked and deleted cells from the gradebook, check the metadata), in memory,
   into a staging folder. A student who edits the setup cell or deletes a test cell gets the
   instructor's back, exactly as ``nbgrader autograde`` would.
2. **Grade in the sandbox.** The staged notebooks are graded as a batch (``grader.batch``:
   Dask, ``--jobs`` at once, the sandbox, the reference cache, resumable by content hash) into
   ``COURSE/kit-reports/<assignment>/<notebook>/<student>/``: ``results.json`` and
   ``feedback.md``. Student code runs there and nowhere else.
3. **Record in the gradebook.** nbgrader's ``Autograde`` converter runs per student, with its
   ``Execute`` preprocessor (the kernel) replaced by ``KitScores``: each test cell
   ``test_<exercise>`` gets the graders' feedback on stdout and the exercise's score, scaled
   to the cell's points, as its result. nbgrader's ``SaveAutoGrades`` then writes the
   gradebook, ``AssignLatePenalties`` applies the course's late policy to the recorded
   timestamp, and ``autograded/`` holds the notebooks that ``generate_feedback``, formgrader
   and ``export`` read. Manual grades and comments already in the gradebook are kept (nbgrader
   never overwrites them; a changed auto score marks the cell for review).

A student on whom the grader itself fails (not their code: a crashed worker, a broken
install) is left out of step 3: nothing is recorded for them, the gradebook keeps what it had,
and the command names them and exits 1, to be run again.

No kernel is started: a cell the student added, or one that monkeypatches ``check``, is never
executed in the instructor's process. The in-kernel ``nbgrader autograde`` still works for
formative use (README, "Notebook courses").
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.manifest import Pack
from grader.text import visible

REPORTS = "kit-reports"  # COURSE/kit-reports/<assignment>/<notebook>/<student>/results.json
STAGING = ".kit-staging"  # COURSE/.kit-staging/<assignment>/<notebook>/<student>/<nb>.ipynb
TEST_PREFIX = "test_"


class AutogradeError(Exception):
    """The course or the assignment cannot be autograded; the message says why."""


@dataclass
class AutogradeResult:
    assignment: str
    totals: dict[str, tuple[float, float]] = field(default_factory=dict)  # student -> (got, max)
    errors: dict[str, str] = field(default_factory=dict)  # student -> why nbgrader failed
    grader_errors: dict[str, str] = field(default_factory=dict)  # student -> grader failure
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.errors or self.grader_errors else 0


# -- the preprocessor that takes the kernel's place ---------------------------------------------
def _kit_scores_class():
    """``KitScores``, defined on first use: importing nbgrader is for this command only."""
    from nbformat.v4 import new_output
    from nbgrader import utils
    from nbgrader.preprocessors import NbGraderPreprocessor
    from traitlets import Unicode

    from grader.batch.collect import safe_id
    from grader.batch.store import META
    from grader.notebook_api import _score, _summary
    from grader.results import GradeReport

    class KitScores(NbGraderPreprocessor):
        """Fills each kit test cell with the sandboxed grade of its exercise (no kernel)."""

        reports = Unicode("", help="kit-reports/<assignment> of this course").tag(config=True)

        def preprocess(self, nb, resources):
            nbgrader = resources["nbgrader"]
            folder = Path(self.reports) / nbgrader["notebook"] / safe_id(nbgrader["student"])
            self._report, self._why = None, ""
            try:
                self._report = GradeReport.from_gradescope_dict(
                    json.loads((folder / "results.json").read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError) as exc:  # the grader failed on it
                try:
                    self._why = "the grader failed: " + json.loads(
                        (folder / META).read_text(encoding="utf-8"))["error"]
                except (OSError, ValueError, KeyError):
                    self._why = f"no grading report ({type(exc).__name__})"
            return super().preprocess(nb, resources)

        def preprocess_cell(self, cell, resources, index):
            if not (utils.is_grade(cell) and cell.cell_type == "code"
                    and not utils.is_solution(cell)):
                return cell, resources
            grade_id = cell.metadata["nbgrader"]["grade_id"]
            points = float(cell.metadata["nbgrader"]["points"])
            exercise = grade_id.removeprefix(TEST_PREFIX)
            tests = [t for t in self._report.tests if t.exercise == exercise] \
                if self._report is not None else []
            if tests:
                part = GradeReport(tests)
                score, scale = _score(part, points)
                text = _summary(f"{exercise}: {score:g} / {points:g} points (graded in the "
                                "sandbox)", part, scale)
            elif self._report is None:
                score, text = 0.0, f"{exercise}: not graded: {self._why}"
            else:  # an instructor's own test cell: no kernel runs it here
                score = 0.0
                text = (f"{grade_id}: not a kit check, and no kernel runs here; "
                        "give its points by hand in formgrader")
            text = visible(text, newlines=True)  # students' messages: shown, never obeyed
            cell.outputs = [new_output("stream", name="stdout", text=text + "\n"),
                            new_output("execute_result", data={"text/plain": f"{score:g}"},
                                       execution_count=None)]
            return cell, resources

    return KitScores


# -- the command --------------------------------------------------------------------------------
def _course_config(course: Path):
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    path = course / "nbgrader_config.py"
    config = PyFileConfigLoader(path.name, path=str(course)).load_config() \
        if path.is_file() else Config()
    config.CourseDirectory.root = str(course)
    return config


def _students(course: Path, assignment: str, only: tuple[str, ...]) -> list[str]:
    submitted = course / "submitted"
    found = sorted(p.parent.name for p in submitted.glob(f"*/{assignment}") if p.is_dir())
    if only:
        missing = [s for s in only if s not in found]
        if missing:
            raise AutogradeError(f"no submission of {assignment} from {', '.join(missing)} "
                                 f"under {submitted}")
        return list(only)
    return found


def _sanitized(path: Path, student: str, notebook: str, assignment: str, db_url: str,
               config: Any):
    """The submitted notebook after nbgrader's own sanitizing preprocessors (in memory)."""
    import nbformat
    from nbgrader.converters import Autograde

    nb = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
    resources = {"nbgrader": {"notebook": notebook, "assignment": assignment,
                              "student": student, "db_url": db_url}}
    for cls in Autograde(config=config).sanitize_preprocessors:
        nb, resources = cls(config=config).preprocess(nb, resources)
    return nb


def nbgrader_autograde(course: str | Path, assignment: str, **options: Any) -> AutogradeResult:
    """Grade ``assignment``'s submissions in the sandbox and record them in the gradebook.

    Options: ``students`` (ids; default every submission), ``jobs``, ``force``, ``pack``,
    ``quiet``, ``allow_unsandboxed``.
    """
    with warnings.catch_warnings():
        # nbgrader's own noise, not the instructor's business: SQLAlchemy's session warnings
        # when it creates a submission, nbformat's on the cells it restores without an id
        warnings.filterwarnings("ignore", message=".*not in session.*")
        warnings.filterwarnings("ignore", message="Cell is missing an id field")
        return _autograde(Path(course).resolve(), assignment, **options)


def _autograde(course: Path, assignment: str, *, pack: Pack, students: tuple[str, ...] = (),
               jobs: int | None = None, force: bool = False, quiet: bool = False,
               allow_unsandboxed: bool = False) -> AutogradeResult:
    import nbformat
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.apps import NbGraderAPI
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import Execute

    from grader.batch.collect import safe_id
    from grader.batch.run import BatchOptions, run_batch

    config = _course_config(course)
    coursedir = CourseDirectory(config=config)
    result = AutogradeResult(assignment)
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        try:
            notebooks = {nb.name: sorted(c.name for c in nb.grade_cells)
                         for nb in gb.find_assignment(assignment).notebooks}
        except MissingEntry:
            raise AutogradeError(f"the gradebook of {course} has no assignment {assignment!r}: "
                                 f"run nbgrader generate_assignment {assignment} first") from None
    who = _students(course, assignment, students)
    if not who:
        raise AutogradeError(f"no submissions of {assignment} under {course / 'submitted'}")

    # 1. sanitize with nbgrader's preprocessors, into a staging folder
    staging = course / STAGING / assignment
    shutil.rmtree(staging, ignore_errors=True)
    for student in who:
        for notebook in notebooks:
            path = course / "submitted" / student / assignment / f"{notebook}.ipynb"
            if path.is_symlink():  # never followed: it could name any file the grader reads
                result.notes.append(f"{student}/{notebook}: the submitted notebook is a "
                                    "symbolic link and was not graded")
                continue
            if path.is_file():
                dest = staging / notebook / student / f"{notebook}.ipynb"
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    nb = _sanitized(path, student, notebook, assignment, coursedir.db_url,
                                    config)
                except Exception as exc:  # noqa: BLE001  (not a notebook: graded as such)
                    shutil.copyfile(path, dest)
                    result.notes.append(f"{student}/{notebook}: nbgrader could not read it "
                                        f"({type(exc).__name__}: {exc})")
                    continue
                nbformat.write(nb, str(dest))

    # 2. grade the staged notebooks in the sandbox, as a batch
    reports = course / REPORTS / assignment
    for notebook, cells in notebooks.items():
        exercises = tuple(c.removeprefix(TEST_PREFIX) for c in cells
                          if c.startswith(TEST_PREFIX) and c.removeprefix(TEST_PREFIX) in pack.ids)
        if not (staging / notebook).is_dir() or not exercises:
            continue
        batch = run_batch(staging / notebook, reports / notebook, BatchOptions(
            only=exercises, jobs=jobs, force=force, pack=pack.name, quiet=quiet,
            allow_unsandboxed=allow_unsandboxed))
        for student in who:
            if safe_id(student) in batch.errors:
                result.grader_errors[student] = f"{notebook}: {batch.errors[safe_id(student)]}"

    # 3. nbgrader's own Autograde, with KitScores in the kernel's place
    kit_scores = _kit_scores_class()
    steps = list(Autograde(config=config).autograde_preprocessors)
    if not any(isinstance(s, type) and issubclass(s, Execute) for s in steps):
        raise AutogradeError("this course's Autograde.autograde_preprocessors has no Execute "
                             "step for the sandbox to replace")
    config.Autograde.autograde_preprocessors = [
        kit_scores if isinstance(s, type) and issubclass(s, Execute) else s for s in steps]
    config.KitScores.reports = str(reports)
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    for student in who:
        if student in result.grader_errors:  # nothing recorded: the gradebook keeps what it had
            continue
        answer = api.autograde(assignment, student, force=True, create=True)
        if not answer.get("success"):
            result.errors[student] = (answer.get("error") or answer.get("log") or
                                      "nbgrader autograde failed").strip().splitlines()[-1]
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        for student in who:
            try:
                sub = gb.find_submission(assignment, student)
            except MissingEntry:
                continue
            result.totals[student] = (sub.score, sub.max_score)
    shutil.rmtree(staging, ignore_errors=True)
    return result


def summary(result: AutogradeResult) -> str:
    """The terminal's table: one line per student, then what went wrong."""
    width = max([len(s) for s in result.totals] + [7])
    lines = [f"{'student':<{width}}  score"]
    lines += [f"{s:<{width}}  {got:g} / {top:g}" for s, (got, top) in sorted(result.totals.items())]
    lines += [f"grader error, nothing recorded for {s} (run again): {e}"
              for s, e in sorted(result.grader_errors.items())]
    lines += [f"nbgrader failed: {s}: {e}" for s, e in sorted(result.errors.items())]
    lines += result.notes
    return visible("\n".join(lines), newlines=True)  # student ids and notes: grader/text.py
