"""The static check (grader/static_check.py): it reads a submission as text and finds the
convolution operators a conv2d reaches and the tampering with the interpreter or the
dispatcher that would hide one from the runtime recorder, without flagging honest code.

Each cheat is the reference solutions with code appended to conv.py (a later ``def conv2d``
replaces the reference's, as it would at import)."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from grader.static_check import MAX_SOURCE_BYTES, Finding, Scan, scan_submission
from tests.corpus import SOLUTIONS, all_variants, build_submission, copy_solutions

CONV = (SOLUTIONS / "conv.py").read_text()
SIGNATURE = "def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1):\n"


def submission(tmp_path: Path, conv_extra: str = "", **files: str) -> Path:
    """The reference solutions, conv.py with ``conv_extra`` appended, plus other files."""
    folder = copy_solutions(tmp_path / "sub")
    (folder / "conv.py").write_text(CONV + "\n" + textwrap.dedent(conv_extra))
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


def conv2d_body(body: str, before: str = "") -> str:
    """A conv2d replaced by ``body``, after module-level code ``before``."""
    return textwrap.dedent(before) + "\n" + SIGNATURE + textwrap.indent(
        textwrap.dedent(body).strip("\n"), "    ") + "\n"


def hand_made(folder: Path) -> list[str]:
    return [str(f) for f in scan_submission(folder).hand_made("conv", "conv2d")]


# -- the reference and the corpus are clean ------------------------------------------------------
def test_the_reference_solutions_have_no_findings():
    scan = scan_submission(SOLUTIONS, "solutions")
    assert scan.convolution_in("conv", "conv2d") == []
    assert scan.all_findings() == []
    assert scan.import_closure("resnet") == ["resnet", "__init__", "blocks"]


def test_the_stubs_have_no_findings():
    scan = scan_submission(SOLUTIONS.parent / "exercises")
    assert scan.hand_made("conv", "conv2d") == [] and scan.all_findings() == []


@pytest.mark.parametrize("variant", [v for v in all_variants() if "conv2d" not in v.hurts],
                         ids=lambda v: v.name)
def test_the_corpus_that_keeps_conv2d_is_not_flagged(variant, tmp_path):
    """Every corpus variant that must keep conv2d's marks (the unfold alternative too), and
    every module of every other variant: nothing their code does is flagged (a syntax error
    is a finding of its own, for the report)."""
    scan = scan_submission(build_submission(variant, tmp_path / "sub"))
    assert scan.hand_made("conv", "conv2d") == []
    assert [f for f in scan.all_findings() if f.kind != "unparsable"] == []


def test_a_graded_notebook_has_no_findings(tmp_path):
    """The committed notebook, turned into modules as a notebook submission is (its setup cell
    of imports in every module): nothing is flagged."""
    from grader.notebook import notebook_to_package
    from grader.packs import load_pack

    notebook_to_package(SOLUTIONS.parent / "notebooks" / "day02.ipynb", tmp_path / "nb",
                        load_pack("day02").modules)
    scan = scan_submission(tmp_path / "nb")
    assert scan.hand_made("conv", "conv2d") == [] and scan.all_findings() == []


def test_the_corpus_calling_f_conv2d_is_flagged(tmp_path):
    variant = next(v for v in all_variants() if v.name == "conv2d_calls_F_conv2d")
    found = hand_made(build_submission(variant, tmp_path / "sub"))
    assert found and found[0].startswith("conv.py, line ") and \
        found[0].endswith(": F.conv2d (a torch convolution operator)")


# -- cheats: a convolution operator reachable from conv2d ----------------------------------------
CONVOLUTION_CHEATS = {
    "calls F.conv2d": conv2d_body("return F.conv2d(input, weight, bias, stride, padding, "
                                  "dilation)"),
    "module-level alias": conv2d_body("return _c(input, weight, bias, stride, padding, "
                                      "dilation)", "_c = F.conv2d"),
    "imported alias": conv2d_body("return c(input, weight, bias, stride, padding, dilation)",
                                  "from torch.nn.functional import conv2d as c"),
    "nn.Conv2d": conv2d_body("""
        layer = torch.nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2:])
        layer.weight.data = weight
        return layer(input)"""),
    "torch.ops.aten.convolution": conv2d_body(
        "return torch.ops.aten.convolution(input, weight, bias, [stride] * 2, [padding] * 2, "
        "[dilation] * 2, False, [0, 0], 1)"),
    "through a helper": conv2d_body("return _helper(input, weight)", """
        def _inner(x, w):
            return F.conv2d(x, w)

        def _helper(x, w):
            return _inner(x, w)"""),
    "default argument": "\ndef conv2d(input, weight, bias=None, stride=1, padding=0, "
                        "dilation=1, _c=F.conv2d):\n    return _c(input, weight, bias)\n",
    "decorator": conv2d_body("return input", """
        def swap(f):
            return lambda *a: F.conv2d(*a[:3])
        """).replace("\ndef conv2d", "\n@swap\ndef conv2d"),
    "in a thread": conv2d_body("""
        import threading
        box = []
        t = threading.Thread(target=lambda: box.append(F.conv2d(input, weight, bias)))
        t.start()
        t.join()
        return box[0]"""),
    "a module-level table": conv2d_body("return OPS[0](input, weight)",
                                        "OPS = []\nOPS.append(F.conv2d)"),
    "a helper module": conv2d_body("return fast(input, weight)", "from .helpers import fast"),
    "getattr with a literal": conv2d_body("return getattr(F, 'conv2d')(input, weight)"),
    "a module __getattr__": "\ndel conv2d\n\ndef __getattr__(name):\n    return F.conv2d\n",
    "torch's F through a helper module": conv2d_body("return helpers.F.conv2d(input, weight)",
                                                     "from . import helpers"),
    "star import": conv2d_body("return conv2d_(input, weight)",
                               "from torch.nn.functional import *\nconv2d_ = conv2d"),
}


@pytest.mark.parametrize("name", CONVOLUTION_CHEATS)
def test_a_convolution_operator_reachable_from_conv2d_is_found(name, tmp_path):
    helpers = "import torch.nn.functional as F\n\ndef fast(x, w):\n    return F.conv2d(x, w)\n"
    folder = submission(tmp_path, CONVOLUTION_CHEATS[name], **{"helpers.py": helpers})
    scan = scan_submission(folder)
    found = scan.convolution_in("conv", "conv2d")
    assert found, name
    assert all(f.kind == "convolution" and "(a torch convolution operator)" in f.what
               for f in found)
    assert scan.hand_made("conv", "conv2d")
    assert set(found) <= set(scan.all_findings())  # asked once: in the report


def test_the_finding_names_the_line_and_the_operator(tmp_path):
    folder = submission(tmp_path, conv2d_body("return _c(input, weight)", "_c = F.conv2d"))
    line = (folder / "conv.py").read_text().splitlines().index("_c = F.conv2d") + 1
    assert hand_made(folder) == [f"conv.py, line {line}: F.conv2d (a torch convolution "
                                 "operator)"]


# -- cheats: switching the recording off, or reaching the grader -----------------------------------
TAMPERING_CHEATS = {
    "_DisableTorchDispatch": ("""
        with torch._C._DisableTorchDispatch():
            return F.conv2d(input, weight, bias, stride, padding, dilation)""", "torch._C"),
    "pops the dispatch mode": ("""
        from torch.utils._python_dispatch import _pop_mode_temporarily
        with _pop_mode_temporarily():
            return input""", "torch.utils._python_dispatch"),
    "patches the probe's __code__": ("""
        import sys
        probe = sys.modules["grader.packs.day02.probes.conv"].conv2d_run
        probe.__code__ = (lambda mod, case: {}).__code__""", "sys.modules"),
    "the caller's frame": ("""
        frame = sys._getframe(1)
        frame.f_locals["recorder"].ops.clear()
        return input""", "sys._getframe"),
    "ctypes": ("import ctypes\nreturn input", "ctypes"),
    "gc.get_objects": ("""
        import gc
        for obj in gc.get_objects():
            if type(obj).__name__ == "AtenOpRecorder":
                obj.ops.clear()
        return input""", "gc.get_objects"),
    "getattr with a computed name": ("return getattr(F, 'con' + 'v2d')(input, weight)",
                                     "getattr without a literal attribute name"),
    "getattr torch._C": ("return getattr(torch, '_C')", "torch._C"),
    "a torch alias": ("T = torch\nreturn T._C", "torch._C"),
    "imports the grader": ("from grader.packs.day02.probes import conv as probes\nreturn input",
                           "grader"),
    "exec": ("exec('import torch')\nreturn input", "exec"),
    "eval passed as a value": ("run = eval\nreturn run('input')", "eval"),
    "__import__": ("return __import__('torch')", "__import__"),
    "import_module with a computed name": (
        "import importlib\nreturn importlib.import_module('torch.' + '_C')",
        "importlib.import_module with a computed name"),
    "import_module of torch._C": (
        "from importlib import import_module\nreturn import_module('torch._C')", "torch._C"),
    "a TorchDispatchMode of its own": ("""
        class Quiet(torch.utils._python_dispatch.TorchDispatchMode):
            pass
        return input""", "torch.utils._python_dispatch"),
    "__torch_function__": ("""
        class T(torch.Tensor):
            @classmethod
            def __torch_function__(cls, func, types, args=(), kwargs=None):
                return func(*args, **(kwargs or {}))
        return input""", "__torch_function__"),
    "a custom operator": ("""
        lib = torch.library.Library("cheat", "DEF")
        return input""", "torch.library"),
    "builtins": ("import builtins\nbuiltins.len = lambda x: 0\nreturn input", "builtins"),
    "pickle": ("import pickle\nreturn pickle.loads(b'')", "pickle"),
    "torch.load of pickled code": ("return torch.load('w.pt', weights_only=False)",
                                   "weights_only=False"),
    "a tracing hook": ("sys.settrace(None)\nreturn input", "sys.settrace"),
    "a traceback's frame": ("""
        try:
            raise ValueError
        except ValueError as e:
            return e.__traceback__.tb_frame""", "tb_frame"),
    "__subclasses__": ("return object.__subclasses__()", "__subclasses__"),
    "__dict__": ("return F.__dict__['conv2d'](input, weight)", "__dict__"),
    "vars": ("return vars(F)['conv2d'](input, weight)", "vars"),
    "a process": ("import subprocess\nreturn input", "subprocess"),
}


@pytest.mark.parametrize("name", TAMPERING_CHEATS)
def test_tampering_with_the_interpreter_or_the_dispatcher_is_found(name, tmp_path):
    body, expected = TAMPERING_CHEATS[name]
    folder = submission(tmp_path, conv2d_body(body, "import sys"))
    scan = scan_submission(folder)
    found = scan.tampering_in(scan.import_closure("conv"))
    assert any(f.kind == "tampering" and f.what.startswith(expected) for f in found), \
        [str(f) for f in found]
    assert scan.hand_made("conv", "conv2d")


def test_tampering_in_a_module_conv_imports_or_in_init_counts(tmp_path):
    helper = "import torch\n\ndef off():\n    return torch._C._DisableTorchDispatch()\n"
    folder = submission(tmp_path, "from .quiet import off\n", **{"quiet.py": helper})
    scan = scan_submission(folder)
    assert scan.import_closure("conv") == ["conv", "__init__", "quiet"]
    assert hand_made(folder)[0].startswith("quiet.py, line 4: torch._C")
    (folder / "conv.py").write_text(CONV)  # quiet.py no longer imported by conv: not counted
    assert hand_made(folder) == []
    (folder / "__init__.py").write_text("from . import quiet\n")  # but __init__ runs first
    assert hand_made(folder)[0].startswith("quiet.py, line 4: torch._C")


def test_a_module_imported_by_name_runs_with_conv(tmp_path):
    """import_module("exercises.quiet"), written or through an alias, brings quiet.py along."""
    helper = "import ctypes\n"
    body = conv2d_body("return input", "from importlib import import_module as load\n"
                       "load('exercises.quiet')")
    folder = submission(tmp_path, body, **{"quiet.py": helper})
    assert "quiet" in scan_submission(folder).import_closure("conv")
    assert hand_made(folder)[0].startswith("quiet.py, line 1: ctypes")


def test_a_compiled_module_hides_code_and_counts(tmp_path):
    """Python imports helpers.pyc from the submission folder (and a .so even in place of the
    conv.py beside it): code the check cannot read."""
    folder = submission(tmp_path, "from .helpers import fast\n")
    (folder / "helpers.pyc").write_bytes(b"\x00" * 16)
    found = hand_made(folder)
    assert found == ["helpers.py: compiled code (.pyc), which Python imports from the "
                     "submission folder and the check cannot read"]
    (folder / "conv.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    assert "conv.py: compiled code (.cpython-311-x86_64-linux-gnu.so), which Python imports " \
        "from the submission folder and the check cannot read" in hand_made(folder)


# -- honest code is not flagged ------------------------------------------------------------------
HONEST = {
    "a self-check helper conv2d never calls": """
        def _check_against_torch():
            x, w = torch.randn(1, 2, 5, 5), torch.randn(3, 2, 3, 3)
            assert torch.allclose(conv2d(x, w), F.conv2d(x, w), atol=1e-5)
        """,
    "a module-level self-check": """
        x = torch.randn(1, 2, 5, 5)
        out = F.conv2d(x, torch.ones(1, 2, 3, 3))
        print(F.conv2d(x, torch.ones(1, 2, 3, 3)).shape)
        if __name__ == "__main__":
            assert torch.allclose(conv2d(x, torch.ones(1, 2, 3, 3)), out)
        """,
    "unfold and einsum": conv2d_body("""
        n, _, h, w = input.shape
        o, c, kh, kw = weight.shape
        h_out = conv_output_size(h, kh, stride, padding, dilation)
        w_out = conv_output_size(w, kw, stride, padding, dilation)
        cols = F.unfold(input, (kh, kw), dilation=dilation, padding=padding, stride=stride)
        out = torch.einsum("ok,nkl->nol", weight.reshape(o, -1), cols)
        out = out.reshape(n, o, h_out, w_out)
        return out if bias is None else out + bias.view(1, o, 1, 1)"""),
    "its own names": conv2d_body('''
        """Like F.conv2d (torch.nn.functional.conv2d), by hand; nn.Conv2d uses the same."""
        # not F.conv2d: the exercise is to build it
        return _conv2d_loop(input, weight, bias)''', '''
        def _conv2d_loop(x, w, b):
            """No F.conv2d here either."""
            return conv_output_size(x.shape[-1], w.shape[-1]) * 0 + x.sum()
        '''),
    "a variable named like a module": conv2d_body("""
        code = "abc"
        grader = {"ok": True}
        self = None
        return code.strip(), grader.get("ok"), input""", """
        class Layer:
            def __init__(self):
                self._C = 3
            def forward(self, x):
                return getattr(self, "_C"), self._C, x
        """),
    "ordinary imports and calls": conv2d_body("""
        import math, inspect
        model = torch.nn.Linear(2, 2)
        model.eval()
        fn = torch.compile if False else None
        sig = inspect.signature(conv_output_size)
        return getattr(torch, "einsum")("ij->ji", input), math.floor(1.5), sig, fn""",
                                            "import gc, os, sys\ngc.collect()\n"
                                            "print(sys.version, os.getcwd())"),
}


@pytest.mark.parametrize("name", HONEST)
def test_honest_code_is_not_flagged(name, tmp_path):
    scan = scan_submission(submission(tmp_path, HONEST[name]))
    assert scan.hand_made("conv", "conv2d") == []
    assert scan.all_findings() == []


def test_f_conv2d_elsewhere_in_the_submission_is_fine(tmp_path):
    """blocks.py uses nn.Conv2d by design: only what conv2d reaches is asked about."""
    scan = scan_submission(submission(tmp_path))
    assert scan.convolution_in("blocks", "BasicBlock")  # it does reach nn.Conv2d
    assert scan.convolution_in("conv", "conv2d") == []


# -- what cannot be read is a finding, not a crash -------------------------------------------------
@pytest.mark.parametrize("text, why", [
    (b"def conv2d(:\n", "a syntax error"),
    (b"x = " + b"1 + " * 200_000 + b"1\n", "nested too deeply"),
    (b"x = " + b"-" * 200_000 + b"1\n", "nested too deeply"),
    (b"x = 1\x00\n", "a NUL byte"),
    (b"x = '" + b"a" * MAX_SOURCE_BYTES + b"'\n", "larger than 2 MiB"),
])
def test_an_unparsable_module_is_a_finding(text, why, tmp_path):
    folder = submission(tmp_path)
    (folder / "conv.py").write_bytes(text)
    scan = scan_submission(folder)
    assert [f.kind for f in scan.all_findings()] == ["unparsable"]
    assert why in scan.all_findings()[0].what
    assert scan.convolution_in("conv", "conv2d") == []
    # only what may still run counts against conv2d (Python cannot import a syntax error)
    assert bool(scan.hand_made("conv", "conv2d")) == (why == "nested too deeply")


def test_a_long_chain_costs_linear_time(tmp_path):
    """An attribute chain about as long as ast builds (its limit depends on the caller's stack)
    is read in well under a second, not quadratically (2900 long once took 50 s); its torch._C
    prefix is still found."""
    import time

    folder = submission(tmp_path, conv2d_body("return torch._C" + ".a" * 2000))
    started = time.monotonic()
    assert any("torch._C" in f for f in hand_made(folder))
    assert time.monotonic() - started < 10


def test_a_name_rebound_along_a_chain_stays_cheap(tmp_path):
    """x = x.a; x = x.b; ... would double x's paths with each line: they stop at a few, and
    the name that has more is a finding."""
    import time

    rebinds = "".join(f"T = T.a{i}\n" for i in range(200))
    folder = submission(tmp_path, conv2d_body("return input", "import torch as T\n" + rebinds))
    started = time.monotonic()
    found = hand_made(folder)
    assert time.monotonic() - started < 10
    assert any("T stands for more than 16 modules or attributes" in f for f in found)


def test_a_symlinked_or_special_module_is_not_read(tmp_path):
    folder = submission(tmp_path)
    (folder / "conv.py").unlink()
    (folder / "conv.py").symlink_to(SOLUTIONS / "conv.py")
    os.mkfifo(folder / "blocks.py.tmp")
    (folder / "blocks.py.tmp").rename(folder / "visualize.py")  # a FIFO: never blocks
    found = {f.module: f.what for f in scan_submission(folder).all_findings()}
    assert found == {"conv": "a symbolic link: not read (the sandbox ignores it too)",
                     "visualize": "not a regular file: not read (the sandbox ignores it too)"}


def test_a_coding_line_cannot_hide_code_in_a_comment(tmp_path):
    """Read as the import decodes it: under unicode_escape, ``#\\n...`` in a "comment" is code."""
    folder = submission(tmp_path)
    hidden = (b"# -*- coding: unicode_escape -*-\nimport torch\n"
              b"#\\ntorch._C._DisableTorchDispatch\n")
    (folder / "conv.py").write_bytes(hidden)
    assert any("torch._C" in f for f in hand_made(folder))


def test_an_unknown_coding_counts_and_registering_one_is_tampering(tmp_path):
    """A codec registered in __init__.py decides what conv.py's source says in the worker:
    a coding the check does not know counts against conv2d."""
    folder = submission(tmp_path)
    (folder / "conv.py").write_bytes(b"# coding: kit_rot13\n" + CONV.encode())
    (folder / "__init__.py").write_text("import codecs\ncodecs.register(lambda name: None)\n")
    found = hand_made(folder)
    assert "conv.py: declares a text encoding the check does not know" in found
    assert any(f.startswith("__init__.py, line 2: codecs.register") for f in found)


def test_odd_module_names_print_safely():
    finding = Finding("a`b\nc", 3, "tampering", "ctypes (raw memory access and C calls)")
    assert str(finding) == "'a`b\\nc'.py, line 3: ctypes (raw memory access and C calls)"
    assert "\n" not in str(finding)


def test_the_size_cap_is_the_sandboxs():
    from grader.sandbox.client import MAX_SOURCE_BYTES as STAGED

    assert MAX_SOURCE_BYTES == STAGED


def test_an_empty_scan_finds_nothing(tmp_path):
    assert Scan().hand_made("conv", "conv2d") == [] and Scan().all_findings() == []
    assert scan_submission(tmp_path / "missing").all_findings() == []


# -- in the grade --------------------------------------------------------------------------------
pytest_plugins = ["pytester"]
USES_THE_FIXTURE = '''
import pytest

@pytest.mark.conv2d
def test_scan(static_scan):
    print("FOUND", [str(f) for f in static_scan.hand_made("conv", "conv2d")])
'''


def test_the_fixture_scans_the_submission_given_by_hand(pytester, tmp_path):
    """Graders run with pytest by hand get the scan of --submission; without one, an empty
    scan (nothing is graded)."""
    pytester.makepyfile(test_uses=USES_THE_FIXTURE)
    folder = submission(tmp_path, conv2d_body("return F.conv2d(input, weight)"))
    result = pytester.runpytest("-s", "--submission", str(folder), "--kit-handle", "in-process",
                                "--kit-report", "r.json")
    result.assert_outcomes(passed=1)
    assert "F.conv2d (a torch convolution operator)" in result.stdout.str()
    saved = json.loads((pytester.path / "r.json").read_text())
    [finding] = saved["extra_data"]["static_findings"]
    assert finding.endswith("F.conv2d (a torch convolution operator)")
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    assert "FOUND []" in result.stdout.str()


SILENT_CHEAT = conv2d_body("""
    with torch._C._DisableTorchDispatch():
        return F.conv2d(input, weight, bias, stride, padding, dilation)""")


def test_a_conv2d_the_recorder_cannot_see_scores_0(tmp_path):
    """F.conv2d with the recording switched off: the runtime recorder sees nothing, the
    static check fails every conv2d property and the report names what it found."""
    from grader.grade import grade

    folder = submission(tmp_path, SILENT_CHEAT)
    report = grade(folder, tmp_path / "report", only=("conv2d",), handle="in-process",
                   quiet=True, reference_cache=None)
    assert report.score == 0 and report.max_score == 12
    for test in report.tests:
        assert "Got: conv.py, line " in test.output and "torch._C" in test.output, test.output
        assert "static_scan" not in test.output  # the failing-case note names drawn values
    saved = json.loads((tmp_path / "report" / "results.json").read_text())
    findings = saved["extra_data"]["static_findings"]
    assert any("torch._C (the dispatcher's internals" in f for f in findings)
    assert any("F.conv2d (a torch convolution operator)" in f for f in findings)
    assert "versions" in saved["extra_data"]


@pytest.mark.slow  # a whole conv2d grade (4 s); the corpus grades clean submissions too
def test_a_clean_grade_has_no_static_findings(tmp_path):
    from grader.grade import grade

    report = grade(submission(tmp_path), tmp_path / "report", only=("conv2d",),
                   handle="in-process", quiet=True, reference_cache=None)
    assert report.score == report.max_score
    assert "static_findings" not in report.extra_data


def test_the_summary_lists_the_flagged_submissions_for_a_person(tmp_path):
    """summary.md: who was flagged and their first findings, in code spans a crafted name
    cannot leave; a submission without findings is not listed."""
    from grader.batch.collect import Collection, Student
    from grader.batch.gradebook import write_class_reports
    from grader.batch.store import Meta, grader_version, save_graded
    from grader.packs import load_pack
    from grader.results import GradeReport, PropertyResult

    findings = {"ann": [], "ben": [f"conv.py, line {n}: torch._C (the dispatcher's internals)"
                               for n in range(5)],
                "cat": ["'x`**y\n# z'.py: a syntax error: Python cannot import it either"]}
    students = [Student(sid, f"{sid}/") for sid in findings]
    for student in students:
        extra = {"static_findings": findings[student.id]} if findings[student.id] else {}
        report = GradeReport([PropertyResult("conv2d", "conv2d: values", 3.0, 0.0, "failed")],
                             extra_data=extra).to_gradescope_dict()
        save_graded(tmp_path / student.id, Meta(student.id, "h", grader_version(), {},
                                                "graded"), report, "fb")
    write_class_reports(tmp_path, load_pack("day02"), Collection(students, []))
    summary = (tmp_path / "summary.md").read_text()
    section = summary.split("## Static findings\n", 1)[1]
    assert "For a person to read; no score changed." in section
    assert "`ann`" not in section
    assert "- `ben`: `conv.py, line 0: torch._C (the dispatcher's internals)`; " in section
    assert section.count("`conv.py, line") == 3 and "(and 2 more)" in section
    # the name's backtick kept inside a longer fence, its newline an escape (grader/text.py)
    assert "- `cat`: ``'x`**y\\n# z'.py: a syntax error: Python cannot import it either``" \
        in section


def test_a_notebook_kernels_check_reads_no_shims(tmp_path):
    """check() in a kernel grades shims over the kernel's namespace (the kit's own code, which
    imports grader and writes globals): no source to read, so no static check there."""
    from grader.notebook_api import _run_hidden, notebook_package
    from grader.packs import load_pack

    pack = load_pack("day02")
    namespace = {"conv_output_size": lambda *a, **k: 0}
    with notebook_package(namespace, pack.modules) as folder:
        assert scan_submission(folder).hand_made("conv", "conv2d")  # what it would say
        report = _run_hidden(pack, folder, "conv_output_size", tmp_path)
    assert "static_findings" not in report.extra_data


@pytest.mark.slow  # a whole conv2d grade in the kernel (4 s)
def test_a_notebook_kernels_check_keeps_conv2d(tmp_path):
    from grader.notebook_api import check
    from tests.test_notebook import _namespace, load, solved

    namespace = _namespace(solved(load()), ("conv-conv_output_size", "conv-conv2d"))
    assert check("conv2d", namespace=namespace) == 12.0


# -- resnet18: torchvision.models, read from the source -----------------------------------------
@pytest.mark.parametrize("source", [
    "import torchvision\nx = torchvision.models.resnet18\n",
    "from torchvision.models import resnet18\n",
    "from torchvision.models.resnet import BasicBlock\n",
    "from torchvision import models as m\nBlock = m.resnet.BasicBlock\n",
    "import torchvision.models.resnet as tvr\n",
])
def test_torchvision_models_is_found(tmp_path, source):
    (tmp_path / "resnet.py").write_text(source)
    found = scan_submission(tmp_path).uses(["resnet"], "torchvision.models", "ruled out")
    assert found and found[0].kind == "forbidden" and "torchvision.models" in str(found[0])


@pytest.mark.parametrize("source", [
    "import torchvision.transforms as T\n",
    "from torchvision.utils import make_grid\n",
    "models = {'a': 1}\nx = models.resnet\n",  # a variable of its own named models
])
def test_other_torchvision_is_not_found(tmp_path, source):
    (tmp_path / "resnet.py").write_text(source)
    assert scan_submission(tmp_path).uses(["resnet"], "torchvision.models", "ruled out") == []


def test_the_reference_uses_no_torchvision_models():
    scan = scan_submission(SOLUTIONS)
    assert scan.uses(scan.import_closure("resnet"), "torchvision.models", "ruled out") == []


# -- other doors into the import system (tests/test_fabrication_attacks.py found them) --------
@pytest.mark.parametrize("code", [
    "import sys, os\nsys.path.insert(0, os.path.join(os.path.dirname(__file__), 'a.zip'))\n",
    "import os\nos.sys.modules.clear()\n",
    "import importlib._bootstrap as b\n",
    "from importlib.machinery import PathFinder\n",
    "import zipimport\n",
    "from pkgutil import resolve_name\nf = resolve_name('torch.nn.functional:conv2d')\n",
    "import pydoc\nf = pydoc.locate('torch.nn.functional.conv2d')\n",
    "from unittest import mock\nmock.patch('x.y').start()\n",
])
def test_other_import_doors_are_tampering(tmp_path, code):
    scan = scan_submission(submission(tmp_path, conv2d_body("return input", code)))
    assert any(f.kind == "tampering" for f in scan.hand_made("conv", "conv2d"))


@pytest.mark.parametrize("source", [
    "import importlib\nm = importlib.import_module('torchvision.models.resnet')\n",
    "m = __import__('torchvision.models', fromlist=['resnet'])\n",
    "import torchvision\nm = getattr(torchvision, 'models')\n",
])
def test_torchvision_models_by_name_is_found(tmp_path, source):
    (tmp_path / "resnet.py").write_text(source)
    assert scan_submission(tmp_path).uses(["resnet"], "torchvision.models", "ruled out")
