"""Student notebooks for the notebook-course tests, made from the committed source notebook.

    solved(nb)                      every solution cell holds the reference code, markers removed
    solved(nb, edits=(Edit(...),))  ... with a corpus edit applied to its module's cells
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from grader.notebook import module_of
from tests.corpus import Edit

REPO = Path(__file__).resolve().parents[1]
SOURCE_NOTEBOOK = REPO / "notebooks" / "day02.ipynb"


def load(path: Path = SOURCE_NOTEBOOK) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def save(nb: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return path


def text(cell: dict[str, Any]) -> str:
    source = cell["source"]
    return "".join(source) if isinstance(source, list) else source


def nbgrader_meta(cell: dict[str, Any]) -> dict[str, Any]:
    return cell.get("metadata", {}).get("nbgrader", {})


def reference_code(cell: dict[str, Any]) -> str:
    """The reference code of a source solution cell, as a student who solved it would write."""
    return "\n".join(line for line in text(cell).splitlines()
                     if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


def solved(nb: dict[str, Any], edits: tuple[Edit, ...] = (),
           source: dict[str, Any] | None = None) -> dict[str, Any]:
    """``nb`` (source or release) with the reference code in its solution cells, edited."""
    reference = {c["id"]: c for c in (source or load())["cells"]}
    out = copy.deepcopy(nb)
    applied = set()
    for cell in out["cells"]:
        meta = nbgrader_meta(cell)
        if not meta.get("solution"):
            continue
        code = reference_code(reference[meta["grade_id"]])
        for edit in edits:
            if edit.module == module_of(meta["grade_id"]) and edit.old in code:
                assert code.count(edit.old) == 1, edit.old
                code = code.replace(edit.old, edit.new)
                applied.add(edit)
        cell["source"] = code
    missing = [e.old for e in edits if e not in applied]
    assert not missing, f"edits matched no solution cell: {missing}"
    return out


def cell(nb: dict[str, Any], grade_id: str) -> dict[str, Any]:
    return next(c for c in nb["cells"] if nbgrader_meta(c).get("grade_id") == grade_id)
