"""Sandbox tiers: what a confined worker can and cannot do, which tier is chosen and named, and
the refusal to run untrusted code where nothing confines it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from grader.sandbox import paths
from grader.sandbox.tiers import DISABLE_ENV, SandboxUnavailable, Tier, detect
from grader.sandbox.worker import confine
from tests.corpus import REPO, SOLUTIONS, copy_solutions

ONLY = "conv_output_size,receptive_field"


def grade_cli(submission: Path, out: Path, *extra: str, disable: str = ""):
    env = dict(os.environ, **{DISABLE_ENV: disable})
    return subprocess.run([sys.executable, "-m", "grader", "grade", str(submission), "--out",
                           str(out), "--only", ONLY, *extra], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=600)


# -- the pieces, applied for real in a forked child ------------------------------------------
def confined_child(spec: confine.Spec, checks) -> tuple[dict, dict]:
    """Fork, confine, run ``checks()`` (a dict of results) and report it; the parent also reads
    the child's /proc status while it waits (the child itself may not read /proc)."""
    r, w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            confine.apply(spec, {"cpu_seconds": 60})
            os.write(w, b"confined\n")
            os.read(go_r, 1)  # the parent has looked at us
            os.write(w, json.dumps(checks()).encode())
        except BaseException as exc:  # noqa: BLE001
            os.write(w, json.dumps({"error": repr(exc)}).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as reader:
        first = reader.readline()
        status = {}
        if first == b"confined\n":
            text = Path(f"/proc/{pid}/status").read_text()
            status = {line.split(":")[0]: line.split(":", 1)[1].split()
                      for line in text.splitlines()}
            status["oom_score_adj"] = Path(f"/proc/{pid}/oom_score_adj").read_text().strip()
        os.write(go_w, b"x")
        found = json.loads(first if first != b"confined\n" else reader.read())
    os.waitpid(pid, 0)
    return found, status


def attempts(scratch: Path) -> dict:
    def outcome(fn) -> str:
        try:
            fn()
            return "allowed"
        except OSError as exc:
            return type(exc).__name__

    return {
        "read_solution": outcome(lambda: open(SOLUTIONS / "conv.py").read()),
        "list_repo": outcome(lambda: os.listdir(REPO)),
        "write_scratch": outcome(lambda: (scratch / "x.txt").write_text("ok")),
        "write_tmp": outcome(lambda: Path("/tmp/kit-confine-escape").write_text("x")),
        "inet_socket": outcome(lambda: socket.socket(socket.AF_INET).close()),
        "kill_parent": outcome(lambda: os.kill(os.getppid(), 0)),
        "read_python": outcome(lambda: open(os.__file__).read()),
        "import_torch_module": outcome(lambda: __import__("torch.utils.data")),
    }


@pytest.mark.skipif(os.getuid() != 0, reason="the uid piece needs root")
def test_confined_worker_reaches_only_what_it_may(tmp_path):
    tier = detect(force_fallback=True)
    if not {"uid", "landlock", "seccomp"} <= set(tier.pieces):
        pytest.fail(f"this machine must give the container tier: {tier.gaps()}")
    # as in a real sandbox: a folder the uid can reach (pytest's tmp_path is 0700 above it)
    scratch = Path(tempfile.mkdtemp(prefix="kit-test-scratch-"))
    os.chmod(scratch, 0o777)
    uid = paths.UID_BASE + os.getpid()
    spec = confine.Spec(uid=uid, landlock=True, seccomp=True, read=paths.readable([]),
                        write=[str(scratch), os.devnull])
    found, status = confined_child(spec, lambda: attempts(scratch))
    assert found == {"read_solution": "PermissionError", "list_repo": "PermissionError",
                     "write_scratch": "allowed", "write_tmp": "PermissionError",
                     "inet_socket": "PermissionError", "kill_parent": "PermissionError",
                     "read_python": "allowed", "import_torch_module": "allowed"}, found
    assert status["Uid"] == [str(uid)] * 4 and status["Groups"] == []
    assert status["NoNewPrivs"] == ["1"] and status["Seccomp"] == ["2"]
    assert status["CapEff"] == ["0000000000000000"]
    assert status["oom_score_adj"] == "1000"  # the OOM killer takes student code first
    assert not Path("/tmp/kit-confine-escape").exists()
    shutil.rmtree(scratch)


def test_landlock_alone_keeps_the_grader_out_of_reach(tmp_path):
    """The tier without root: same uid as the grader, still no solutions and no signals out."""
    if "landlock" not in detect(force_fallback=True).pieces:
        pytest.fail("Landlock must work on this machine (Linux >= 5.13)")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    spec = confine.Spec(landlock=True, seccomp=True, read=paths.readable([]),
                        write=[str(scratch), os.devnull])
    found, _ = confined_child(spec, lambda: attempts(scratch))
    assert found["read_solution"] == "PermissionError"
    assert found["write_tmp"] == "PermissionError" and found["write_scratch"] == "allowed"
    assert found["kill_parent"] == "PermissionError"  # Landlock's signal scope
    assert found["inet_socket"] == "PermissionError"


def test_installed_solutions_are_carved_out_of_site_packages(tmp_path):
    """Landlock only allows: a root holding a hidden package is allowed entry by entry."""
    root = tmp_path / "site-packages"
    for name in ("torch", "solutions", "numpy"):
        (root / name).mkdir(parents=True)
    (root / "six.py").write_text("")
    allowed = paths._without(root, [root / "solutions"])
    assert sorted(p.name for p in allowed) == ["numpy", "six.py", "torch"]
    assert paths._without(root, []) == [root]


# -- choosing and naming the tier ------------------------------------------------------------
def test_partial_tier_names_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "namespaces,seccomp")
    tier = detect()
    assert "seccomp" not in tier.pieces and ("seccomp", "left out (KIT_SANDBOX_DISABLE)") \
        in tier.missing
    assert "Not in force: seccomp" in tier.gaps()[0]
    done = grade_cli(copy_solutions(tmp_path / "sub"), tmp_path / "out",
                     disable="namespaces,seccomp")
    assert done.returncode == 0, done.stderr
    output = json.loads((tmp_path / "out" / "results.json").read_text())["output"]
    assert tier.describe() in output and "Not in force: seccomp" in output
    assert tier.describe() in done.stdout  # and on the terminal


@pytest.mark.slow  # three grading subprocesses
def test_no_isolation_refuses_untrusted_code(tmp_path):
    sub = copy_solutions(tmp_path / "sub")
    off = "namespaces,uid,landlock"
    refused = grade_cli(sub, tmp_path / "out", disable=off)
    assert refused.returncode == 2
    line = refused.stderr.strip()
    assert line.startswith("error: refusing to run untrusted code") and "\n" not in line
    assert "--allow-unsandboxed" in line and "bubblewrap" in line
    assert not (tmp_path / "out" / "results.json").exists()  # no false 0 for Gradescope

    allowed = grade_cli(sub, tmp_path / "out", "--allow-unsandboxed", disable=off)
    assert allowed.returncode == 0, allowed.stderr
    output = json.loads((tmp_path / "out" / "results.json").read_text())["output"]
    assert "WITHOUT isolation" in output and "WARNING" in output

    ours = grade_cli(REPO / "exercises", tmp_path / "ours", disable=off)  # `make grade`
    assert ours.returncode == 0, ours.stderr
    assert "WITHOUT isolation" in ours.stdout


def test_tier_words():
    tier = Tier(("uid", "landlock", "seccomp", "rlimits"), (), "no namespaces available: x")
    assert tier.usable and tier.name == "uid+landlock+seccomp+rlimits"
    assert tier.describe() == ("Student code ran: unprivileged uid + Landlock + seccomp + "
                               "rlimits (no namespaces available: x).")
    bare = Tier(("rlimits",), (("landlock", "ENOSYS"),), "no namespaces available: y")
    assert not bare.usable and "WITHOUT isolation" in bare.describe()
    assert "ENOSYS" in str(SandboxUnavailable(bare))


def test_uid_sweep_kills_what_a_worker_left_behind():
    """kill_uid reaches every process of the uid, daemons included (root only)."""
    if os.getuid() != 0:
        pytest.skip("needs root")
    from grader.sandbox.launcher import kill_uid

    uid = paths.UID_BASE + os.getpid() + 7
    daemon = subprocess.Popen(["sleep", "600"], user=uid, group=uid, extra_groups=[],
                              start_new_session=True)
    kill_uid(uid)
    deadline = time.monotonic() + 10
    while daemon.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert daemon.returncode == -signal.SIGKILL


# -- where the kit and Python live must not change the tier ------------------------------------
def test_bubblewrap_self_test_never_hides_python(monkeypatch):
    """CI clones into /check/...: the self-test once mounted its script over /check, hid the
    venv's interpreter, printed nothing, and the tier silently lost seccomp."""
    from grader.sandbox import tiers

    if not shutil.which("bwrap"):
        pytest.skip("bubblewrap is not installed")
    seen: list[list[str]] = []

    def run(argv, **kwargs):
        seen.append(argv)
        raise OSError("not run")

    for top in ("/check", "/tmp", "/kit", "/opt"):
        exe = Path(top) / "venv" / "bin" / "python"
        monkeypatch.setattr(sys, "executable", str(exe))
        monkeypatch.setattr(paths, "python_roots", lambda exe=exe: [exe.parent.parent / "lib"])
        monkeypatch.setattr(tiers.subprocess, "run", run)
        tiers.self_test(["seccomp"], bubblewrap=True)
        argv = seen.pop()
        hidden = [argv[i + 2] for i, word in enumerate(argv)
                  if word in ("--ro-bind", "--bind") and argv[i + 1] != argv[i + 2]
                  and exe.is_relative_to(argv[i + 2])]
        assert not hidden, f"Python in {exe.parent.parent} is hidden by a mount on {hidden}"


def test_python_under_a_sandbox_mount_rules_bubblewrap_out(monkeypatch):
    """Python under /kit would vanish behind the kit's mount: the tier says so instead."""
    from grader.sandbox import launcher

    if not shutil.which("bwrap"):
        pytest.skip("bubblewrap is not installed")
    monkeypatch.setattr(paths, "python_roots", lambda: [Path("/kit/venv/lib")])
    problem = launcher.bwrap_problem.__wrapped__()
    assert "/kit/venv/lib" in problem and "mounts over" in problem
