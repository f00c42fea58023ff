"""The report in PrairieLearn's external-grader schema (GradeReport.to_prairielearn_dict): the
same report as Gradescope's, another writer. Checked against PrairieLearn's rules: a score in
[0, 1], both points fields on every test, under 1 MB, gradable false when nothing could be
opened."""

from __future__ import annotations

import json

from grader.results import GradeReport, PropertyResult


def report(output: str = "Tried: x\nGot: 1\nExpected: 2") -> GradeReport:
    return GradeReport([PropertyResult("conv2d", "conv2d: values", 6.0, 6.0, "passed"),
                        PropertyResult("conv2d", "conv2d: gradients", 6.0, 0.0, output),
                        PropertyResult("init", "init: kaiming", 4.0, 1.0, output)],
                       output="Day 2: 7 / 16 points.")


def valid(data: dict, max_bytes: int = 1_000_000) -> None:
    """PrairieLearn's own rules for results.json."""
    assert len(json.dumps(data).encode()) <= max_bytes
    assert 0.0 <= data["score"] <= 1.0
    for test in data.get("tests", []):
        assert {"name", "points", "max_points"} <= set(test)
        assert 0 <= test["points"] <= test["max_points"]


def test_points_over_max_points_and_one_test_per_property():
    data = report().to_prairielearn_dict()
    valid(data)
    assert data["gradable"] is True and data["score"] == round(7 / 16, 6)
    assert [t["name"] for t in data["tests"]] == ["conv2d: values", "conv2d: gradients",
                                                  "init: kaiming"]
    gradients = data["tests"][1]
    assert (gradients["points"], gradients["max_points"], gradients["message"]) == \
        (0.0, 6.0, "failed")
    assert gradients["output"].startswith("Tried: x") and gradients["description"] == "conv2d"
    assert data["message"] == "Day 2: 7 / 16 points."


def test_feedback_is_trimmed_under_the_limit_with_a_note():
    big = report("Tried: x\nGot: " + "9" * 400_000)
    data = big.to_prairielearn_dict(max_bytes=100_000)
    valid(data, 100_000)
    assert "trimmed" in data["message"] and "more characters cut" in data["tests"][1]["output"]
    assert data["tests"][1]["output"].startswith("Tried: x")
    assert big.to_prairielearn_dict()["tests"][1]["output"].endswith("9")  # 1 MB: untouched


def test_too_many_tests_keep_names_and_points_only():
    many = GradeReport([PropertyResult("conv2d", f"conv2d: case {i}", 1.0, 0.0, "x" * 500)
                        for i in range(1000)])
    data = many.to_prairielearn_dict(max_bytes=200_000)
    valid(data, 200_000)
    assert all(t["output"] == "" for t in data["tests"]) and len(data["tests"]) == 1000


def test_a_submission_that_could_not_be_opened_is_not_gradable():
    broken = report()
    broken.extra_data["submission_problem"] = "not a zip archive: bad magic number"
    data = broken.to_prairielearn_dict()
    assert data["gradable"] is False and data["score"] == 0.0
    assert data["format_errors"] == ["not a zip archive: bad magic number"]


def test_student_text_is_shown_not_obeyed():
    data = report("Got: \u202eevil\x1b[2J").to_prairielearn_dict()
    output = data["tests"][1]["output"]
    assert "\u202e" not in output and "\x1b" not in output
