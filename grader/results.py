"""The grading report: one ``PropertyResult`` per scored property, in the Gradescope schema.

``GradeReport.to_gradescope_dict()`` is exactly docs/contract.md's ``results.json``;
``to_prairielearn_dict()`` is the same report in PrairieLearn's external-grader schema (one
writer per platform, one report). The JSON is
written atomically (temp file + rename) so a crash never leaves half a report. ``extra_data``
(Gradescope stores it with the result) carries what decided the cases: ``{"versions": ...}``
(grader/versions.py), and, when there are any, the static check's findings for a person to
read (``"static_findings"``, grader/static_check.py). Every string a student could have put in
it (exception messages, file names) is written through ``grader.text.visible``: control
characters and bidi overrides become visible escapes, newlines stay.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.text import visible

PRAIRIELEARN_MAX_BYTES = 1_000_000  # a larger results.json is discarded by PrairieLearn
MIN_FEEDBACK = 80  # characters per test that trimming keeps, at the least


@dataclass
class PropertyResult:
    """One independently scored property of one exercise."""

    exercise: str
    name: str
    max_score: float
    score: float = 0.0
    output: str = ""
    visibility: str = "visible"

    @property
    def passed(self) -> bool:
        return self.score >= self.max_score

    def to_gradescope_dict(self) -> dict[str, Any]:
        return {
            "name": visible(self.name),
            "score": self.score,
            "max_score": self.max_score,
            "status": "passed" if self.passed else "failed",
            "output": visible(self.output, newlines=True),
            "visibility": self.visibility,
            "tags": [self.exercise],
        }

    def to_prairielearn_dict(self, limit: int = 0) -> dict[str, Any]:
        """One of PrairieLearn's ``tests[]``: both points fields (its per-test points show only
        when every test has them); ``limit`` > 0 trims the feedback to that many characters."""
        return {"name": visible(self.name), "description": self.exercise,
                "points": self.score, "max_points": self.max_score,
                "message": "passed" if self.passed else "failed",
                "output": trimmed(visible(self.output, newlines=True), limit)}

    @classmethod
    def from_gradescope_dict(cls, data: dict[str, Any]) -> PropertyResult:
        return cls(exercise=data["tags"][0], name=data["name"], max_score=data["max_score"],
                   score=data["score"], output=data.get("output", ""),
                   visibility=data.get("visibility", "visible"))


@dataclass
class ExerciseScore:
    exercise: str
    score: float
    max_score: float
    passed: int
    total: int


@dataclass
class GradeReport:
    tests: list[PropertyResult] = field(default_factory=list)
    execution_time: float = 0.0
    output: str = ""
    extra_data: dict[str, Any] = field(default_factory=dict)  # {"versions": {...}}

    @property
    def score(self) -> float:
        return round(sum(t.score for t in self.tests), 4)

    @property
    def max_score(self) -> float:
        return round(sum(t.max_score for t in self.tests), 4)

    def by_exercise(self, order: tuple[str, ...] = ()) -> list[ExerciseScore]:
        ids = list(order) + sorted({t.exercise for t in self.tests} - set(order))
        rows = []
        for ex in ids:
            tests = [t for t in self.tests if t.exercise == ex]
            if tests:
                rows.append(ExerciseScore(ex, round(sum(t.score for t in tests), 4),
                                          round(sum(t.max_score for t in tests), 4),
                                          sum(t.passed for t in tests), len(tests)))
        return rows

    def to_gradescope_dict(self) -> dict[str, Any]:
        data = {
            "score": self.score,
            "max_score": self.max_score,
            "output": visible(self.output, newlines=True),
            "execution_time": round(self.execution_time, 2),
            "tests": [t.to_gradescope_dict() for t in self.tests],
        }
        if self.extra_data:
            data["extra_data"] = visible_data(self.extra_data)
        return data

    def to_prairielearn_dict(self, max_bytes: int = PRAIRIELEARN_MAX_BYTES) -> dict[str, Any]:
        """PrairieLearn's ``results.json``: ``score`` in [0, 1] (points over max points), a
        ``tests[]`` entry per property, under ``max_bytes`` (PrairieLearn discards a larger
        file): the feedback is trimmed, longest first, with a note saying so. A submission
        that could not be opened is ``gradable: false`` with the reason in ``format_errors``
        (no points, no attempt used)."""
        problem = self.extra_data.get("submission_problem")
        if problem:
            return {"gradable": False, "score": 0.0,
                    "format_errors": [visible(str(problem))[:2000]],
                    "message": "the submission could not be opened"}
        limit = 0  # characters of feedback per test (0: all)
        data = self._prairielearn(limit)
        while _size(data) > max_bytes:
            if limit == MIN_FEEDBACK:  # still too much: names and points only
                for test in data["tests"]:
                    test["output"] = ""
                break
            longest = max([len(t.output) for t in self.tests] + [MIN_FEEDBACK])
            limit = max(MIN_FEEDBACK, (limit or longest) // 2)
            data = self._prairielearn(limit)
        return data

    def _prairielearn(self, limit: int) -> dict[str, Any]:
        data: dict[str, Any] = {
            "gradable": True,
            "score": round(self.score / self.max_score, 6) if self.max_score else 0.0,
            "message": visible(self.output, newlines=True)[:20_000],
            "tests": [t.to_prairielearn_dict(limit) for t in self.tests]}
        if limit:
            data["message"] += (f"\n(each test's feedback trimmed to {limit} characters to "
                                "stay under PrairieLearn's 1 MB)")
        return data

    @classmethod
    def from_gradescope_dict(cls, data: dict[str, Any]) -> GradeReport:
        return cls([PropertyResult.from_gradescope_dict(t) for t in data["tests"]],
                   data.get("execution_time", 0.0), data.get("output", ""),
                   dict(data.get("extra_data") or {}))

    def write_json(self, path: str | Path) -> Path:
        return atomic_write(Path(path), json.dumps(self.to_gradescope_dict(), indent=2) + "\n")


def trimmed(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (0: whole), saying how much was cut."""
    if not limit or len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters cut)"


def _size(data: dict[str, Any]) -> int:
    return len(json.dumps(data).encode())


def visible_data(value: Any) -> Any:
    """``value`` (plain JSON data) with every string in it made visible (grader/text.py): one
    line each, as extra_data's entries are (a file name's newline cannot start another)."""
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, dict):
        return {visible(k) if isinstance(k, str) else k: visible_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [visible_data(v) for v in value]
    return value


def format_table(rows: list[ExerciseScore]) -> str:
    """A fixed-width per-exercise table for the terminal."""
    width = max([len(r.exercise) for r in rows] + [8])
    lines = [f"{'exercise':<{width}}  {'points':>13}  properties"]
    for r in rows:
        mark = "ok" if r.score >= r.max_score else ("--" if r.score == 0 else "~")
        got, top = format_points(r.score), format_points(r.max_score)
        lines.append(f"{r.exercise:<{width}}  {got:>6} / {top:<4}  {r.passed}/{r.total} {mark}")
    total = format_points(sum(r.score for r in rows))
    most = format_points(sum(r.max_score for r in rows))
    lines.append(f"{'total':<{width}}  {total:>6} / {most:<4}")
    return "\n".join(lines)


def format_points(x: float) -> str:
    """Points as people write them: ``6``, ``7.2``, ``7.33`` (two decimals at most)."""
    return f"{round(x, 2):g}"


def atomic_write(path: Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` so that no reader, and no crash, ever sees part of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the grades from the other staff
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())  # the rename must not land before the data
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
