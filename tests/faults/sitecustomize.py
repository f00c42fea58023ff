"""A grader bug on demand, for the tests of what a batch does when the grader fails.

``tests.faults.breaking_grader(folder, "dave")`` copies this file into ``folder`` beside a list
of students and returns a ``PYTHONPATH`` that puts it first: every Python process started with
it (the batch's grading processes, its warm servers and their forks) then raises
RuntimeError("simulated grader failure for dave") when ``grader.grade.grade`` is called for
one of them. The kit's own code holds no such hook; sandboxed workers never see this file
(they start with ``python -I`` and a scrubbed environment).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path

LIST = Path(__file__).with_name("broken_students.txt")
BROKEN = set(LIST.read_text().split()) if LIST.is_file() else set()


def _student() -> str:
    """The ``--student`` of the grade_main that is calling grade() (its parsed ``args``)."""
    frame = sys._getframe(2)
    while frame is not None:
        args = frame.f_locals.get("args")
        if frame.f_code.co_name == "grade_main" and hasattr(args, "student"):
            return args.student
        frame = frame.f_back
    return ""


def _patch(module) -> None:
    real = module.grade

    def grade(*args, **kwargs):
        student = _student()
        if student in BROKEN:
            raise RuntimeError(f"simulated grader failure for {student} (tests/faults)")
        return real(*args, **kwargs)

    module.grade = grade


class _Finder(importlib.abc.MetaPathFinder):
    """Patches ``grader.grade`` right after it is first imported."""

    def find_spec(self, name, path=None, target=None):
        if name != "grader.grade":
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        loader = spec.loader
        run = loader.exec_module

        def exec_module(module):
            run(module)
            _patch(module)

        loader.exec_module = exec_module
        return spec


if BROKEN:
    sys.meta_path.insert(0, _Finder())
