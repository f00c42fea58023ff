"""A batch's totals, as a gradebook Canvas imports unchanged.

    python -m grader canvas-csv OUT --gradebook EXPORT.csv --assignment "Day 2 (12345)" \\
        [--out IMPORT.csv]

``EXPORT.csv`` is the gradebook the instructor exported from Canvas (Grades > Export). The
result is that file with one column filled in: the assignment's cell of every student the batch
graded, matched by Canvas user id (the export's ``ID`` column; the batch read it from the
"Download Submissions" file names and kept it in ``OUT/canvas.json``). Everything else is kept
as exported: the header, the column order, the "Points Possible" and "Manual Posting" rows,
other assignments, the read-only total columns, the delimiter (``,`` or ``;``), the line
endings and the byte-order mark; a row that does not change is written back byte for byte.

The batch's totals are out of the pack's maximum (of the exercises graded); when the column's
Points Possible differs, the totals are scaled to it (one note says so). Grades are written
with at most two decimals, as Canvas shows them.

Errors (nothing is written): the column is not an assignment of the export, or is read-only;
the file is not a Canvas export; an ``ID`` appears twice in it; two batch students share a
Canvas id; a batch student has no Canvas id (not from a Canvas download), has no grade (the
grader failed on it), or is not in the export. Warnings (written; the cell is left as exported):
a student of the export (the test student aside) without a batch grade, usually no submission;
a batch student whose cell says ``EX`` (excused) or ``N/A`` (not assigned to them).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.batch.store import META, BatchLock, Meta, sha256
from grader.results import atomic_write

CANVAS_IDS = "canvas.json"  # written by the batch (gradebook.write_class_reports)
DEFAULT_IMPORT = "canvas-import.csv"  # in OUT, unless --out says where
# Canvas's own markers (instructure/canvas-lms: lib/gradebook_exporter.rb and
# app/models/gradebook_importer.rb)
POINTS_POSSIBLE = "Points Possible"
READ_ONLY = "(read only)"
HIDDEN_ROW = re.compile(r"^\s*(Muted|Manual Posting.*)?\s*$", re.IGNORECASE)
STUDENT_COLUMNS = {"Student", "LastName", "FirstName", "ID", "SIS User ID", "SIS Login ID",
                   "Section", "Integration ID", "Root Account"}
NOT_ASSIGNMENTS = re.compile("Current Score|Current Points|Current Grade|Final Score|"
                             "Final Points|Final Grade|Override Score|Override Grade|"
                             "Override Status")
TITLE_WITH_ID = re.compile(r"^.*\(\d+\)$")  # Canvas's Assignment#title_with_id
TEST_STUDENT = {"Student, Test", "Test Student"}
KEPT_CELLS = {"EX": "excused", "N/A": "not assigned to this student"}


class CanvasCsvError(Exception):
    """Nothing was written: ``problems`` says why, one line each."""

    def __init__(self, problems: list[str], warnings: list[str] | None = None) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        self.warnings = warnings or []


@dataclass
class CanvasImport:
    column: str
    filled: int  # cells set from the batch's grades
    notes: list[str] = field(default_factory=list)  # scaling
    warnings: list[str] = field(default_factory=list)  # cells left as exported
    path: Path | None = None  # the CSV written


@dataclass
class BatchGrade:
    student: str  # the batch's id
    score: float
    max_score: float


# -- the batch's side -------------------------------------------------------------------------
def batch_grades(out: Path, problems: list[str]) -> dict[str, BatchGrade]:
    """Canvas user id -> the batch's grade; what stands in the way goes to ``problems``."""
    try:
        ids: dict[str, Any] = json.loads((out / CANVAS_IDS).read_text())
    except FileNotFoundError:
        problems.append(f"{out} has no {CANVAS_IDS}: grade the class's Canvas 'Download "
                        f"Submissions' zip with python -m grader batch ZIP --out {out} (a rerun "
                        "skips the students already graded)")
        return {}
    except (OSError, ValueError) as exc:
        problems.append(f"{out / CANVAS_IDS} cannot be read ({exc})")
        return {}
    grades: dict[str, BatchGrade] = {}
    owners: dict[str, list[str]] = {}
    for student, user in ids.items():
        if not user:
            problems.append(f"{student}: not from a Canvas download (no Canvas user id in its "
                            "file names), so it matches no row of the gradebook")
            continue
        owners.setdefault(str(user), []).append(student)
        grade = _grade(out / student, student, str(user), problems)
        if grade is not None:
            grades[str(user)] = grade
    for user, students in owners.items():
        if len(students) > 1:
            problems.append(f"Canvas user id {user} belongs to {len(students)} batch students "
                            f"({', '.join(students)})")
            grades.pop(user, None)
    return grades


def _grade(folder: Path, student: str, user: str, problems: list[str]) -> BatchGrade | None:
    meta = Meta.load(folder)
    who = f"{student} (Canvas id {user})"
    if meta is None:
        problems.append(f"{who}: not graded (no {folder.name}/{META}): rerun the batch")
        return None
    if meta.status != "graded":
        error = " ".join(meta.error.split())[:300] or "unknown error"
        problems.append(f"{who}: the grader failed on it, so it has no grade ({error}); fix "
                        "and rerun the batch")
        return None
    try:
        data = (folder / "results.json").read_bytes()
        if sha256(data) != meta.results_sha256:
            raise ValueError("it does not match the hash in .batch.json")
        results = json.loads(data)
        return BatchGrade(student, float(results["score"]), float(results["max_score"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problems.append(f"{who}: its report {folder.name}/results.json cannot be used ({exc}): "
                        "rerun the batch")
        return None


# -- the gradebook's side ---------------------------------------------------------------------
@dataclass
class Record:
    cells: list[str]
    raw: str  # exactly as read, line ending included


@dataclass
class Gradebook:
    records: list[Record]  # the header first
    delimiter: str
    bom: bool
    id_col: int
    names: int  # name columns: 1 (Student) or 2 (LastName, FirstName)

    @property
    def header(self) -> list[str]:
        return self.records[0].cells

    def name(self, cells: list[str]) -> str:
        return ", ".join(c.strip() for c in cells[: self.names])

    def assignment_columns(self) -> list[str]:
        return [h for h in self.header[self.id_col + 1:]
                if h not in STUDENT_COLUMNS and TITLE_WITH_ID.match(h)
                and not NOT_ASSIGNMENTS.search(h)]


def _records(text: str, delimiter: str) -> list[Record]:
    """Each CSV record with its raw text (a quoted cell may span lines)."""
    consumed: list[str] = []

    def lines():
        for line in io.StringIO(text, newline=""):
            consumed.append(line)
            yield line

    records = []
    for cells in csv.reader(lines(), delimiter=delimiter):
        records.append(Record(cells, "".join(consumed)))
        consumed.clear()
    return records


def _delimiter(text: str) -> str:
    """Canvas exports ``;`` for locales with a decimal comma: like its importer, take ``;``
    when it splits the first lines consistently into more fields than ``,``."""
    head = text.splitlines()[:3]
    counts = {}
    for sep in (";", ","):
        sizes = {len(next(csv.reader([line], delimiter=sep), [])) for line in head}
        counts[sep] = sizes.pop() if len(sizes) == 1 else 0
    return ";" if counts[";"] > counts[","] else ","


def read_gradebook(path: Path) -> Gradebook:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CanvasCsvError([f"cannot read the gradebook {path}: {exc.strerror or exc}"]) from None
    bom = data.startswith(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CanvasCsvError([f"{path} is not UTF-8 text (Canvas exports UTF-8): export the "
                              "gradebook again, without re-saving it in another encoding"]
                             ) from None
    delimiter = _delimiter(text)
    try:
        records = _records(text, delimiter)
    except csv.Error as exc:
        raise CanvasCsvError([f"{path} is not a valid CSV file ({exc})"]) from None
    header = records[0].cells if records else []
    if len(header) > 3 and "Student" in header[0] and "ID" in header[1]:
        names = 1
    elif len(header) > 4 and "LastName" in header[0] and "FirstName" in header[1] and \
            "ID" in header[2]:
        names = 2
    else:
        raise CanvasCsvError([f"{path} is not a Canvas gradebook export: its first row should "
                              "start with Student, ID, ... (Grades > Export in Canvas)"])
    return Gradebook(records, delimiter, bom, names, names)


def _number(cell: str) -> float | None:
    """A cell as Canvas's importer reads it: ``10``, ``10.5`` or ``10,5``."""
    cell = cell.strip()
    if not re.fullmatch(r"-?[0-9.,]+", cell):
        return None
    *whole, last = re.split(r"[,.]", cell)
    try:
        return float(f"{''.join(whole)}.{last}" if whole else last)
    except ValueError:
        return None


def _points(x: float) -> str:
    """At most two decimals, no trailing zeros: 6, 7.5, 9.33."""
    text = f"{round(x, 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _line(cells: list[str], delimiter: str, ending: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerow(cells)
    return buf.getvalue()[:-2] + ending


def _ending(raw: str) -> str:
    for ending in ("\r\n", "\n", "\r"):
        if raw.endswith(ending):
            return ending
    return ""  # the last line, without one


# -- both --------------------------------------------------------------------------------------
def _read_batch(out: Path, problems: list[str]) -> dict[str, BatchGrade]:
    if not out.is_dir():
        problems.append(f"{out} is not a batch output folder (python -m grader batch ... --out "
                        "OUT)")
        return {}
    try:
        lock = BatchLock(out)
        lock.__enter__()  # RuntimeError: a batch is writing to OUT right now
    except OSError:  # a read-only OUT: no batch can be writing to it either
        return batch_grades(out, problems)
    try:
        return batch_grades(out, problems)
    finally:
        lock.__exit__(None, None, None)


def _points_possible(book: Gradebook, col: int, assignment: str,
                     problems: list[str]) -> tuple[bool, float | None]:
    """(whether the export has a Points Possible row, the column's points)."""
    for record in book.records[1:]:
        if record.cells and POINTS_POSSIBLE in record.cells[0]:
            cell = record.cells[col].strip() if col < len(record.cells) else ""
            points = _number(cell)
            if READ_ONLY in cell:
                problems.append(f"{assignment!r} is read-only in Canvas (Points Possible: "
                                f"{cell})")
            elif points is None or points <= 0:
                problems.append(f"the Points Possible of {assignment!r} is {cell!r}, not a "
                                "positive number of points")
            return True, points
    return False, None


def build_import(out: Path, gradebook: Path, assignment: str) -> tuple[bytes, CanvasImport]:
    """The import file's bytes and what was done; raises CanvasCsvError naming every problem
    (with the warnings found so far)."""
    out, gradebook = Path(out), Path(gradebook)
    book = read_gradebook(gradebook)
    problems: list[str] = []
    warnings: list[str] = []
    notes: list[str] = []
    columns = book.assignment_columns()
    col = book.header.index(assignment) if assignment in columns else -1
    if col < 0 or book.header.count(assignment) > 1:
        why = "appears twice in" if book.header.count(assignment) > 1 else \
            "is not an assignment column of"
        problems.append(f"{assignment!r} {why} {gradebook}; its assignment columns: "
                        + (", ".join(repr(c) for c in columns) or "none"))
    grades = _read_batch(out, problems)
    if col < 0:
        raise CanvasCsvError(problems)

    has_points, points = _points_possible(book, col, assignment, problems)
    rows = [(i, r) for i, r in enumerate(book.records[1:], start=2)
            if r.cells and POINTS_POSSIBLE not in r.cells[0]
            and not all(HIDDEN_ROW.match(c) for c in r.cells)]  # nor blank, nor Manual Posting

    def user_of(cells: list[str]) -> str:
        return cells[book.id_col].strip() if book.id_col < len(cells) else ""

    by_id: dict[str, list[int]] = {}
    for index, record in rows:
        by_id.setdefault(user_of(record.cells), []).append(index)
    for user, indexes in by_id.items():
        if user and len(indexes) > 1:
            problems.append(f"the ID {user} appears on {len(indexes)} rows of {gradebook} "
                            f"(rows {', '.join(map(str, indexes))}): keep one")
    for user, graded in grades.items():
        if user not in by_id:
            problems.append(f"{graded.student} (Canvas id {user}) is not in {gradebook}: a "
                            "dropped student? export with Show Inactive/Concluded Enrollments, "
                            "or remove their files from the download")

    maxima = sorted({g.max_score for g in grades.values()})
    top, scale = (maxima[0] if maxima else 0.0), 1.0
    if len(maxima) > 1:
        problems.append("the batch's totals are out of different maxima ("
                        + ", ".join(_points(m) for m in maxima) + "): grade the class again "
                        "with the same exercises")
    elif grades and top <= 0:
        problems.append("the batch's totals are out of 0 points: there is nothing to scale")
    elif grades and not has_points:
        notes.append(f"no Points Possible row: totals written as they are (out of "
                     f"{_points(top)})")
    elif grades and points and abs(points - top) > 1e-9:
        scale = points / top
        notes.append(f"scaled: the batch's totals are out of {_points(top)}, {assignment!r} is "
                     f"worth {_points(points)} points: each total x {_points(points)}/"
                     f"{_points(top)}")

    changed: dict[int, str] = {}
    for index, record in rows:
        cells = list(record.cells)
        user, name = user_of(cells), book.name(cells)
        current = cells[col].strip() if col < len(cells) else ""
        grade = grades.get(user)
        if grade is None:
            if name not in TEST_STUDENT:
                warnings.append(f"{name} (ID {user or 'none'}): no grade in the batch (no "
                                f"submission?): left as exported ({current or 'empty'})")
            continue
        value = _points(grade.score * scale)
        if current.upper() in KEPT_CELLS:
            warnings.append(f"{name} (ID {user}): {current} ({KEPT_CELLS[current.upper()]}) "
                            f"left as exported; the batch gives {value}")
            continue
        cells += [""] * (col + 1 - len(cells))
        cells[col] = value
        changed[index] = _line(cells, book.delimiter, _ending(record.raw))
    if problems:
        raise CanvasCsvError(problems, warnings)
    text = "".join(changed.get(i, r.raw) for i, r in enumerate(book.records, start=1))
    data = (codecs.BOM_UTF8 if book.bom else b"") + text.encode()
    return data, CanvasImport(assignment, len(changed), notes, warnings)


def canvas_csv(out: str | Path, gradebook: str | Path, assignment: str,
               dest: str | Path | None = None) -> CanvasImport:
    """Write the import file: atomically, and only when nothing stands in the way."""
    out, gradebook = Path(out), Path(gradebook)
    dest = Path(dest) if dest else out / DEFAULT_IMPORT
    if dest.exists() and gradebook.exists() and dest.samefile(gradebook):
        raise CanvasCsvError([f"--out {dest} is the exported gradebook: write the import "
                              "elsewhere and keep the export"])
    data, done = build_import(out, gradebook, assignment)
    done.path = atomic_write(dest, data)
    return done
