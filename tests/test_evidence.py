"""A reply is evidence, never a verdict: replies built without running the exercises, or
with every number wrong, score nothing (tests/fabricate.py builds them).

The handles stand in for a hostile worker that replaced the probes' code: no student code runs
at all, the grader gets only what the handle chose to send, and every property must still prove
its verdict itself.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from grader.config import GradeConfig, HandleMode
from grader.grade import run_graders
from grader.packs import load_pack
from tests.corpus import SOLUTIONS, reference_cache
from tests.fabricate import WRONG, FabricatingHandle, FuzzingHandle, mutate

pytestmark = pytest.mark.slow  # every exercise graded a few dozen times in process

PACK = load_pack("day02")


def grade_with(handle, tmp_path: Path, only: tuple[str, ...] = ()):
    """The pack's graders with ``handle`` as the student (the source on disk: the solutions,
    so a static check of the source has nothing to object to)."""
    source = tmp_path / "source"
    if not source.exists():
        shutil.copytree(SOLUTIONS, source, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    config = GradeConfig(pack=PACK.name, handle=HandleMode.IN_PROCESS, only=only,
                         reference_cache=str(reference_cache()))  # the reference: once
    return run_graders(PACK, source, out, config, quiet=True, early_handle=handle)


def test_fabricated_replies_score_nothing(tmp_path):
    """The most plausible replies built without the work: 0 on every property."""
    handle = FabricatingHandle()
    report = grade_with(handle, tmp_path)
    assert handle.calls > 0
    assert len(report.tests) >= 80  # every property of every exercise ran
    passed = [f"{t.name}" for t in report.tests if t.score > 0]
    assert passed == [], "properties that score a claim: " + "; ".join(passed)


class MixedHandle(FuzzingHandle):
    """Every number wrong, each leaf in one of ``kinds`` chosen by a seeded generator."""

    def __init__(self, kinds: list[str], seed: int) -> None:
        super().__init__(kinds[0])
        self.kinds, self.rng = kinds, random.Random(seed)

    def answer(self, probe, case, ideal):
        return _mix(ideal, self.kinds, self.rng)


def _mix(value, kinds: list[str], rng: random.Random):
    if type(value) in (list, tuple) and not all(type(v) in (int, float) for v in value):
        return type(value)(_mix(v, kinds, rng) for v in value)
    if type(value) is dict:
        return {k: _mix(v, kinds, rng) for k, v in value.items()}
    return mutate(value, rng.choice(kinds))


EXERCISES = [ex.id for ex in PACK.exercises]


def mixtures(count: int = 3, seed: int = 2026) -> list[tuple[list[str], int]]:
    """``count`` mixtures of wrong kinds (and the seed that spreads them over the leaves), from
    a fixed generator: the same cases on every run. (The graders run hypothesis themselves, and
    hypothesis refuses to nest @given, so this draw is a plain seeded one.)"""
    rng = random.Random(seed)
    return [(rng.sample(WRONG, rng.randint(2, 3)), rng.randrange(2**16)) for _ in range(count)]


CASES = [([kind], 0) for kind in WRONG] + mixtures()


@pytest.mark.parametrize("exercise", EXERCISES)
@pytest.mark.parametrize("kinds, seed", CASES, ids=lambda v: "+".join(v) if isinstance(v, list)
                         else str(v))
def test_wrong_numbers_never_pass(exercise, kinds, seed, tmp_path):
    """The reference's replies with every number wrong (NaN, inf, huge, a wrong shape, off by
    one, noise beyond the tolerances; one kind for all, or a mixture spread over the numbers by
    a seeded generator): 0 on every property.

    Except where a property's tolerance is loose on purpose: the smoke test's trained weights
    only have to fit the batch, which weights with 1% noise still do (E1), so there a pass on
    noise is the property working, not a claim scoring.
    """
    if exercise == "smoke_test" and "noise" in kinds:
        kinds = [k for k in kinds if k != "noise"] or ["nan"]
    report = grade_with(MixedHandle(kinds, seed), tmp_path, (exercise,))
    passed = [t.name for t in report.tests if t.score > 0]
    assert passed == [], f"{kinds}: " + "; ".join(passed)


@pytest.mark.parametrize("exercise", EXERCISES)
def test_negative_zero_is_zero(exercise, tmp_path):
    """-0.0 where the reference has 0.0 is the same number: full marks, not a failure."""
    report = grade_with(FuzzingHandle("negative_zero"), tmp_path, (exercise,))
    lost = [f"{t.name}: {t.output}" for t in report.tests if not t.passed]
    assert lost == []
