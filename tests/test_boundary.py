"""The trust boundary is visible in the layout: the untrusted side is grader/sandbox/worker/
(plus the probe API and the pack's probes), exactly what a sandbox's kit holds, and it imports
nothing trusted; trusted code imports from it only the wire format (and the in-process handle
the guards that call student code)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from grader.packs import load_pack
from grader.sandbox.launcher import build_kit
from tests.corpus import REPO

GRADER = REPO / "grader"
WORKER = GRADER / "sandbox" / "worker"
UNTRUSTED_OK = ("grader.probes", "grader.manifest", "grader.limits", "grader.sandbox.worker",
                "grader.packs")


def grader_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {name for name in found if name.startswith(("grader", "solutions"))}


def untrusted_files() -> list[Path]:
    return sorted(WORKER.glob("*.py")) + sorted(GRADER.glob("packs/*/probes/*.py"))


def test_the_untrusted_side_imports_nothing_trusted():
    for path in untrusted_files():
        for name in grader_imports(path):
            assert name.startswith(UNTRUSTED_OK) and not name.startswith(
                tuple(f"grader.packs.{p.name}.graders" for p in (GRADER / "packs").iterdir())
            ), f"{path.relative_to(REPO)} imports {name}"
            assert not name.startswith("solutions"), f"{path.relative_to(REPO)} imports {name}"


def test_trusted_code_imports_only_the_wire_format_from_the_worker():
    """...except zygote.py, which loads the worker package into the grading process on
    purpose: the supervisor it forks from there runs the worker's code (and nothing else).
    ``scratch`` is the link-safe removal both sides need (a sandbox folder, an exercise's
    scratch): standard library only, reading nothing of the worker's."""
    allowed = {"protocol", "wire", "scratch"}
    for path in sorted(GRADER.rglob("*.py")):
        if path.is_relative_to(WORKER) or path in untrusted_files() or \
                path == GRADER / "sandbox" / "zygote.py":
            continue
        for name in grader_imports(path):
            if name.startswith("grader.sandbox.worker."):
                module = name.split(".")[3]
                ok = allowed | ({"guard"} if path == GRADER / "handle.py" else set())
                assert module in ok, f"{path.relative_to(REPO)} imports {name}"


def test_a_sandbox_kit_holds_exactly_the_untrusted_side(tmp_path):
    kit = build_kit(tmp_path, load_pack("day02"))
    shipped = {p.relative_to(kit).as_posix() for p in kit.rglob("*.py")}
    expected = {f"grader/sandbox/worker/{p.name}" for p in WORKER.glob("*.py")}
    expected |= {f"grader/packs/day02/probes/{p.name}"
                 for p in (GRADER / "packs/day02/probes").glob("*.py")}
    expected |= {"grader/__init__.py", "grader/probes.py", "grader/manifest.py", "grader/limits.py",
                 "grader/packs/__init__.py", "grader/sandbox/__init__.py",
                 "grader/packs/day02/__init__.py"}
    assert shipped == expected
    assert not any("solution" in name or "graders" in name for name in shipped)


def test_the_core_imports_no_specific_pack():
    """A new day is a pack, not an edit of the core: nothing in grader/ outside packs/ imports
    grader.packs.<name> (it loads packs by name through grader.packs.load_pack)."""
    packs = {p.name for p in (GRADER / "packs").iterdir() if p.is_dir()}
    for path in sorted(GRADER.rglob("*.py")):
        if path.is_relative_to(GRADER / "packs"):
            continue
        for name in grader_imports(path):
            parts = name.split(".")
            assert not (parts[:2] == ["grader", "packs"] and len(parts) > 2
                        and parts[2] in packs), f"{path.relative_to(REPO)} imports {name}"


def test_a_missing_pack_is_named_with_where_it_was_looked_for():
    with pytest.raises(ValueError, match=r"no course pack named 'day99' \(looked in .*"
                       r"grader/packs.*KIT_PACK_PATH\)"):
        load_pack("day99")
    with pytest.raises(ValueError, match="a pack name is a Python identifier"):
        load_pack("../day02")
