"""Grading the graders: every bug loses points exactly where it should, every correct
alternative keeps full marks. Each variant is graded on the exercises it touches plus one
control exercise that does not depend on the edited modules (``grade --only``)."""

from __future__ import annotations

import os

import pytest

from grader.grade import grade
from grader.packs import load_pack
from tests.corpus import Variant, all_variants, build_submission, reference_cache

pytestmark = pytest.mark.slow  # about 130 submissions graded
# The variants are our own code: grading them in process tests the graders at a third of the
# sandbox's cost (the sandbox has its own tests: test_attacks, test_bad_input).
HANDLE = os.environ.get("KIT_CORPUS_HANDLE", "in-process")
# a training run (~10 s): graded only where a variant names it (tests/corpus/smoke.py), not as a
# bystander of every resnet/blocks/train variant
EXPENSIVE = {"smoke_test"}


def expectations(variant: Variant) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(exercises that must lose points, exercises that must keep full marks), in the
    variant's own pack: a bug in another day is graded by that day's graders."""
    pack = load_pack(variant.pack)
    touched = {ex.id for m in variant.modules for ex in pack.exercises_using(m)}
    keeps = variant.keeps if variant.keeps is not None else tuple(
        sorted(touched - set(variant.hurts)))
    control = [ex.id for ex in pack.exercises  # none in a pack of one module
               if not set(ex.modules) & set(variant.modules) and ex.id not in EXPENSIVE][:1]
    if variant.keeps is None:
        keeps = tuple(k for k in keeps if k not in EXPENSIVE)
    unknown = [ex for ex in (*variant.hurts, *keeps) if ex not in pack.ids]
    assert not unknown, f"{variant.name}: no exercise {unknown} in pack {pack.name}"
    return variant.hurts, (*keeps, *control)


@pytest.mark.parametrize("variant", all_variants(), ids=lambda v: v.name)
def test_variant_scores_where_it_should(variant: Variant, tmp_path):
    hurts, keeps = expectations(variant)
    submission = build_submission(variant, tmp_path / "submission")
    # our own variants: in process they share one reference cache (the sandbox handle keeps
    # the machine's, as a grade of a student does)
    cache = reference_cache() if HANDLE == "in-process" else "auto"
    report = grade(submission, tmp_path / "report", only=hurts + keeps, quiet=True,
                   handle=HANDLE, pack_name=variant.pack, reference_cache=cache)
    rows = {row.exercise: row for row in report.by_exercise()}
    for ex in hurts:
        assert rows[ex].score < rows[ex].max_score, f"{variant.why}: {ex} kept full marks"
    for ex in keeps:
        lost = [t for t in report.tests if t.exercise == ex and not t.passed]
        assert not lost, f"{variant.name} lost points on {ex}: " + "; ".join(
            f"{t.name}: {t.output}" for t in lost)
