"""Paths a worker can write are never opened, followed or blocked on by the trusted side.

A worker writes its scratch folder. The grader used to keep the supervisor's log there and to
reopen it, as root, whenever it restarted a supervisor that student code had killed: a
symlink in its place made the grader create a file where the student chose, a FIFO hung the
grade. Now the log lives in the sandbox's root folder (the grader's, 0755), is opened once and
read back through the grader's own descriptor; scratch is sticky; a child opens its own log
with O_NOFOLLOW | O_NONBLOCK. One test per path the grader or the supervisor touches.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import sys
import tempfile
import time
from pathlib import Path

import pytest

from grader.probes import ProbeFailure
from grader.sandbox.worker.supervisor import open_log
from tests.corpus import SOLUTIONS
from tests.sandbox_tiers import HANDLE_TIERS, use_tier

pytestmark = pytest.mark.slow  # each test starts a sandbox


@pytest.fixture(params=HANDLE_TIERS)
def tier(request, monkeypatch):
    """The tiers a handle driven from this process gives (the forked one is the container
    tier started from a clean process: same paths)."""
    return use_tier(request.param, monkeypatch)


@pytest.fixture
def target(tmp_path_factory):
    """Where a planted symlink points: nothing may ever appear there."""
    folder = tmp_path_factory.mktemp("target")
    path = folder / "pwned"
    yield path
    assert not os.path.lexists(path), "the grader followed a planted symlink"


def plant(path: Path, kind: str, target: Path) -> None:
    if os.path.lexists(path):
        os.unlink(path)
    if kind == "symlink":
        os.symlink(target, path)
    else:
        os.mkfifo(path)


def kill_supervisor(handle) -> None:
    os.killpg(handle._proc.pid, signal.SIGKILL)
    time.sleep(0.2)


def run_conv(handle, exercise: str):
    from grader.packs.day02.probes import conv as P

    handle.set_context(exercise, f"test_{exercise}")
    return handle.run(P.output_size, {"args": [32, 3, 1, 1, 1]})


def test_scratch_is_sticky_and_the_log_lives_outside_it(tier):
    from grader.sandbox.client import SandboxHandle

    with SandboxHandle(SOLUTIONS) as handle:
        assert run_conv(handle, "first") == 32
        info = os.lstat(handle.scratch)
        assert stat.S_IMODE(info.st_mode) == 0o1777 and info.st_uid == os.getuid()
        root = handle.scratch.parent
        assert stat.S_IMODE(os.lstat(root).st_mode) == 0o755
        log = os.fstat(handle._log_fd)
        assert stat.S_ISREG(log.st_mode) and stat.S_IMODE(log.st_mode) == 0o600
        assert os.path.samestat(log, os.lstat(root / "supervisor.log"))
        assert not os.path.lexists(handle.scratch / "supervisor.log")
        if not tier.namespaces:  # scratch/home: the workers' HOME and TMPDIR
            home = os.lstat(handle.scratch / "home")
            assert stat.S_ISDIR(home.st_mode) and stat.S_IMODE(home.st_mode) == 0o1777


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_a_restarted_supervisor_opens_nothing_in_scratch(kind, tier, target):
    """Planted at the log's old place, at its new one, at scratch/home and at the next
    exercise's child log, then the supervisor killed: the grader restarts it without opening
    any of them, and the next exercise runs."""
    from grader.sandbox.client import SandboxHandle

    with SandboxHandle(SOLUTIONS) as handle:
        assert run_conv(handle, "first") == 32
        root = handle.scratch.parent
        plant(handle.scratch / "supervisor.log", kind, target)
        plant(handle.scratch / "second.log", kind, target)
        if not tier.namespaces:
            shutil.rmtree(handle.scratch / "home")
            plant(handle.scratch / "home", "symlink", target.parent)
        os.rename(root / "supervisor.log", root / "supervisor.log.was")
        plant(root / "supervisor.log", kind, target)  # no worker can: the grader reopens none
        mode_before = stat.S_IMODE(os.stat(target.parent).st_mode)
        kill_supervisor(handle)
        with pytest.raises(ProbeFailure, match="killed the grading worker"):
            run_conv(handle, "first")
        started = time.monotonic()
        assert run_conv(handle, "second") == 32  # restarted
        assert time.monotonic() - started < 60
        assert stat.S_IMODE(os.stat(target.parent).st_mode) == mode_before  # not chmod-ed
        assert b"Traceback" not in os.pread(handle._log_fd, 1 << 16, 0)


def test_a_supervisor_that_cannot_start_is_reported_from_the_grader_s_own_log(
        tier, target, monkeypatch):
    """The startup error's tail comes from the grader's descriptor, with a bound, even with a
    FIFO in scratch where the log used to be."""
    from grader.sandbox import client

    real_plan = client.plan

    def failing_plan(*args, **kwargs):
        how = real_plan(*args, **kwargs)
        how.argv = [sys.executable, "-c", "print('x' * 5000 + 'no torch here'); exit(3)"]
        return how

    monkeypatch.setattr(client, "plan", failing_plan)
    monkeypatch.setenv("KIT_ZYGOTE", "0")  # a fresh process runs the plan's command
    with client.SandboxHandle(SOLUTIONS) as handle:
        plant(handle.scratch / "supervisor.log", "fifo", target)
        with pytest.raises(RuntimeError) as failed:
            handle.wait_ready()
    message = str(failed.value)
    assert message.endswith("no torch here\n") and len(message) < 1000


# -- the child's own log, opened by student-side code in scratch ------------------------------
@pytest.mark.parametrize("kind", ["symlink", "fifo", "folder", "regular"])
def test_a_child_log_is_always_a_regular_file_of_its_own(kind, tmp_path, target):
    path = tmp_path / "exercise.log"
    if kind == "folder":
        path.mkdir()
    elif kind == "regular":
        path.write_text("old output\n")
    else:
        plant(path, kind, target)
    fd = open_log(str(path))  # never blocks, never follows
    try:
        info = os.fstat(fd)
        if kind == "folder":  # cannot be replaced: output goes nowhere
            assert stat.S_ISCHR(info.st_mode)
        else:
            assert stat.S_ISREG(info.st_mode) and os.path.samestat(info, os.lstat(path))
            os.write(fd, b"new\n")
            assert path.read_text() == ("old output\nnew\n" if kind == "regular" else "new\n")
    finally:
        os.close(fd)


# -- removing the sandbox folder ----------------------------------------------------------------
def test_removing_a_sandbox_never_chmods_through_a_planted_symlink():
    """As a non-root grader (workers share its uid): a folder left without write access,
    holding a symlink. tempfile's cleanup would chmod the symlink's target to 0700."""
    from grader.sandbox.launcher import remove_tree
    if os.getuid() != 0:
        pytest.skip("needs root to act as an unprivileged grader")
    uid = 54321
    top = Path(tempfile.mkdtemp(prefix="kit-test-remove-"))  # reachable by that uid
    box, target = top / "kit-sandbox", top / "grader-file"
    (box / "scratch" / "locked").mkdir(parents=True)
    target.write_text("mine")
    os.symlink(target, box / "scratch" / "locked" / "link")
    for path in (top, box, box / "scratch", box / "scratch" / "locked", target):
        os.lchown(path, uid, uid)
    os.chmod(top, 0o755)
    os.chmod(target, 0o644)
    os.chmod(box / "scratch" / "locked", 0o500)
    pid = os.fork()  # the child only removes files: safe in a process with threads
    if pid == 0:
        code = 2
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            remove_tree(box)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    try:
        assert os.waitstatus_to_exitcode(status) == 0
        assert not os.path.lexists(box)
        assert stat.S_IMODE(os.stat(target).st_mode) == 0o644 and target.read_text() == "mine"
    finally:
        shutil.rmtree(top)


# -- staging: only Python modules, never through a link ------------------------------------------
def test_only_python_modules_are_staged(tmp_path):
    """A zip, a .pyc or a .so beside the modules would be code the static check never reads
    (a staged zip put on sys.path ran a silenced recorder): none of them reaches the sandbox."""
    from grader.sandbox.client import stage_submission

    src = tmp_path / "src"
    src.mkdir()
    (src / "conv.py").write_text("x = 1\n")
    (src / "assets.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    (src / "conv.cpython-311.pyc").write_bytes(b"\0" * 16)
    (src / "fast.so").write_bytes(b"\x7fELF")
    (src / "secret.py").symlink_to("/etc/passwd")
    os.mkfifo(src / "fifo.py")
    (src / "__pycache__").mkdir()
    notes = stage_submission(src, tmp_path / "dest")
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == ["conv.py"]
    assert any("secret.py is a symbolic link" in n for n in notes)
    assert any("not staged: assets.zip" in n and "fast.so" in n for n in notes)


def test_scratch_is_measured_and_emptied_without_following_links(tmp_path):
    """The supervisor's look at a worker's folders (worker/scratch.py): a link counts as one
    entry and is removed as a link; what it points at is neither counted nor touched."""
    from grader.sandbox.worker import scratch

    outside = tmp_path / "outside"
    outside.mkdir()
    for i in range(50):
        (outside / f"f{i}").write_bytes(b"x" * 8192)
    box = tmp_path / "scratch"
    (box / "home" / "cache").mkdir(parents=True)
    (box / "home" / "cache" / "fonts.json").write_text("{}")
    (box / "deep" / "er").mkdir(parents=True)
    (box / "deep" / "er" / "data").write_bytes(b"y" * (1 << 20))
    (box / "to_outside").symlink_to(outside)
    (box / "deep" / "to_file").symlink_to(outside / "f0")

    entries, size = scratch.usage([str(box)], max_files=100)
    assert entries == 8  # home, cache, fonts.json, deep, er, data, two links
    assert (1 << 20) <= size < (1 << 20) + 64 * 1024
    assert scratch.over_cap([str(box)], max_files=7, max_bytes=1 << 30).startswith("more than 7")
    assert "MiB" in scratch.over_cap([str(box)], max_files=100, max_bytes=1 << 19)
    assert scratch.over_cap([str(box)], max_files=100, max_bytes=2 << 20) == ""

    scratch.empty(str(box), keep=("home",))
    assert sorted(p.name for p in box.iterdir()) == ["home"]
    assert list((box / "home").iterdir()) == []
    assert len(list(outside.iterdir())) == 50  # the links' targets are untouched


def test_scratch_counts_what_it_cannot_open_as_over_the_cap(tmp_path):
    """Red team: 1,300 sibling folders with files in the last ones, under a low open-file
    limit, once hid their contents from a walk that held one descriptor per sibling; a chain
    nested past the walk's depth is over the cap rather than uncounted."""
    import resource

    from grader.sandbox.worker import scratch

    wide = tmp_path / "wide"
    for i in range(300):
        (wide / f"d{i:04}").mkdir(parents=True)
        for j in range(8):
            (wide / f"d{i:04}" / f"f{j}").touch()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 16, hard))
    try:
        found = scratch.over_cap([str(wide)], max_files=2000, max_bytes=1 << 30)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert found == "more than 2000 files and folders"

    deep = tmp_path / "deep"
    path = deep
    for _ in range(scratch.MAX_DEPTH + 2):
        path = path / "d"
    path.mkdir(parents=True)
    assert "nested more than" in scratch.over_cap([str(deep)], max_files=2000,
                                                  max_bytes=1 << 30)
