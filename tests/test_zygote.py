"""The forked supervisor (grader/sandbox/zygote.py): when it is used, and what it never carries.

A supervisor forked from the grading process shares that process's memory, so the fork is
taken only from a clean process: these tests show the clean re-exec drops credentials from
the environment block, that secrets or threads refuse the fork, and, end to end, that student
code in a forked child finds neither an environment credential nor the solutions in its own
memory, and that nothing one student leaves behind reaches the next one's grade.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from grader.batch.run import BatchOptions, run_batch
from grader.sandbox import zygote
from grader.sandbox.tiers import DISABLE_ENV, detect
from tests.corpus import REPO, SOLUTIONS

pytestmark = pytest.mark.slow  # forked supervisors and warm batch servers end to end


def test_plain_environment_keeps_settings_and_drops_credentials():
    env = {"PATH": "/bin", "HOME": "/root", "KIT_ZYGOTE": "1", "LC_ALL": "C",
           "JUPYTERHUB_API_TOKEN": "t", "AWS_SECRET_ACCESS_KEY": "k", "GITHUB_TOKEN": "g",
           "KIT_GRADER_SECRET": "s"}
    assert zygote.plain_environment(env) == {"PATH": "/bin", "HOME": "/root", "KIT_ZYGOTE": "1",
                                             "LC_ALL": "C"}


def test_clean_environment_re_execs_without_the_credential(tmp_path):
    script = tmp_path / "entry.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(REPO)!r})
        from grader.sandbox import zygote
        zygote.clean_environment([__file__])
        block = open("/proc/self/environ", "rb").read()
        print(zygote._clean_start, "COURSE_TOKEN" in os.environ, b"tok-" in block)
    """))
    env = {**os.environ, "COURSE_TOKEN": "tok-" + secrets.token_hex(8)}
    env.pop(zygote.DISABLE_ENV, None)
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.split() == ["True", "False", "False"], done.stderr


def test_no_fork_from_a_process_that_is_not_clean(monkeypatch):
    monkeypatch.setattr(zygote, "_clean_start", False)
    assert "plain environment" in zygote.unsafe_reason()
    monkeypatch.setattr(zygote, "_clean_start", True)
    import solutions.conv  # noqa: F401  (this test process has the solutions loaded)

    assert "secret modules are loaded" in zygote.unsafe_reason()
    monkeypatch.setenv(zygote.DISABLE_ENV, "0")
    assert zygote.unsafe_reason() == f"{zygote.DISABLE_ENV}=0"


# Student code that looks for what a fork could have carried over, and says what it found.
SNOOP = '''

_SAID = []


def conv_output_size(*args, **kwargs):
    if _SAID:  # scan once: every later example gets the same answer
        raise RuntimeError(_SAID[0])
    import ctypes, re, sys
    canary = b"CANARY-" + b"1234567"  # built at run time: proves the scan reads memory
    token = bytes.fromhex("{token_hex}")  # in two halves: never whole in this process
    head, tail = token[:len(token) // 2], token[len(token) // 2:]
    del token
    found = dict(canary=False, token=False)
    with open("/proc/self/maps") as maps:  # /proc/self/mem is root's: read it in process
        for line in maps:  # the environment block is on the stack: rw too
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) rw", line)
            if not m or "[vvar" in line or "[vsyscall" in line:
                continue
            block = ctypes.string_at(int(m[1], 16), int(m[2], 16) - int(m[1], 16))
            found["canary"] |= canary in block
            at = block.find(head)
            while at >= 0 and not found["token"]:
                found["token"] = block[at + len(head):at + len(head) + len(tail)] == tail
                at = block.find(head, at + 1)
    solutions = sorted(n for n in sys.modules if n.startswith("solutions")
                       or ".graders" in n)
    _SAID.append(f"SNOOP forked={{'pytest' in sys.modules}} canary={{found['canary']}} "
                 f"token={{found['token']}} secrets={{solutions}}")
    raise RuntimeError(_SAID[0])
'''


@pytest.mark.skipif(not detect().usable or "uid" not in detect().pieces,
                    reason="needs root (the uid tier)")
def test_a_forked_child_finds_no_credential_and_no_solutions(tmp_path):
    """uid + seccomp only (no Landlock), so the child may read /proc/self: the weakest tier
    that forks, and the one where a leak would show."""
    token = "tok-" + secrets.token_hex(12)
    sub = tmp_path / "sub"
    sub.mkdir()
    for src in SOLUTIONS.glob("*.py"):
        (sub / src.name).write_text(src.read_text())
    with open(sub / "conv.py", "a") as f:
        f.write(SNOOP.format(token_hex=token.encode().hex()))
    env = {**os.environ, "COURSE_API_TOKEN": token, DISABLE_ENV: "namespaces,landlock"}
    env.pop(zygote.DISABLE_ENV, None)
    done = subprocess.run([sys.executable, "-m", "grader", "grade", str(sub), "--out",
                           str(tmp_path / "out"), "--only", "conv_output_size"],
                          env=env, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = (tmp_path / "out" / "results.json").read_text()
    said = set(json.loads(report)["tests"][0]["output"].split())
    assert {"forked=True", "canary=True", "token=False", "secrets=[]"} <= said, report[:1500]


# Student A leaves things behind; student B, graded next by the same worker, looks for them.
LEAVE = '''

def conv_output_size(*args, **kwargs):
    import os, pathlib, subprocess, sys, tempfile, torch
    for folder in (os.environ.get("HOME", "/tmp"), tempfile.gettempdir(), "/tmp", "/dev/shm"):
        try:
            pathlib.Path(folder, "left-by-a.txt").write_text("answers")
        except OSError:
            pass
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)  # left-by-a"],
                     start_new_session=True)
    os.environ["LEFT_BY_A"] = "1"
    torch.nn.functional.left_by_a = True
    sys.modules["left_by_a"] = sys
    return _ok(*args, **kwargs)
'''
LOOK = '''

def conv_output_size(*args, **kwargs):
    import os, pathlib, sys, tempfile, torch
    seen = [str(p) for f in (os.environ.get("HOME", "/tmp"), tempfile.gettempdir(), "/tmp",
                             "/dev/shm")
            for p in pathlib.Path(f).glob("left-by-a.txt")]
    for pid in os.listdir("/proc"):
        try:
            if b"left-by-a" in open(f"/proc/{pid}/cmdline", "rb").read():
                seen.append(f"process {pid}")
        except OSError:
            pass
    seen += ["env"] * ("LEFT_BY_A" in os.environ)
    seen += ["torch"] * hasattr(torch.nn.functional, "left_by_a")
    seen += ["module"] * ("left_by_a" in sys.modules)
    if seen:
        raise RuntimeError(f"LEFTOVER {seen}")
    return _ok(*args, **kwargs)
'''


@pytest.mark.parametrize("tier_off", ["namespaces,landlock", ""], ids=["forked", "default"])
def test_nothing_one_student_leaves_reaches_the_next(tmp_path, monkeypatch, tier_off):
    if tier_off and "uid" not in detect().pieces:
        pytest.skip("needs root (the uid tier)")
    monkeypatch.setenv(DISABLE_ENV, tier_off)
    cls = tmp_path / "class"
    for student, extra in (("a_leaves", LEAVE), ("b_looks", LOOK)):
        folder = cls / student
        folder.mkdir(parents=True)
        for src in SOLUTIONS.glob("*.py"):
            (folder / src.name).write_text(src.read_text())
        text = (folder / "conv.py").read_text().replace("def conv_output_size(",
                                                        "def _ok(", 1)
        (folder / "conv.py").write_text(text + extra)
    result = run_batch(cls, tmp_path / "out", BatchOptions(only=("conv_output_size",), jobs=1,
                                                             quiet=True))
    assert sorted(result.graded) == ["a_leaves", "b_looks"] and not result.errors
    for student in ("a_leaves", "b_looks"):
        report = json.loads((tmp_path / "out" / student / "results.json").read_text())
        assert report["score"] == report["max_score"], json.dumps(report)[:1500]
    leftovers = [line for line in Path("/proc").glob("[0-9]*/cmdline")
                 if b"left-by-a" in _read(line)]
    assert not leftovers
    servers = {json.loads((tmp_path / "out" / s / ".batch.json").read_text())["timings"]
               ["warm_server"] for s in ("a_leaves", "b_looks")}
    assert len(servers) == 1 and servers.pop() > 0  # both forked from one warm server


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
