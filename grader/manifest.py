"""What a pack declares: its exercises, their points and the modules each one depends on.

The machinery (plugin, handle, sandbox, release builder, reports) reads only these types, so a
new day of the course is a new pack beside ``packs/day02``, not an edit of the core.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Exercise:
    """One graded exercise: an id from docs/contract.md, its points and what it depends on."""

    id: str
    title: str
    points: int
    modules: tuple[str, ...]  # submission modules whose failure can cost this exercise points
    # qualified names in the solutions ("conv.conv2d", "blocks.BasicBlock") whose solution
    # regions belong to this exercise; the stub generator names the exercise in each stub.
    owns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pack:
    """A day of the course: the modules students write and the exercises graded on them."""

    name: str
    title: str
    modules: tuple[str, ...]  # module names inside the submission package, in teaching order
    exercises: tuple[Exercise, ...]
    root: Path  # the pack's folder: graders/, probes/, strategies, README.md.in
    # the reference and the student package: importable top-level packages side by side
    solutions_package: str = "solutions"
    submission_package: str = "exercises"
    # the module that draws the pack's figures (``draw(handle, out, data)``), or "" for none
    figures: str = ""
    # the public self-check tests (shipped as <submission_package>/tests), or None for none
    public_tests: Path | None = None
    # the student part of the pack's contract (a markdown file whose text between
    # "## What a student hands in" and "## What instructors run" ships as docs/contract.md)
    contract: Path | None = None

    @property
    def graders_dir(self) -> Path:
        return self.root / "graders"

    @property
    def readme_template(self) -> Path:
        """The student README of the release ($title, $exercise_rows, $max_score)."""
        return self.root / "README.md.in"

    @property
    def solutions_dir(self) -> Path:
        """Where ``solutions_package`` lives (found, not imported: nothing of it runs)."""
        spec = importlib.util.find_spec(self.solutions_package)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"pack {self.name}: no package {self.solutions_package!r} "
                                    "on the Python path")
        return Path(next(iter(spec.submodule_search_locations))).resolve()

    @property
    def submission_dir(self) -> Path:
        """Where ``python -m grader stubs`` writes the stubs: beside the solutions."""
        return self.solutions_dir.parent / self.submission_package

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(e.id for e in self.exercises)

    @property
    def max_score(self) -> int:
        return sum(e.points for e in self.exercises)

    def exercise(self, exercise_id: str) -> Exercise:
        for ex in self.exercises:
            if ex.id == exercise_id:
                return ex
        raise KeyError(f"unknown exercise id {exercise_id!r}; known: {', '.join(self.ids)}")

    def exercises_using(self, module: str) -> tuple[Exercise, ...]:
        """The exercises whose score depends on ``module`` (docs/contract.md's table)."""
        return tuple(e for e in self.exercises if module in e.modules)

    def owner(self, module: str, qualname: str) -> Exercise:
        """The exercise a solution region in ``module``'s ``qualname`` belongs to.

        ``qualname`` may be a method ("BasicBlock.forward"); its class owns it then.
        """
        parts = qualname.split(".")
        for i in range(len(parts), 0, -1):
            key = f"{module}." + ".".join(parts[:i])
            for ex in self.exercises:
                if key in ex.owns:
                    return ex
        for ex in self.exercises:  # a module with a single exercise owns all its regions
            if ex.modules == (module,) and not ex.owns:
                return ex
        raise KeyError(f"no exercise owns {module}.{qualname}; add it to the pack manifest")
