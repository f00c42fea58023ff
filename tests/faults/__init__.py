"""Faults the kit's tests inject from outside the kit (sitecustomize.py says how)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent


def breaking_grader(folder: Path, *students: str) -> dict[str, str]:
    """The environment under which the grader fails on ``students`` (a simulated grader bug):
    pass it to the subprocess that runs ``python -m grader batch`` or ``nbgrader-autograde``."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "sitecustomize.py", folder / "sitecustomize.py")
    (folder / "broken_students.txt").write_text("\n".join(students) + "\n")
    rest = [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []
    return {"PYTHONPATH": os.pathsep.join([str(folder), *rest])}
