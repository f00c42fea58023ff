"""The kit's pytest plugin, tested with pytester: markers, points, score collection, the
terminal table, results.json, --kit-only, profiles and the student/reference fixtures."""

from __future__ import annotations

import json

import pytest

from grader.versions import case_versions

pytest_plugins = ["pytester"]

TESTS = '''
import pytest
from hypothesis import given, strategies as st

@pytest.mark.conv2d
@pytest.mark.points(3)
def test_passes():
    """values match"""

@pytest.mark.conv2d
@pytest.mark.points(2)
def test_fails():
    """gradients match"""
    assert False, "Tried: x\\nGot: 1\\nExpected: 2"

@pytest.mark.basic_block
@pytest.mark.points(4)
def test_not_implemented():
    raise NotImplementedError("exercise basic_block: write BasicBlock.forward")

@pytest.mark.smoke_test
@pytest.mark.points(8)
def test_skipped():
    pytest.skip("not graded yet")

@pytest.mark.filters
@pytest.mark.points(1)
@given(st.integers(0, 10))
def test_hypothesis(n):
    """small numbers"""
    assert n < 5

def test_unmarked():
    pass
'''


@pytest.fixture
def run(pytester: pytest.Pytester):
    pytester.makepyfile(test_kit=TESTS)

    def go(*args: str):
        return pytester.runpytest("--strict-markers", *args)

    return go


def test_scores_table_and_report(run, pytester):
    result = run("--kit-report", "out/results.json", "--kit-profile", "grading")
    # the self-check scales each exercise's public properties to its points in the pack
    result.stdout.fnmatch_lines(["*exercise scores*", "conv2d*7.2 / 12*1/2*",
                                 "basic_block*0 / 14*", "total*"])
    result.stdout.fnmatch_lines(["*Hidden checks*"])  # the self-check note
    report = json.loads((pytester.path / "out" / "results.json").read_text())
    assert report["max_score"] == 12 + 14 + 8 + 4 and report["score"] == 7.2
    by_name = {t["name"]: t for t in report["tests"]}
    assert set(by_name) == {"conv2d: values match", "conv2d: gradients match",
                            "basic_block: not_implemented", "smoke_test: skipped",
                            "filters: small numbers"}
    failed = by_name["conv2d: gradients match"]
    assert failed["status"] == "failed" and failed["tags"] == ["conv2d"]
    assert failed["output"].startswith("Tried: x") and "Expected: 2" in failed["output"]
    assert by_name["basic_block: not_implemented"]["output"].startswith("not implemented yet")
    assert by_name["smoke_test: skipped"]["output"] == "not graded yet"
    assert "Smallest failing case found" in by_name["filters: small numbers"]["output"]
    for t in report["tests"]:
        assert set(t) == {"name", "score", "max_score", "status", "output", "visibility", "tags"}


def test_the_score_table_is_the_last_thing_a_student_reads(run):
    """pytest prints its short summary ("FAILED ...", one line per failing test) after the
    plugins' summaries; the table comes after it, above only pytest's final count."""
    lines = run("-q").stdout.lines
    table = next(i for i, line in enumerate(lines) if "exercise scores" in line)
    failed = [i for i, line in enumerate(lines) if line.startswith("FAILED ")]
    assert failed and max(failed) < table
    after = [line for line in lines[table:] if line.strip()]
    assert " failed, " in after[-1] and "Hidden checks" in after[-2]


def test_report_names_the_versions_that_drew_the_cases(run, pytester):
    """Another machine gives the same cases only where these agree (docs/contract.md)."""
    for profile in ("grading", "selfcheck"):
        run("--kit-report", f"{profile}/results.json", "--kit-profile", profile)
        report = json.loads((pytester.path / profile / "results.json").read_text())
        assert report["extra_data"] == {"versions": case_versions(profile)}


def test_only_selects_exercises(run):
    result = run("--kit-only", "conv2d")
    result.assert_outcomes(passed=1, failed=1, deselected=4)


def test_marker_per_exercise_selects(run):
    result = run("-m", "basic_block")
    result.assert_outcomes(failed=1, deselected=5)


def test_unknown_marker_is_an_error(pytester):
    pytester.makepyfile(test_typo='''
import pytest
@pytest.mark.basic_blok
def test_x():
    pass
''')
    result = pytester.runpytest("--strict-markers")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*basic_blok*not found*"])


def test_unknown_only_id_is_rejected(run):
    result = run("--kit-only", "no_such_id")
    assert result.ret != 0


def test_an_unknown_pack_is_one_usage_line(run):
    result = run("--kit-pack", "day99")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no course pack named 'day99'*KIT_PACK_PATH*"])


def test_the_ini_names_the_pack_and_the_option_overrides_it(run, pytester):
    pytester.makeini("[pytest]\nkit_pack = day99\n")
    result = run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # the ini's pack was read
    result.stderr.fnmatch_lines(["*'day99'*"])
    assert run("--kit-pack", "day02").ret == pytest.ExitCode.TESTS_FAILED  # scored, some fail


def test_markers_are_listed(pytester):
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["*@pytest.mark.basic_block*", "*@pytest.mark.points(n)*"])


def test_student_and_reference_fixtures(pytester, tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "conv.py").write_text("def conv_output_size(*a, **k):\n    return 42\n")
    pytester.makepyfile(test_handles='''
import pytest
from grader.packs.day02.probes import conv as P

@pytest.mark.conv_output_size
@pytest.mark.points(2)
def test_compare(student, reference):
    """answers like the reference"""
    case = {"args": (5, 3, 1, 0, 1)}
    assert reference.run(P.output_size, case) == 3
    assert student.run(P.output_size, case) == 42
''')
    result = pytester.runpytest("--submission", str(sub),
                                "--kit-handle", "in-process")
    result.assert_outcomes(passed=1)


def test_grading_profile_is_derandomized(pytester):
    pytester.makepyfile(test_profile='''
from hypothesis import settings
def test_profile():
    assert settings.default.derandomize and settings.default.database is None
''')
    pytester.runpytest("--kit-profile", "grading").assert_outcomes(
        passed=1)
    pytester.runpytest("--kit-profile", "selfcheck").assert_outcomes(
        failed=1)


DRAWS = '''
import json, os
from hypothesis import given, settings, strategies as st
if os.environ.get("PLANT"):
    import planted  # noqa: F401
seen = []
@settings(max_examples=300)
@given(st.integers(0, 1000))
def test_draw(n):
    seen.append(n)
    with open("draws.json", "w") as f:
        json.dump(seen, f)
'''


@pytest.mark.slow  # three pytest processes
def test_grading_draws_no_constants_from_the_code_it_has_loaded(pytester, monkeypatch):
    """Hypothesis draws some values from literals in the "local" modules a process has loaded:
    a grade's cases would depend on the install (editable or wheel), on a reference cache miss
    and, in process, on the student's own source. Grading turns that off and writes no
    .hypothesis/constants/; without the kit's profile hypothesis draws the planted literals."""
    pytester.makepyfile(planted="A, B, C = 777, 313, 901\n", test_draws=DRAWS)

    def draws(*args: str, plant: bool) -> list[int]:
        monkeypatch.delenv("PLANT", raising=False)
        if plant:
            monkeypatch.setenv("PLANT", "1")
        pytester.runpytest_subprocess("-p", "no:cacheprovider", *args).assert_outcomes(passed=1)
        return json.loads((pytester.path / "draws.json").read_text())

    graded = draws("--kit-profile", "grading", plant=True)
    assert graded == draws("--kit-profile", "grading", plant=False)
    assert not {777, 313, 901} & set(graded)
    assert not (pytester.path / ".hypothesis").exists()
    # the control: hypothesis's own pool, derandomized the same way, draws them
    pool = draws("-p", "no:kit", "--hypothesis-profile", "ci", plant=True)
    assert {777, 313, 901} & set(pool)


def test_failing_case_feedback_is_deterministic(pytester, tmp_path):
    """The smallest failing case names drawn values only: no fixture reprs, no addresses."""
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "conv.py").write_text("def conv_output_size(*a, **k):\n    return 42\n")
    pytester.makepyfile(test_drawn='''
import pytest
from hypothesis import given, strategies as st
from grader.packs.day02.probes import conv as P

@pytest.mark.conv_output_size
@pytest.mark.points(2)
@given(size=st.integers(3, 9))
def test_compare(student, reference, size):
    """answers like the reference"""
    case = {"args": (size, 3, 1, 0, 1)}
    assert student.run(P.output_size, case) == reference.run(P.output_size, case)
''')
    outputs = []
    for i in range(2):
        pytester.runpytest("--submission", str(sub), "--kit-handle", "in-process",
                           "--kit-profile", "grading", "--kit-report", f"r{i}.json")
        row = json.loads((pytester.path / f"r{i}.json").read_text())["tests"][0]
        outputs.append(row["output"])
    assert outputs[0] == outputs[1]
    assert "Smallest failing case found: size=3" in outputs[0]
    assert "object at 0x" not in outputs[0] and "student" not in outputs[0]


def test_a_pytest_run_that_neither_grades_nor_self_checks_is_left_alone(pytester):
    """The kit installed in an environment must not change anyone else's hypothesis setup."""
    pytester.makepyfile(test_other='''
from hypothesis import settings

def test_profile_untouched():  # hypothesis's own choice ("default", or "ci" on CI machines)
    assert settings.get_current_profile_name() not in ("selfcheck", "grading")
''')
    pytester.runpytest().assert_outcomes(passed=1)


def test_the_self_check_gets_its_profile_once_public_tests_are_collected(pytester):
    pytester.makepyfile(test_public='''
import pytest
from hypothesis import settings

@pytest.mark.conv2d
def test_profile():
    assert settings.get_current_profile_name() == "selfcheck"
''')
    pytester.runpytest().assert_outcomes(passed=1)
