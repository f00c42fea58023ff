"""Fixture submissions for grading the graders: realistic bugs, correct alternatives, stubs.

A ``Variant`` is the reference solutions with textual edits: each ``Edit`` replaces one exact
snippet (which must occur exactly once) in one module. ``hurts`` lists the exercises that must
lose points; every other exercise that depends on an edited module must keep full marks, and
so must a ``control`` exercise that does not depend on it at all. A correct alternative has
``hurts=()``. Variants live in ``corpus/<topic>.py`` files as a ``VARIANTS`` list; a variant
of another day's pack names it (``pack="day03"``) and edits that pack's solutions.

    build_submission(variant, tmp_path) -> folder to grade
"""

from __future__ import annotations

import atexit
import functools
import importlib
import pkgutil
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from grader.packs import DEFAULT_PACK, load_pack

REPO = Path(__file__).resolve().parents[2]
SOLUTIONS = REPO / "solutions"


@functools.cache
def reference_cache() -> Path:
    """One reference cache for this test process's in-process grades of our own code (the
    corpus' variants, fabricated handles): the reference's results are the same for all of
    them, computed once instead of once per grade (a grade computes about 590). Grades of
    student code never share it: ``reference_cache`` keeps the machine's behind the sandbox."""
    folder = Path(tempfile.mkdtemp(prefix="kit-test-reference-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def copy_solutions(dest: Path) -> Path:
    """A submission folder holding the reference modules unchanged."""
    dest.mkdir(parents=True)
    for src in SOLUTIONS.glob("*.py"):
        (dest / src.name).write_bytes(src.read_bytes())
    return dest


@dataclass(frozen=True)
class Edit:
    module: str  # "blocks"
    old: str  # exact snippet of solutions/<module>.py, occurring once
    new: str  # its replacement; may be a whole new function body


@dataclass(frozen=True)
class Variant:
    name: str
    edits: tuple[Edit, ...]
    hurts: tuple[str, ...]  # exercise ids that must lose points; () for a correct alternative
    why: str = ""  # the bug in one line (or why the alternative is correct)
    # exercises that must keep full marks although they depend on an edited module
    # (default: every exercise of the edited modules not in ``hurts``)
    keeps: tuple[str, ...] | None = None
    pack: str = DEFAULT_PACK  # whose solutions are edited and whose graders grade them

    @property
    def modules(self) -> tuple[str, ...]:
        return tuple(sorted({e.module for e in self.edits}))


def build_submission(variant: Variant, dest: Path) -> Path:
    """Copy the pack's solutions to ``dest`` and apply the variant's edits; return ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for src in load_pack(variant.pack).solutions_dir.glob("*.py"):
        shutil.copy(src, dest / src.name)
    for edit in variant.edits:
        path = dest / f"{edit.module}.py"
        text = path.read_text()
        count = text.count(edit.old)
        if count != 1:
            raise AssertionError(f"{variant.name}: snippet occurs {count} times in "
                                 f"{edit.module}.py: {edit.old[:60]!r}")
        path.write_text(text.replace(edit.old, edit.new))
    return dest


def all_variants() -> list[Variant]:
    """Every VARIANTS list of every module in this package."""
    variants: list[Variant] = []
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        module = importlib.import_module(f"{__name__}.{info.name}")
        variants += getattr(module, "VARIANTS", [])
    names = [v.name for v in variants]
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:
        raise AssertionError(f"duplicate variant names: {sorted(duplicated)}")
    return variants
