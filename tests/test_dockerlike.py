"""The Docker-like harness (tests/dockerlike.py) does what a default Docker container does.

Where a check could pass for the wrong reason (bwrap or unshare broken on this host anyway,
no Landlock in this kernel), the same command runs outside the harness first as a control.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import dockerlike
from tests.dockerlike import available, require_dockerlike, run

PY = sys.executable
REPO = Path(__file__).resolve().parent.parent
MiB = 2**20
# A syscall's result and errno, printed by a fresh interpreter.
SYSCALL = ("import ctypes, errno; libc = ctypes.CDLL(None, use_errno=True); "
           "r = libc.syscall({args}); print(r, errno.errorcode.get(ctypes.get_errno(), 0))")
LANDLOCK_ABI = SYSCALL.format(args="444, None, 0, 1")  # landlock_create_ruleset(NULL, 0, VERSION)
SETUID_IN_FORK = """
import os
pid = os.fork()
if pid == 0:
    os.setuid(65534)
    os._exit(0 if (os.getuid(), os.geteuid()) == (65534, 65534) else 1)
raise SystemExit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


@pytest.fixture
def box():
    require_dockerlike()


def touch(megabytes: int) -> list[str]:
    """A Python that fills (so really uses) ``megabytes`` MiB, then exits 0."""
    return [PY, "-c", f"data = b'x' * ({megabytes} << 20); print(len(data))"]


def status_caps(text: str) -> dict[str, int]:
    return {k: int(v, 16) for k, v in (ln.split(":\t") for ln in text.splitlines())
            if k.startswith("Cap")}


def works_outside(argv: list[str]) -> None:
    """The control: ``argv`` succeeds on this host, so its failure inside means something."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        pytest.skip(f"{argv[0]} fails even outside the harness here: {proc.stderr.strip()}")


def leftover_cgroups() -> list[Path]:
    mine = f"{dockerlike.CGROUP_PREFIX}-{os.getpid()}-*"
    return [p for root in dockerlike.CGROUP_ROOT.glob("*") for p in root.rglob(mine)]


# -- pure helpers: run anywhere ---------------------------------------------------------------
def test_parse_size_uses_dockers_binary_units():
    assert dockerlike.parse_size("768M") == 768 * MiB
    assert dockerlike.parse_size("1g") == dockerlike.parse_size("1GiB") == 1024 * MiB
    assert dockerlike.parse_size("512k") == 512 * 1024
    assert dockerlike.parse_size("1.5m") == 3 * MiB // 2
    assert dockerlike.parse_size(4096) == dockerlike.parse_size("4096") == 4096
    assert dockerlike.parse_size(None) is None
    with pytest.raises(ValueError, match="not a memory size"):
        dockerlike.parse_size("12x")


def test_docker_capability_mask_is_dockers():
    assert dockerlike.DOCKER_CAP_MASK == 0xA80425FB  # CapBnd of `docker run` with defaults
    assert not dockerlike.DOCKER_CAP_MASK >> dockerlike.CAP_SYS_ADMIN & 1


def test_exit_status_is_the_shells():
    assert [dockerlike.exit_status(c) for c in (0, 3, -9, -15)] == [0, 3, 137, 143]


def test_require_dockerlike_skips_here_but_fails_under_ci(monkeypatch):
    monkeypatch.setattr(dockerlike, "available", lambda: "not root (uid 1000)")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not root"):
        require_dockerlike()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="must run under CI"):
        require_dockerlike()
    monkeypatch.setattr(dockerlike, "available", lambda: "")
    require_dockerlike()  # available: nothing happens


def test_available_says_why_in_one_line():
    assert "\n" not in available()


# -- under the harness ------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["bwrap", "--ro-bind", "/", "/", "true"],
                                  ["unshare", "--user", "true"],
                                  ["unshare", "--mount", "true"]],
                         ids=["bwrap", "unshare-user", "unshare-mount"])
def test_namespaces_are_refused(box, argv):
    works_outside(argv)
    result = run(argv)
    assert result.returncode != 0
    assert "Operation not permitted" in result.stderr


def test_capabilities_are_dockers_and_no_new_privs_stays_off(box):
    result = run(["cat", "/proc/self/status"])
    assert result.returncode == 0, result.stderr
    caps = status_caps(result.stdout)
    sys_admin, setuid = 1 << dockerlike.CAP_SYS_ADMIN, 1 << dockerlike.DOCKER_CAPS["SETUID"]
    assert not caps["CapBnd"] & sys_admin and not caps["CapEff"] & sys_admin
    assert caps["CapBnd"] & setuid and caps["CapEff"] & setuid
    assert caps["CapBnd"] == caps["CapEff"] == caps["CapPrm"] == dockerlike.DOCKER_CAP_MASK
    assert caps["CapInh"] == caps["CapAmb"] == 0
    assert "\nSeccomp:\t2\n" in result.stdout  # filtered ...
    assert "\nNoNewPrivs:\t0\n" in result.stdout  # ... without no_new_privs, as in Docker


def test_a_container_can_still_drop_to_nobody(box):
    result = run([PY, "-c", SETUID_IN_FORK])
    assert result.returncode == 0, result.stderr


def test_clone3_is_enosys_and_threads_fall_back_to_clone(box):
    result = run([PY, "-c", SYSCALL.format(args="435, None, 0") + "\nimport threading\n"
                  "t = threading.Thread(target=print, args=('thread ran',)); t.start(); t.join()"])
    assert result.stdout.split() == ["-1", "ENOSYS", "thread", "ran"], result.stderr


@pytest.mark.parametrize("mode, expected", [("allow", None), ("eperm", "EPERM"),
                                            ("enosys", "ENOSYS")])
def test_landlock_modes(box, mode, expected):
    outside = subprocess.run([PY, "-c", LANDLOCK_ABI], capture_output=True, text=True).stdout
    if int(outside.split()[0]) < 1:
        pytest.skip(f"no Landlock in this kernel: {outside.strip()}")
    result = run([PY, "-c", LANDLOCK_ABI], landlock=mode)
    value, error = result.stdout.split()
    if expected is None:
        assert int(value) >= 1  # the ABI version
    else:
        assert (value, error) == ("-1", expected)


@pytest.mark.slow
def test_over_the_memory_cap_is_oom_killed(box):
    result = run(touch(400), memory="200M")
    assert result.returncode in (-9, 137)
    assert result.oom_kills >= 1
    assert not result.timed_out


def test_under_the_memory_cap_runs_and_reports_its_peak(box):
    result = run(touch(50), memory="200M")
    assert result.returncode == 0, result.stderr
    assert result.oom_kills == 0
    assert 50 * MiB <= result.peak_bytes <= 200 * MiB


@pytest.mark.slow
def test_cpus_caps_the_cpu_share(box):
    spin = ("import time\nstart = time.time()\nwhile time.time() - start < 1.5: pass\n"
            "print(time.process_time() / (time.time() - start))")
    capped = float(run([PY, "-c", spin], cpus=0.5).stdout)
    assert capped < 0.75  # about 0.5; uncapped it is about 1


def test_timeout_kills_the_whole_cgroup(box):
    result = run(["sh", "-c", "sleep 60 & sleep 60"], timeout=0.5)
    assert (result.returncode, result.timed_out) == (-9, True)
    assert result.seconds < 10
    assert not leftover_cgroups()


def test_the_containers_end_kills_what_it_left_and_its_cgroup(box):
    marker = f"kit-leftover-{os.getpid()}"
    result = run(["sh", "-c", f"exec -a {marker} sleep 60 & echo started"])
    assert (result.returncode, result.stdout.strip()) == (0, "started")
    assert result.seconds < 10
    assert subprocess.run(["pgrep", "-f", marker]).returncode == 1  # no such process
    assert not leftover_cgroups()


def test_cli_reports_and_passes_the_exit_status_on(box, tmp_path):
    report = tmp_path / "report.json"
    proc = subprocess.run([PY, "-m", "tests.dockerlike", "--memory", "200M", "--report",
                           str(report), "--", "sh", "-c", "echo out; exit 3"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (3, "out\n")
    assert "peak memory: " in proc.stderr and "oom kills: 0" in proc.stderr
    data = json.loads(report.read_text())
    assert data["returncode"] == 3 and data["peak_bytes"] > 0 and data["oom_kills"] == 0
