"""The stub generator and the student release.

Stubs stay in sync with the reference and keep its signatures and docstrings; every stubbed
function names its exercise; a broken solutions file stops the build with one clear line; the
release holds no solution text, ships only the public grader, and runs its own self-check.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import shutil
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from grader.packs import load_pack
from grader.release import (
    STUB_HEADER,
    ReleaseError,
    build_release,
    drifted_stubs,
    find_leaks,
    find_regions,
    generate_stubs,
    is_distinctive,
    make_stub,
    public_grader_files,
    render_stubs,
    solution_fingerprints,
)

REPO = Path(__file__).resolve().parents[1]
PACK = load_pack("day02")
SOLUTIONS = REPO / "solutions"
EXERCISES = REPO / "exercises"
STUBS_PKG = "_kit_release_stubs"  # stubs load under their own name: no clash with `exercises`
# bookkeeping that differs between any two files (line numbers, attributes __init__ assigns)
SKIP_CLASS_ATTRS = {"__module__", "__dict__", "__weakref__", "__firstlineno__",
                    "__static_attributes__"}
RAISE = re.compile(r'^(\s*)raise NotImplementedError\("exercise (\w+): write ([\w.]+) \(see ')


def _linear() -> nn.Module:
    return nn.Linear(4, 3)


def _loader() -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(torch.randn(2, 4), torch.tensor([0, 2]))]  # (N, 4), (N,)


def _sgd() -> torch.optim.Optimizer:
    return torch.optim.SGD(_linear().parameters(), lr=0.1)


# Plausible arguments for every function a solution region lives in: (module, qualname) -> args.
# Methods other than __init__ run on an instance built by __init__'s entry.
ARGS: dict[tuple[str, str], Callable[[], tuple]] = {
    ("conv", "conv_output_size"): lambda: (32, 3, 1, 1),
    ("conv", "conv2d"): lambda: (torch.randn(1, 3, 5, 5), torch.randn(2, 3, 3, 3)),
    ("receptive_field", "receptive_field"): lambda: ([(3, 1), (3, 2)],),
    ("receptive_field", "resnet18_receptive_fields"): lambda: (),
    ("param_count", "conv2d_params"): lambda: (3, 64, 3, False),
    ("param_count", "batchnorm2d_params"): lambda: (64,),
    ("param_count", "linear_params"): lambda: (512, 10),
    ("param_count", "count_parameters"): lambda: (_linear(),),
    ("param_count", "parameter_table"): lambda: (_linear(),),
    ("param_count", "resnet18_param_count"): lambda: (10,),
    ("blocks", "BasicBlock.__init__"): lambda: (4, 8, 2),
    ("blocks", "BasicBlock.forward"): lambda: (torch.randn(2, 4, 8, 8),),
    ("resnet", "ResNet18.__init__"): lambda: (10,),
    ("resnet", "ResNet18._make_layer"): lambda: (4, 8, 2, 2),
    ("resnet", "ResNet18.forward"): lambda: (torch.randn(1, 3, 32, 32),),
    ("resnet", "PlainNet.__init__"): lambda: (10, 4),
    ("resnet", "PlainNet.forward"): lambda: (torch.randn(2, 3, 8, 8),),
    ("resnet", "ResidualNet.__init__"): lambda: (10, 4),
    ("resnet", "ResidualNet.forward"): lambda: (torch.randn(2, 3, 8, 8),),
    ("resnet", "kaiming_init_"): lambda: (nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)),),
    ("gradients", "measure_gradient_norms"): lambda: (_linear(), *_loader()[0]),
    ("gradients", "gradient_norm_spread"): lambda: ([("a", 0.01), ("b", 10.0)],),
    ("train", "make_optimizer"): lambda: (_linear(),),
    ("train", "make_scheduler"): lambda: (_sgd(), 5),
    ("train", "train_one_epoch"): lambda: (_linear(), _loader(), _sgd(), nn.CrossEntropyLoss(),
                                           "cpu"),
    ("train", "evaluate"): lambda: (_linear(), _loader(), nn.CrossEntropyLoss(), "cpu"),
    ("visualize", "filter_grid"): lambda: (torch.randn(64, 3, 3, 3),),
}


def _source(module: str) -> str:
    return (SOLUTIONS / f"{module}.py").read_text(encoding="utf-8")


def _regions(module: str):
    return find_regions(_source(module), f"solutions/{module}.py")


@pytest.fixture(scope="module")
def stubs() -> dict[str, types.ModuleType]:
    spec = importlib.util.spec_from_file_location(STUBS_PKG, EXERCISES / "__init__.py",
                                                  submodule_search_locations=[str(EXERCISES)])
    package = importlib.util.module_from_spec(spec)
    sys.modules[STUBS_PKG] = package
    spec.loader.exec_module(package)
    yield {m: importlib.import_module(f"{STUBS_PKG}.{m}") for m in PACK.modules}
    for name in [k for k in sys.modules if k == STUBS_PKG or k.startswith(STUBS_PKG + ".")]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def references() -> dict[str, types.ModuleType]:
    return {m: importlib.import_module(f"{PACK.solutions_package}.{m}") for m in PACK.modules}


# -- the committed stubs ------------------------------------------------------------------------
def test_committed_stubs_match_the_generator():
    """exercises/ is what the generator makes from solutions/ now (drift check)."""
    drifted = [p.relative_to(REPO).as_posix() for p in drifted_stubs(EXERCISES, PACK)]
    assert not drifted, f"stubs out of date: {', '.join(drifted)}; run python -m grader stubs"


def test_drift_is_detected_and_named(tmp_path):
    written = generate_stubs(tmp_path, PACK)
    assert sorted(p.name for p in written) == sorted(["__init__.py"] +
                                                     [f"{m}.py" for m in PACK.modules])
    assert drifted_stubs(tmp_path, PACK) == []
    blocks = tmp_path / "blocks.py"
    blocks.write_text(blocks.read_text() + "\n# an edit\n")
    (tmp_path / "conv.py").unlink()
    assert drifted_stubs(tmp_path, PACK) == [tmp_path / "conv.py", blocks]


def test_stubs_check_cli_passes_on_the_repo():
    run = subprocess.run([sys.executable, "-m", "grader", "stubs", "--check"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


def test_every_region_has_plausible_args():
    found = {(m, r.qualname) for m in PACK.modules for r in _regions(m)}
    assert found == set(ARGS), "add the new function to ARGS, or drop a stale entry"


def _call(mod: types.ModuleType, qualname: str, module: str, bare: bool):
    """Call ``qualname`` with its ARGS; a method runs on a bare instance (stub) or a built one."""
    args = ARGS[(module, qualname)]()
    owner, _, method = qualname.partition(".")
    target = getattr(mod, owner)
    if method in ("", "__init__"):
        return target(*args)
    if isinstance(inspect.getattr_static(target, method), staticmethod):
        return getattr(target, method)(*args)
    if bare:  # the stub's __init__ raises too: skip it, keep nn.Module's bookkeeping
        instance = target.__new__(target)
        nn.Module.__init__(instance)
    else:
        instance = target(*ARGS[(module, f"{owner}.__init__")]())
    return getattr(instance, method)(*args)


@pytest.mark.parametrize(("module", "qualname"), sorted(ARGS),
                         ids=[f"{m}.{q}" for m, q in sorted(ARGS)])
def test_stub_raises_naming_its_exercise(stubs, references, module, qualname):
    _call(references[module], qualname, module, bare=False)  # the args are plausible
    with pytest.raises(NotImplementedError) as excinfo:
        _call(stubs[module], qualname, module, bare=True)
    exercise = PACK.owner(module, qualname).id
    assert str(excinfo.value).startswith(f"exercise {exercise}: write {qualname} (see ")


def _members(mod: types.ModuleType) -> dict[str, object]:
    """Functions and classes defined in ``mod``, and "Class.attr" for each class attribute."""
    found: dict[str, object] = {}
    for name, obj in vars(mod).items():
        if not (inspect.isfunction(obj) or inspect.isclass(obj)) or obj.__module__ != mod.__name__:
            continue
        found[name] = obj
        if inspect.isclass(obj):
            for attr, raw in vars(obj).items():
                if attr not in SKIP_CLASS_ATTRS:
                    found[f"{name}.{attr}"] = raw
    return found


@pytest.mark.parametrize("module", PACK.modules)
def test_stubs_keep_signatures_docstrings_and_names(stubs, references, module):
    stub, ref = stubs[module], references[module]
    assert stub.__doc__ == ref.__doc__
    # "@py_builtins" and the like: pytest rewrites the kit's own modules (it is a plugin)
    names = [{k for k in vars(m) if not k.startswith(("__", "@"))} for m in (stub, ref)]
    assert names[0] == names[1]  # the imports are kept too
    stub_members, ref_members = _members(stub), _members(ref)
    assert stub_members.keys() == ref_members.keys()
    for name, ref_obj in ref_members.items():
        stub_obj = stub_members[name]
        assert type(stub_obj) is type(ref_obj), name
        fn = getattr(ref_obj, "__func__", ref_obj)  # staticmethod -> its function
        if inspect.isfunction(fn) or inspect.isclass(fn):
            stub_fn = getattr(stub_obj, "__func__", stub_obj)
            assert inspect.signature(stub_fn) == inspect.signature(fn), name
            assert stub_fn.__doc__ == fn.__doc__, name
        else:  # class docstrings and attributes such as expansion = 1
            assert stub_obj == ref_obj, name


@pytest.mark.parametrize("module", PACK.modules)
def test_round_trip_outside_regions(module):
    """The solution minus its regions is the stub minus its header and raise lines."""
    regions = _regions(module)
    inside = {no for r in regions for no in range(r.begin, r.end + 1)}
    kept = [line for no, line in enumerate(_source(module).splitlines(), 1) if no not in inside]
    lines = (EXERCISES / f"{module}.py").read_text(encoding="utf-8").splitlines()
    assert lines[0] == STUB_HEADER
    raises = [(i, RAISE.match(line)) for i, line in enumerate(lines) if RAISE.match(line)]
    assert [(m.group(1), m.group(3)) for _, m in raises] == [(r.indent, r.qualname)
                                                             for r in regions]
    raise_at = {i for i, _ in raises}
    assert [line for i, line in enumerate(lines) if i and i not in raise_at] == kept


def test_init_is_a_student_facing_docstring(stubs):
    doc = sys.modules[STUBS_PKG].__doc__
    assert "``exercises``" in doc and "pytest exercises" in doc
    assert all(f"{m}.py" in doc for m in PACK.modules)


# -- one clear line for a broken solutions file -------------------------------------------------
def _stub_error(source: str, module: str = "conv") -> str:
    with pytest.raises(ReleaseError) as excinfo:
        make_stub(source, module, PACK, filename=f"solutions/{module}.py")
    message = str(excinfo.value)
    assert "\n" not in message and message.startswith(f"solutions/{module}.py")
    return message


def test_error_no_markers():
    assert "no '### BEGIN SOLUTION'" in _stub_error("def conv2d():\n    return 1\n")


def test_error_begin_without_end():
    source = "def conv2d():\n    ### BEGIN SOLUTION\n    return 1\n"
    assert "line 2: '### BEGIN SOLUTION' is never closed" in _stub_error(source)


def test_error_end_without_begin():
    source = "def conv2d():\n    return 1\n    ### END SOLUTION\n"
    assert "line 3: '### END SOLUTION' without a '### BEGIN SOLUTION'" in _stub_error(source)


def test_error_nested_begin():
    source = ("def conv2d():\n    ### BEGIN SOLUTION\n    x = 1\n    ### BEGIN SOLUTION\n"
              "    return x\n    ### END SOLUTION\n    ### END SOLUTION\n")
    message = _stub_error(source)
    assert "line 4: nested" in message and "line 2" in message


def test_error_region_outside_a_function():
    source = ("def conv2d():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n\n"
              "### BEGIN SOLUTION\nSECRET = 2\n### END SOLUTION\n")
    assert "line 6: solution region is not inside a function" in _stub_error(source)


def test_error_region_no_exercise_owns():
    source = "def helper():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
    assert "line 2: no exercise owns conv.helper" in _stub_error(source)


def test_error_missing_solutions_dir(tmp_path):
    missing = tmp_path / "solutions"
    with pytest.raises(ReleaseError, match=r"^no solutions folder at .*solutions") as excinfo:
        render_stubs(PACK, missing)
    assert "\n" not in str(excinfo.value)
    with pytest.raises(ReleaseError, match="no solutions folder"):
        build_release(tmp_path / "out", solutions_dir=missing)
    assert not (tmp_path / "out").exists()


def test_leaky_solutions_folder_is_refused(tmp_path):
    """A region at module level (a helper that would ship whole) stops stubs and release."""
    leaky = tmp_path / "solutions"
    shutil.copytree(SOLUTIONS, leaky, ignore=shutil.ignore_patterns("__pycache__"))
    blocks = leaky / "blocks.py"
    begin_line = len(blocks.read_text().splitlines()) + 3  # after two blank lines
    blocks.write_text(blocks.read_text() + "\n\n### BEGIN SOLUTION\ndef _secret_helper(x):\n"
                      "    return x * 2 + 1\n### END SOLUTION\n")
    expected = f"solutions/blocks.py line {begin_line}: solution region is not inside a function"
    out = tmp_path / "stubs"
    with pytest.raises(ReleaseError, match=re.escape(expected)):
        generate_stubs(out, PACK, solutions_dir=leaky)
    assert not out.exists()  # all or nothing
    with pytest.raises(ReleaseError, match=re.escape(expected)):
        build_release(tmp_path / "release", solutions_dir=leaky)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["solutions"]  # no staging left


def test_error_existing_out_without_force(tmp_path):
    with pytest.raises(ReleaseError, match="already exists; pass --force"):
        build_release(tmp_path)
    run = subprocess.run([sys.executable, "-m", "grader", "release", str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--force" in lines[0]


def test_release_refuses_to_replace_the_kit(tmp_path):
    repo = _tmp_repo(tmp_path / "kit")  # a copy: a broken guard costs only tmp files
    for out in (repo, tmp_path):
        with pytest.raises(ReleaseError, match="holds the kit itself"):
            build_release(out, force=True, repo=repo)
    assert (repo / "solutions" / "blocks.py").is_file()


# -- the release --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("release") / "day02"
    assert build_release(out) == out.resolve()
    return out.resolve()


def _region_lines() -> list[tuple[str, str]]:
    """(distinctive normalised code of a region line, where) for every solution region."""
    found = []
    for module in PACK.modules:
        lines = _source(module).splitlines()
        for r in _regions(module):
            for no in range(r.begin + 1, r.end):
                code = " ".join(lines[no - 1].split("  #")[0].split())
                if is_distinctive(code):
                    found.append((code, f"solutions/{module}.py line {no}"))
    return found


def test_release_has_no_solution_text(release):
    """No distinctive region line appears anywhere, even inside a longer line; no markers."""
    region_lines = _region_lines()
    assert len(region_lines) > 50  # the rule keeps most of the reference's lines
    for path in (p for p in release.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8", errors="replace")
        flat = "\n".join(" ".join(line.split()) for line in text.splitlines())
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text, path
        for code, where in region_lines:
            assert code not in flat, f"{path.relative_to(release)} repeats {where}"


def test_release_ships_only_public_files(release):
    files = {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()}
    assert {f for f in files if f.startswith("grader/")} == set(public_grader_files(PACK))
    assert not any("solutions" in f or "graders" in f or "strategies" in f for f in files)
    # of the probes, only the figures' measurements ship (pytest exercises --figures)
    probes = f"grader/packs/{PACK.name}/probes"
    assert {f for f in files if "probes/" in f} == {f"{probes}/__init__.py", f"{probes}/figures.py"}
    stubs = {f"exercises/{m}.py" for m in PACK.modules} | {"exercises/__init__.py"}
    assert stubs <= files and {"README.md", "pyproject.toml"} <= files
    data_utils = {p.relative_to(REPO).as_posix() for p in (REPO / "data_utils").glob("*.py")}
    assert data_utils <= files


def test_release_readme_and_pyproject(release):
    tomllib = pytest.importorskip("tomllib")
    readme = (release / "README.md").read_text(encoding="utf-8")
    for ex in PACK.exercises:
        assert f"| `{ex.id}` | {ex.title} |" in readme and f"-m {ex.id}`" in readme
        assert f"| {ex.points} |" in readme
    for needle in ("pip install -e .", "torch==2.14.1 torchvision==0.29.1", "pytest exercises",
                   "Hidden", "log10(max / min)", "He et al.", "Veit et al.", "Yang et al."):
        assert needle.lower() in readme.lower(), needle
    meta = tomllib.loads((release / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["name"] == "day02-exercises"
    assert meta["project"]["entry-points"]["pytest11"] == {"kit": "grader.plugin"}
    deps = " ".join(meta["project"]["dependencies"])
    assert all(d in deps for d in ("torch", "torchvision", "pytest", "hypothesis", "matplotlib",
                                   "numpy"))
    assert meta["tool"]["pytest"]["ini_options"]["addopts"] == "--strict-markers"


def test_student_files_speak_of_the_lesson_not_the_seed(release):
    """Students never hear of "the seed" (the kit's word for the lesson it is built from)."""
    for path in release.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".md"):
            text = path.read_text(encoding="utf-8").lower()
            assert not re.search(r"\bthe seed\b|\bseed's\b", text), path  # not "seeded"


def test_release_ships_the_student_part_of_the_contract(release):
    contract = (release / "docs" / "contract.md").read_text(encoding="utf-8")
    for module in PACK.modules:
        assert f"| `{module}.py` |" in contract
    for ex in PACK.exercises:
        assert f"| `{ex.id}` |" in contract
    assert "What instructors run" not in contract and "results.json" not in contract
    assert "docs/contract.md" in (release / "README.md").read_text(encoding="utf-8")


def test_no_file_cites_a_document_the_kit_does_not_have():
    """Every cited docs page (and the old upper-case contract and design names) exists here."""
    import re
    import subprocess

    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    cited = re.compile(r"\b(docs/[\w.-]+\.md|CONTRACT\.md|DESIGN\.md)")
    broken = []
    for rel in tracked:
        if not rel.endswith((".py", ".md", ".in", ".toml", ".ini", "Makefile", ".sh")):
            continue
        for match in cited.finditer((REPO / rel).read_text(encoding="utf-8", errors="ignore")):
            if not (REPO / match.group(1)).is_file():
                broken.append(f"{rel}: {match.group(1)}")
    assert not broken, broken


def test_leak_check_catches_a_copied_line(release, tmp_path):
    """The builder's own scan finds a solution line pasted (re-indented, comment cut) anywhere."""
    copy = tmp_path / "copy"
    shutil.copytree(release, copy)
    (copy / "exercises" / "tests").mkdir(exist_ok=True)
    (copy / "exercises" / "tests" / "test_x.py").write_text(
        "def f(self, x):\n        out = out + self.shortcut(x)\n")
    source_line = next(no for no, line in enumerate(_source("blocks").splitlines(), 1)
                       if "out = out + self.shortcut(x)  #" in line)
    leaks = find_leaks(copy, solution_fingerprints(PACK))
    assert leaks == [f"exercises/tests/test_x.py line 2 repeats solutions/blocks.py line "
                     f"{source_line}"]


def _tmp_repo(root: Path) -> Path:
    """The parts of the kit a release is built from, copied so they can be broken."""
    for rel in public_grader_files(PACK):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / rel, root / rel)
    shutil.copytree(SOLUTIONS, root / "solutions", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "exercises" / "tests").mkdir(parents=True)
    return root


def test_build_refuses_a_leaky_public_test(tmp_path):
    repo = _tmp_repo(tmp_path / "kit")
    (repo / "exercises" / "tests" / "test_blocks.py").write_text(
        "def expected(x):\n    return F.relu(out)\n")
    out = tmp_path / "out"
    with pytest.raises(ReleaseError, match=r"would leak solution text: exercises/tests/"
                       r"test_blocks.py line 2 repeats solutions/blocks.py line \d+$"):
        build_release(out, repo=repo)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kit"]  # nothing written, no staging


def test_build_refuses_a_private_import_in_the_public_grader(tmp_path):
    repo = _tmp_repo(tmp_path / "kit")
    (repo / "grader" / "grade.py").write_text("")
    plugin = repo / "grader" / "plugin.py"
    plugin.write_text(plugin.read_text() + "\n\ndef _late():\n    from grader.grade import x\n")
    with pytest.raises(ReleaseError, match=r"grader/plugin.py imports grader.grade, which the "
                       "release does not ship"):
        build_release(tmp_path / "out", repo=repo)


def _release_env(release: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON"))}
    env.update(PYTHONPATH=str(release), PYTHONNOUSERSITE="1", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    return env


def test_release_imports_its_own_grader(release):
    """The plugin imports with only the public files: the release's grader, not the kit's."""
    code = ("import sys, grader.plugin, exercises\n"
            "print(*sorted(m.__file__ for n, m in sys.modules.items()\n"
            "              if n.split('.')[0] in ('grader', 'exercises', 'solutions')), sep='\\n')")
    run = subprocess.run([sys.executable, "-c", code], cwd=release, env=_release_env(release),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    files = [Path(line) for line in run.stdout.splitlines()]
    assert Path(release, "grader", "plugin.py") in files
    assert all(f.is_relative_to(release) for f in files), files


def test_release_runs_its_own_self_check(release):
    """``pytest exercises`` in the release collects the public tests; stubs fail them."""
    assert len(list((release / "exercises" / "tests").glob("test_*.py"))) == len(PACK.modules)
    run = subprocess.run([sys.executable, "-m", "pytest", "exercises", "-q", "-p",
                          "no:cacheprovider", "-p", "grader.plugin"], cwd=release,
                         env=_release_env(release), capture_output=True, text=True, timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 1, output  # tests ran and failed: not a usage or collection error
    assert re.search(r"\b\d+ failed\b", output), output
    assert "not implemented" in output and "exercise scores" in output
