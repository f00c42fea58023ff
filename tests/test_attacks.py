"""The attack suite: hostile submissions get nothing and harm nothing.

Each attack is the reference solutions plus hostile code in ``conv.py`` (usually a
``conv_output_size`` that attacks when called). It is graded in the sandbox on the attacked
exercise and one control exercise from another module; we assert: 0 on the attacked
exercise, full marks on the control, the grader alive, the report intact, no process of the
submission left, and the solutions and grader files unchanged. Every attack runs in every tier
(tests/sandbox_tiers.py): behind bubblewrap, and without namespaces (uid + Landlock + seccomp),
here and, through tests/test_container.py, inside the Docker-like harness.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from grader.probes import ProbeFailure, probe
from grader.sandbox.launcher import UNPRIVILEGED
from grader.sandbox.paths import UID_BASE
from tests.corpus import REPO, SOLUTIONS
from tests.sandbox_tiers import ALL_TIERS, HANDLE_TIERS, TIERS, grade, use_tier

pytestmark = pytest.mark.slow  # every attack against every sandbox tier

SECRET = "grader-secret-7f3a"  # set in the grader's environment; must never reach a report


@dataclass(frozen=True)
class Attack:
    name: str
    code: str  # appended to conv.py (module level); usually redefines conv_output_size
    attacked: str = "conv_output_size"
    control: str = os.environ.get("KIT_ATTACK_CONTROL", "receptive_field")
    extra_files: tuple[tuple[str, str], ...] = ()
    # a word the attacked exercise's feedback must contain (any one of several)
    expect_in_feedback: str | tuple[str, ...] = ""


def redefine(body: str) -> str:
    """conv_output_size replaced by ``body`` (indented into the function)."""
    return ("\n\ndef conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):\n"
            + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n")


ANSWER = "return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1"


def solved(tmp_path: Path, appended: dict[str, str] | None = None) -> Path:
    """tmp_path/submission: the reference's modules, with code appended to some of them."""
    submission = tmp_path / "submission"
    submission.mkdir()
    for src in SOLUTIONS.glob("*.py"):
        (submission / src.name).write_text(src.read_text() + (appended or {}).get(src.name, ""))
    return submission

LOG_TARGET = "/tmp/kit-log-pwned"  # where the planted log symlinks point


def plants_logs(kind: str) -> str:
    """conv_output_size planting a symlink or FIFO at scratch/supervisor.log (the log's old
    place) and at the control's child log, then killing the supervisor."""
    make = f"os.symlink({LOG_TARGET!r}, path)" if kind == "symlink" else "os.mkfifo(path)"
    control = os.environ.get("KIT_ATTACK_CONTROL", "receptive_field")
    return redefine(f"""
        import os, signal
        home = os.environ.get("HOME", "")
        scratch = "/scratch" if os.path.isdir("/scratch") else os.path.dirname(home)
        for name in ("supervisor.log", "{control}.log"):
            path = os.path.join(scratch, name)
            try:
                os.unlink(path)
            except OSError:
                pass
            {make}
        try:
            os.kill(os.getppid(), signal.SIGKILL)
        except OSError:
            pass
        return 0
        """)


ATTACKS = [
    Attack("imports_solutions", "\nfrom solutions.conv import conv_output_size  # noqa\n",
           expect_in_feedback="could not be imported"),
    Attack("reads_solutions_from_disk", redefine(f"""
        ns = {{}}
        exec(open({str(SOLUTIONS / 'conv.py')!r}).read(), ns)
        return ns["conv_output_size"](size, kernel_size, stride, padding, dilation)
        """), expect_in_feedback=("FileNotFoundError", "PermissionError")),
    Attack("patches_comparisons", textwrap.dedent("""
        import math, torch, torch.testing, numpy.testing
        torch.allclose = lambda *a, **k: True
        torch.equal = lambda *a, **k: True
        torch.testing.assert_close = lambda *a, **k: None
        numpy.testing.assert_allclose = lambda *a, **k: None
        math.isclose = lambda *a, **k: True
        def conv_output_size(*args, **kwargs):
            return 0
        """)),
    Attack("os_exit_mid_probe", redefine("import os\nos._exit(0)"),
           expect_in_feedback="crashed the worker"),
    Attack("sys_exit_mid_probe", redefine("import sys\nsys.exit(0)"),
           expect_in_feedback="sys.exit"),
    Attack("infinite_loop", redefine("while True:\n    pass"), expect_in_feedback="finish"),
    Attack("sleeps_ignoring_sigterm", redefine(
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(10**6)"),
        expect_in_feedback="finish"),
    Attack("allocates_8gb", redefine("x = bytearray(8 << 30)\n" + ANSWER),
           expect_in_feedback="memory"),
    Attack("fork_bomb", redefine("import os\nfor _ in range(64):\n    os.fork()\n" + ANSWER)),
    Attack("orphan_daemon_rewrites_results", textwrap.dedent("""
        import json, os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(2)
                fake = {"score": 100, "max_score": 100, "tests": []}
                for d in ("/scratch", "/tmp", os.getcwd(), "/", "/submission", "/kit"):
                    try:
                        json.dump(fake, open(os.path.join(d, "results.json"), "w"))
                    except OSError:
                        pass
                time.sleep(3600)
            os._exit(0)
        """) + redefine("return 0")),
    Attack("writes_fake_results_everywhere", redefine(f"""
        import json, os
        fake = {{"score": 100, "max_score": 100, "tests": []}}
        for d in ("/", "/tmp", "/scratch", os.getcwd(), {str(REPO)!r},
                  {str(REPO / 'grading-report')!r}, os.path.expanduser("~")):
            try:
                json.dump(fake, open(os.path.join(d, "results.json"), "w"))
            except OSError:
                pass
        return 0
        """)),
    Attack("ships_conftest", redefine("return 0"), extra_files=(
        ("conftest.py", textwrap.dedent("""
            import pytest
            @pytest.hookimpl(wrapper=True)
            def pytest_runtest_makereport(item, call):
                report = yield
                report.outcome = "passed"
                return report
            """)),
        ("pytest.ini", "[pytest]\naddopts = -p no:kit\n"),
        ("sitecustomize.py", "import builtins\nbuiltins.PWNED = True\n"),
        ("evil.pth", "import os; os.system('touch /tmp/pth-pwned')\n"))),
    Attack("lying_eq", redefine("""
        class Always(int):
            def __eq__(self, other):
                return True
            __hash__ = int.__hash__
        return Always(0)
        """), expect_in_feedback="plain data"),
    Attack("lying_eq_importable", textwrap.dedent("""
        class Always(int):
            def __eq__(self, other):
                return True
            __hash__ = int.__hash__
        """) + redefine("return Always(0)"), expect_in_feedback="plain data"),
    Attack("pickle_payload", redefine("""
        import os
        class Boom:
            def __reduce__(self):
                return (os.system, ("touch /tmp/kit-pickle-pwned",))
        return Boom()
        """), expect_in_feedback="plain data"),
    Attack("prints_100mb", redefine("import sys\nsys.stdout.write('x' * (100 << 20))\n"
                                    + ANSWER), expect_in_feedback="output"),
    Attack("ctypes_segfault", redefine("import ctypes\nctypes.string_at(0)"),
           expect_in_feedback="segmentation fault"),
    Attack("runaway_recursion", redefine(
        "return conv_output_size(size, kernel_size, stride, padding, dilation)"),
        expect_in_feedback="Recursion"),
    Attack("kills_its_parent", redefine("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"
                                        "\nos.kill(1, signal.SIGKILL)\n" + ANSWER)),
    Attack("dumps_environment", redefine("import os\nraise RuntimeError(repr(dict(os.environ)))"),
           expect_in_feedback="PATH"),
    Attack("appends_to_grader_files", redefine(f"""
        for path in ({str(SOLUTIONS / 'conv.py')!r}, {str(REPO / 'grader' / 'plugin.py')!r},
                     "/kit/grader/probes.py"):
            try:
                open(path, "a").write("\\nPWNED = True\\n")
            except OSError:
                pass
        return 0
        """)),
    Attack("patches_worker_sanitizer", textwrap.dedent("""
        import sys
        for name, mod in list(sys.modules.items()):
            if name.startswith("grader") and hasattr(mod, "sanitize"):
                mod.sanitize = lambda value, path="result": value
        """) + redefine("return 0")),
    # torch's own convolution with the operator recording switched off: the runtime recorder
    # sees nothing, the static check (grader/static_check.py) reads it in the source
    Attack("conv2d_with_the_recording_off", textwrap.dedent("""
        def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1):
            with torch._C._DisableTorchDispatch():
                return F.conv2d(input, weight, bias, stride, padding, dilation)
        """), attacked="conv2d", expect_in_feedback="torch._C"),
    # ...or in another thread, where the recorder (a thread's dispatch mode) does not look
    Attack("conv2d_in_a_thread", textwrap.dedent("""
        import threading
        def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1):
            box = []
            worker = threading.Thread(target=lambda: box.append(
                F.conv2d(input, weight, bias, stride, padding, dilation)))
            worker.start()
            worker.join()
            return box[0]
        """), attacked="conv2d", expect_in_feedback=("F.conv2d", "threading")),
    # the supervisor's log was a file in scratch that the grader (root) reopened when it
    # restarted a killed supervisor: a symlink there made it create a file where the student
    # chose, a FIFO hung it. The next exercise's child log is planted too (the control's).
    Attack("plants_a_symlinked_log_and_kills_the_supervisor", plants_logs("symlink")),
    Attack("plants_a_fifo_log_and_kills_the_supervisor", plants_logs("fifo")),
    # socket families are an allowlist of AF_UNIX: VSOCK reaches the hypervisor from any
    # namespace, XDP the network card (as root)
    Attack("opens_a_vsock_socket", redefine(
        "import socket\nsocket.socket(socket.AF_VSOCK, socket.SOCK_STREAM).close()\n" + ANSWER),
        expect_in_feedback="PermissionError"),
    Attack("opens_an_xdp_socket", redefine(
        "import socket\nsocket.socket(44, socket.SOCK_RAW).close()\n" + ANSWER),
        expect_in_feedback="PermissionError"),
    Attack("opens_an_inet_socket", redefine(
        "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()\n" + ANSWER),
        expect_in_feedback="PermissionError"),
]


def snapshot() -> dict[str, str]:
    """Hashes of the files an attack must not change: solutions and grader code."""
    files = sorted(SOLUTIONS.glob("*.py")) + sorted((REPO / "grader").rglob("*.py"))
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def sandbox_processes(ours: str) -> list[str]:
    """Processes of this test's sandboxes (their folders are under ``ours``) and everything
    under them, and any process of a worker uid in this container (cgroup) that belongs to no
    sandbox still running (an escaped daemon); not the processes of other sandboxes on the
    machine, nor those of another container graded beside this one (tests/test_container.py
    runs the suites in two at once). A process cannot leave its cgroup without privileges."""
    here = Path("/proc/self/cgroup").read_text()
    procs = {}
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit():
                continue
            status = (entry / "status").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            same_box = (entry / "cgroup").read_text() == here
        except OSError:
            continue
        fields = {line.split(":")[0]: line.split(":", 1)[1].split() for line in
                  status.splitlines() if ":" in line}
        if fields["State"][0] != "Z":  # a zombie is dead; its parent reaps it
            procs[int(entry.name)] = (int(fields["PPid"][0]), int(fields["Uid"][0]), cmd,
                                      same_box)

    def under(pid: int, test) -> bool:
        seen = set()
        while pid in procs and pid not in seen:
            seen.add(pid)
            if test(procs[pid][2]):
                return True
            pid = procs[pid][0]
        return False

    found = []
    for pid, (_, uid, cmd, same_box) in procs.items():
        worker_uid = same_box and os.getuid() == 0 and (uid == UNPRIVILEGED or uid >= UID_BASE)
        if under(pid, lambda c: ours in c) or (worker_uid and not under(
                pid, lambda c: "kit-sandbox-" in c or "/kit/grader/" in c)):
            found.append(f"{pid} (uid {uid}): {cmd[:120]}")
    return found


def leftovers(deadline_s: float = 5.0) -> list[str]:
    ours = tempfile.gettempdir()
    end = time.monotonic() + deadline_s
    while (found := sandbox_processes(ours)) and time.monotonic() < end:
        time.sleep(0.1)
    return found


@pytest.fixture(autouse=True)
def own_tempdir(tmp_path, monkeypatch):  # tmp_path first: pytest picks its root then
    """Each test's sandboxes live in a folder of its own, reachable by the workers' uid (the
    leftover check then sees only this test's processes, even with other grading running)."""
    folder = tempfile.mkdtemp(prefix="kit-attack-")
    os.chmod(folder, 0o755)
    monkeypatch.setattr(tempfile, "tempdir", folder)
    yield folder
    monkeypatch.undo()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=list(TIERS))
def tier(request, monkeypatch):
    return use_tier(request.param, monkeypatch)


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
def test_attack_gets_nothing_and_harms_nothing(attack: Attack, tier, tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_GRADER_SECRET", SECRET)
    submission = solved(tmp_path, {"conv.py": "\n" + attack.code})
    for name, text in attack.extra_files:
        (submission / name).write_text(text)
    before = snapshot()

    report = grade(submission, tmp_path / "report", only=(attack.attacked, attack.control),
                   quiet=True, probe_timeout=3)

    rows = {r.exercise: r for r in report.by_exercise()}
    assert rows[attack.attacked].score == 0, f"{attack.name} scored on {attack.attacked}"
    assert rows[attack.control].score == rows[attack.control].max_score, \
        f"{attack.name} cost the control exercise points"
    saved = json.loads((tmp_path / "report" / "results.json").read_text())
    assert saved["score"] == report.score and len(saved["tests"]) == len(report.tests)
    assert all(set(t) == {"name", "score", "max_score", "status", "output", "visibility", "tags"}
               for t in saved["tests"])
    if attack.expect_in_feedback:
        feedback = " ".join(t.output for t in report.tests if t.exercise == attack.attacked)
        words = attack.expect_in_feedback
        words = (words,) if isinstance(words, str) else words
        assert any(w.lower() in feedback.lower() for w in words), feedback
    assert tier.describe() in report.output  # the report names the tier that ran
    assert SECRET not in (tmp_path / "report" / "results.json").read_text()
    assert snapshot() == before, "an attack changed the solutions or the grader"
    assert not (REPO / "results.json").exists()
    assert not Path("/tmp/kit-pickle-pwned").exists()
    assert not Path("/tmp/pth-pwned").exists()
    assert not os.path.lexists(LOG_TARGET)
    assert leftovers() == [], "processes of the submission outlived grading"


def test_shadowing_torch_changes_nothing(tier, tmp_path):
    """A submission's own torch.py is never imported in place of torch: full marks."""
    submission = solved(tmp_path)
    (submission / "torch.py").write_text("raise ImportError('shadowed!')\n")
    report = grade(submission, tmp_path / "report", only=("conv_output_size",), quiet=True)
    assert report.score == report.max_score


@pytest.mark.parametrize("target", ["/etc/shadow", str(SOLUTIONS / "conv.py")])
def test_symlinked_module_is_ignored(target, tier, tmp_path):
    """A module that is a symlink (to /etc/shadow or to a solution) is never read."""
    submission = tmp_path / "submission"
    submission.mkdir()
    for src in SOLUTIONS.glob("*.py"):
        if src.name != "conv.py":
            (submission / src.name).write_text(src.read_text())
    (submission / "conv.py").symlink_to(target)
    report = grade(submission, tmp_path / "report", only=("conv_output_size", "receptive_field"),
                   quiet=True)
    rows = {r.exercise: r for r in report.by_exercise()}
    assert rows["conv_output_size"].score == 0
    assert rows["receptive_field"].score == rows["receptive_field"].max_score
    assert "symbolic link" in report.output


def test_a_hanging_import_is_paid_for_once_per_module(tier, tmp_path, monkeypatch):
    """blocks.py sleeps forever at import: the first probe says so in words that name the
    module; every later probe of blocks, in any exercise, fails at once without asking the
    sandbox again (otherwise each exercise would pay several timeouts)."""
    from grader.packs.day02.probes import blocks as P
    from grader.sandbox.client import SandboxHandle

    submission = solved(tmp_path, {"blocks.py": "\nimport time\ntime.sleep(10 ** 6)\n"})
    case = {"in": 4, "out": 4, "stride": 1, "batch": 2, "h": 4, "w": 4, "seed": 0}
    with SandboxHandle(submission, timeout_s=2.0) as handle:
        handle.set_context("basic_block", "test_first")
        with pytest.raises(ProbeFailure) as first:
            handle.run(P.run_block, case)
        assert first.value.kind == "timeout"
        assert first.value.message.startswith("importing your module blocks.py")
        monkeypatch.setattr(handle, "_request", lambda *a: pytest.fail("asked the sandbox"))
        handle.set_context("resnet18", "test_later")
        with pytest.raises(ProbeFailure) as later:
            handle.run(P.run_block, case)
        assert later.value is first.value
        handle.set_context("smoke_test", "test_smoke")  # a probe of train.py that uses blocks
        with pytest.raises(ProbeFailure) as user:
            handle.run(trains_with_blocks, {})
        assert user.value is first.value
    assert leftovers() == []


@probe("train", uses=("blocks",))
def trains_with_blocks(mod, case: dict) -> int:
    return 1


# -- nothing persists through the kernel (issue 21) ------------------------------------------
UNIX_ONLY = "\n_solved = conv_output_size\n" + redefine("""
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.close()
    a, b = socket.socketpair()  # the answer goes through an AF_UNIX socket pair
    a.sendall(str(_solved(size, kernel_size, stride, padding, dilation)).encode())
    return int(b.recv(64))
    """)


def test_unix_sockets_still_work(tier, tmp_path):
    """The socket allowlist keeps AF_UNIX (socket and socketpair): full marks through one."""
    submission = solved(tmp_path, {"conv.py": UNIX_ONLY})
    report = grade(submission, tmp_path / "report", only=("conv_output_size",), quiet=True)
    assert report.score == report.max_score, [t.output for t in report.tests]


SYSV_IPC = redefine("""
    import ctypes
    if size == 1:  # make one object of each kind; they would outlive this process
        libc = ctypes.CDLL(None, use_errno=True)
        made = [libc.shmget(0, 1 << 20, 0o1600), libc.msgget(0, 0o1600),
                libc.semget(0, 1, 0o1600)]
        return {"made": made, "errno": ctypes.get_errno()}
    seen = {}
    for kind in ("shm", "msg", "sem"):  # what this IPC namespace holds
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                seen[kind] = [line.split()[1] for line in f.readlines()[1:]]
        except OSError as exc:
            seen[kind] = type(exc).__name__
    return seen
    """)


@pytest.fixture(params=HANDLE_TIERS)
def handle_tier(request, monkeypatch):
    """The tiers a handle driven from this process gives (the forked one is the container
    tier started from a clean process: the same sandbox). Not a skip: the container module
    runs this suite and counts a skip as a failure."""
    return use_tier(request.param, monkeypatch)


@pytest.mark.parametrize("seccomp", ["seccomp", "no_seccomp"])
def test_no_sysv_ipc_object_survives_an_exercise(seccomp, handle_tier, request, tmp_path,
                                                 monkeypatch):
    """With seccomp, a worker cannot make SysV IPC objects; without it (a tier where the
    piece failed), what it made is removed before the next exercise and at the end: by the
    grader as the worker's uid (container), by the supervisor in its own IPC namespace
    (bubblewrap)."""
    import errno

    from grader.packs.day02.probes import conv as P
    from grader.sandbox.client import SandboxHandle
    from grader.sandbox.launcher import ipc_objects
    from grader.sandbox.tiers import DISABLE_ENV, detect

    name, tier = request.node.callspec.params["handle_tier"], handle_tier
    if seccomp == "no_seccomp":
        monkeypatch.setenv(DISABLE_ENV, ",".join(filter(None, (ALL_TIERS[name], "seccomp"))))
    elif "seccomp" not in tier.pieces:
        pytest.fail(f"seccomp is not in force here: {tier.gaps()}")
    assert ("seccomp" in detect().pieces) == (seccomp == "seccomp")
    submission = solved(tmp_path, {"conv.py": SYSV_IPC})

    with SandboxHandle(submission, timeout_s=20.0) as handle:
        handle.set_context("ipc_first", "test_make")
        made = handle.run(P.output_size, {"args": [1, 1]})
        uid = handle._uid()  # the workers' own uid (container tier as root), else None
        if seccomp == "seccomp":
            assert made == {"made": [-1, -1, -1], "errno": errno.EPERM}, made
        else:
            assert min(made["made"]) >= 0, made
            if uid is not None:
                assert len(ipc_objects(uid)) == 3  # there, until the exercise ends
        handle.set_context("ipc_second", "test_look")
        seen = handle.run(P.output_size, {"args": [2, 1]})
        if tier.namespaces:  # the sandbox's own IPC namespace, seen from inside
            assert seen == {"shm": [], "msg": [], "sem": []}, seen
        if uid is not None:
            assert ipc_objects(uid) == []
        handle.set_context("ipc_last", "test_make_again")  # and at the end of the grade
        handle.run(P.output_size, {"args": [1, 1]})
    if uid is not None:
        assert ipc_objects(uid) == []
    assert leftovers() == []


# -- what an exercise writes is its own, capped, and gone before the next (issue 22) ----------
FILLS_FOLDERS = redefine("""
    import os, tempfile
    places = [tempfile.gettempdir(), os.getcwd()]  # its working folder is its scratch
    places = sorted({p for p in places if os.access(p, os.W_OK)})
    if size == 1:  # a marker in every folder this child may write
        for p in places:
            with open(os.path.join(p, "marker"), "w") as f:
                f.write("left by an earlier exercise")
        return places
    if size == 2:  # which markers are still there
        return [p for p in places if os.path.lexists(os.path.join(p, "marker"))]
    if size == 3:  # entries past the cap, empty files in a folder of their own
        folder = os.path.join(tempfile.gettempdir(), "many")
        os.mkdir(folder)
        for i in range(kernel_size):
            open(os.path.join(folder, str(i)), "w").close()
        return "written"
    try:  # size 4: bytes past the cap, 15 MiB at a time (each file under RLIMIT_FSIZE)
        for i in range(kernel_size):
            with open(os.path.join(tempfile.gettempdir(), f"big{i}"), "wb") as f:
                f.write(b"x" * (15 << 20))
    except OSError as exc:
        return type(exc).__name__
    return "written"
    """)


def test_writable_folders_are_emptied_and_capped(handle_tier, tmp_path):
    """/tmp and scratch hold what one exercise wrote, under a cap in files and bytes, and are
    empty when the next exercise starts (a tmpfs's pages would stay pinned in RAM)."""
    from grader.limits import SCRATCH_MAX_BYTES, SCRATCH_MAX_FILES
    from grader.packs.day02.probes import conv as P
    from grader.sandbox.client import SandboxHandle

    submission = solved(tmp_path, {"conv.py": FILLS_FOLDERS})

    with SandboxHandle(submission, timeout_s=30.0) as handle:
        handle.set_context("writes", "test_write")
        places = handle.run(P.output_size, {"args": [1, 1]})
        assert len(places) == 2, places  # /tmp (or $TMPDIR) and the working folder
        assert handle.run(P.output_size, {"args": [2, 1]}) == places  # kept within one
        handle.set_context("reads", "test_read")
        assert handle.run(P.output_size, {"args": [2, 1]}) == []  # gone in the next

        handle.set_context("many_files", "test_many")
        with pytest.raises(ProbeFailure) as many:
            handle.run(P.output_size, {"args": [3, SCRATCH_MAX_FILES + 50]})
        assert f"more than {SCRATCH_MAX_FILES} files" in many.value.message
        handle.set_context("after_many", "test_read")
        assert handle.run(P.output_size, {"args": [2, 1]}) == []

        handle.set_context("many_bytes", "test_big")
        files = SCRATCH_MAX_BYTES // (15 << 20) + 2
        try:  # over the cap: refused by the tmpfs's size (bubblewrap), or by the supervisor
            assert handle.run(P.output_size, {"args": [4, files]}) == "OSError"
        except ProbeFailure as big:
            assert "MiB" in big.message, big.message
        handle.set_context("after_big", "test_read")
        assert handle.run(P.output_size, {"args": [2, 1]}) == []
    assert leftovers() == []
