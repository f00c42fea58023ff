"""Run a command the way a default Docker container runs it, on a bare machine (root needed).

    python -m tests.dockerlike [--memory 768M] [--cpus 0.5] [--landlock eperm] \\
        [--timeout S] [--report FILE.json] -- CMD ARGS...

    from tests.dockerlike import available, require_dockerlike, run
    require_dockerlike()                          # in a test: skip here, fail under CI
    result = run(["python", "-c", "..."], memory="768M", cpus=0.5, timeout=600)
    result.returncode, result.peak_bytes, result.oom_kills, result.seconds

Gradescope and PrairieLearn run autograders in Docker containers, so the sandbox must hold up
there, where bubblewrap cannot make namespaces. The command runs as Docker's default profile
would run it:

* **root, Docker's default capabilities**: the bounding, effective, permitted and inheritable
  sets cut to ``DOCKER_CAPS`` (no CAP_SYS_ADMIN), the ambient set cleared;
* **seccomp like Docker's default profile** where it matters here: ``unshare``, ``setns``,
  ``mount`` and the other namespace, mount, key, bpf and module calls fail with EPERM, ``clone``
  with any CLONE_NEW* flag too, and ``clone3`` with ENOSYS (glibc then falls back to clone);
  ``--landlock eperm|enosys`` emulates the older profiles and kernels that lacked Landlock;
* **a cgroup** (v1 or v2) with ``--memory`` (no swap either) and ``--cpus`` caps; Gradescope's
  default box is 768 MB and 0.5 CPU. Its peak memory and OOM-kill count are reported, and when
  the command ends whatever it left behind is killed, as when a container stops.

No-new-privileges stays off, as in Docker. The kernel allows that only to a loader holding
CAP_SYS_ADMIN, so the inner process loads the filter first and drops the capabilities after:
join the cgroup, load seccomp, drop capabilities, exec. The outer side starts that inner side
as a fresh interpreter (no ``preexec_fn``: the caller may be a threaded torch process).

The CLI exits with the command's status (128 + N for a signal, as a shell and Docker report
it; 125 when the harness itself failed) and prints ``peak memory: N MiB, oom kills: K`` on
stderr at the end.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

# Docker's default capabilities (moby's oci/caps/defaults.go): CapBnd 00000000a80425fb.
DOCKER_CAPS = {"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6,
               "SETUID": 7, "SETPCAP": 8, "NET_BIND_SERVICE": 10, "NET_RAW": 13,
               "SYS_CHROOT": 18, "MKNOD": 27, "AUDIT_WRITE": 29, "SETFCAP": 31}
DOCKER_CAP_MASK = sum(1 << bit for bit in DOCKER_CAPS.values())
CAP_SYS_ADMIN = 21
# Denied with EPERM by Docker's default profile (to a container without CAP_SYS_ADMIN).
DENIED_SYSCALLS = ("unshare", "setns", "mount", "umount2", "pivot_root", "open_by_handle_at",
                   "keyctl", "add_key", "request_key", "bpf", "kexec_load", "init_module",
                   "finit_module", "delete_module", "fsopen", "fsmount", "move_mount",
                   "open_tree")
# clone's arg 0 holds the flags. CLONE_NEWTIME (0x80) overlaps clone's exit-signal byte, where
# no real signal sets that bit, so blocking it there costs nothing.
CLONE_NEW_FLAGS = {"NEWNS": 0x00020000, "NEWCGROUP": 0x02000000, "NEWUTS": 0x04000000,
                   "NEWIPC": 0x08000000, "NEWUSER": 0x10000000, "NEWPID": 0x20000000,
                   "NEWNET": 0x40000000, "NEWTIME": 0x00000080}
# Numbers, not names: new syscalls share them on every architecture, and an older libseccomp
# may not know the names.
LANDLOCK_SYSCALLS = (444, 445, 446)  # create_ruleset, add_rule, restrict_self
LANDLOCK_MODES = {"allow": None, "eperm": errno.EPERM, "enosys": errno.ENOSYS}
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PREFIX = "kit-dockerlike"
CPU_PERIOD_US = 100_000  # Docker's CFS period
HARNESS_FAILED = 125  # Docker's status when the container could not be started
_names = itertools.count()


class Unavailable(RuntimeError):
    """The harness cannot run here (see :func:`available`)."""


@dataclass(frozen=True)
class Result:
    returncode: int  # negative: killed by that signal (-9 for an OOM kill or a timeout)
    stdout: str
    stderr: str
    peak_bytes: int | None  # the cgroup's peak memory; None when the kernel does not say
    oom_kills: int
    seconds: float
    timed_out: bool = False


# -- sizes ------------------------------------------------------------------------------------
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?\s*", re.IGNORECASE)


def parse_size(size: int | str | None) -> int | None:
    """Bytes from ``768M``, ``1g``, ``512k`` or an int: Docker's binary units (m = MiB)."""
    if size is None or isinstance(size, int):
        return size
    match = _SIZE.fullmatch(size)
    if not match:
        raise ValueError(f"not a memory size: {size!r} (e.g. 768M, 2g, 1048576)")
    number, unit = match.groups()
    value = int(number) if number.isdigit() else float(number)  # big byte counts stay exact
    return int(value * 1024 ** "bkmgt".index(unit.lower() or "b"))


def mib(n_bytes: float | None) -> str:
    return "?" if n_bytes is None else f"{n_bytes / 2**20:.0f}"


# -- cgroups ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cgroup:
    """The cgroup directories one command runs in: one per v1 hierarchy, or one v2 cgroup."""

    version: int
    memory: Path
    cpu: Path | None = None  # v1 only, when --cpus: the cpu controller's own hierarchy

    @property
    def dirs(self) -> list[Path]:
        return [self.memory] + ([self.cpu] if self.cpu and self.cpu != self.memory else [])


def _mounts() -> dict[str, tuple[Path, str]]:
    """Controller -> (mount point, hierarchy root it shows) from mountinfo; "" is cgroup2."""
    found: dict[str, tuple[Path, str]] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        fstype, options = fields[sep + 1], fields[sep + 3].split(",")
        where = (Path(fields[4]), fields[3])
        if fstype == "cgroup2":
            found.setdefault("", where)
        elif fstype == "cgroup":
            for controller in options:
                found.setdefault(controller, where)
    return found


def _membership() -> dict[str, str]:
    """Controller -> this process's cgroup path (from /proc/self/cgroup); "" is cgroup2."""
    paths: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _current_dir(controller: str) -> Path | None:
    """This process's cgroup directory for ``controller`` ("" for cgroup2), if mounted."""
    mount, member = _mounts().get(controller), _membership().get(controller)
    if mount is None or member is None:
        return None
    point, root = mount
    relative = os.path.relpath(member, root) if member.startswith(root) else member
    return (point / relative.lstrip("/")).resolve()


def _parent_dirs() -> tuple[int, Path, Path | None]:
    """(version, where the memory cgroup goes, where the cpu cgroup goes)."""
    memory = _current_dir("memory")
    if memory is not None:
        return 1, memory, _current_dir("cpu")
    unified = _current_dir("")
    if unified is not None and "memory" in _read(unified / "cgroup.controllers").split():
        return 2, unified, unified
    raise Unavailable("no memory cgroup controller (neither cgroup v1 nor v2 offers one)")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _enable_v2_controllers(parent: Path, wanted: Sequence[str]) -> None:
    """v2 hands a controller to children only when the parent's subtree_control lists it."""
    active = _read(parent / "cgroup.subtree_control").split()
    for controller in wanted:
        if controller not in active:
            try:
                _write(parent / "cgroup.subtree_control", f"+{controller}")
            except OSError as exc:  # EBUSY: the parent holds processes (the no-internal rule)
                raise Unavailable(f"cannot enable the {controller} controller below {parent}: "
                                  f"{exc.strerror}") from None


def create_cgroup(memory: int | None = None, cpus: float | None = None) -> Cgroup:
    """A fresh child of this process's cgroup, with the caps set; nothing in it yet."""
    version, mem_parent, cpu_parent = _parent_dirs()
    if cpus is not None and cpu_parent is None:
        raise Unavailable("--cpus needs the cpu cgroup controller, which is not mounted")
    name = f"{CGROUP_PREFIX}-{os.getpid()}-{next(_names)}"
    if version == 2:
        _enable_v2_controllers(mem_parent, ["memory"] + (["cpu"] if cpus is not None else []))
        group = Cgroup(2, mem_parent / name)
    else:
        group = Cgroup(1, mem_parent / name, cpu_parent / name if cpus is not None else None)
    for directory in group.dirs:
        directory.mkdir()
    try:
        _set_limits(group, memory, cpus)
    except OSError:
        remove_cgroup(group)
        raise
    return group


def _set_limits(group: Cgroup, memory: int | None, cpus: float | None) -> None:
    quota = None if cpus is None else max(1000, int(cpus * CPU_PERIOD_US))
    if group.version == 2:
        if memory is not None:
            _write(group.memory / "memory.max", str(memory))
            if (group.memory / "memory.swap.max").exists():
                _write(group.memory / "memory.swap.max", "0")
        if quota is not None:
            _write(group.memory / "cpu.max", f"{quota} {CPU_PERIOD_US}")
        return
    if memory is not None:
        _write(group.memory / "memory.limit_in_bytes", str(memory))
        memsw = group.memory / "memory.memsw.limit_in_bytes"
        if memsw.exists():  # memory + swap: without it the box could swap past its limit
            _write(memsw, str(memory))
    if quota is not None:
        _write(group.cpu / "cpu.cfs_period_us", str(CPU_PERIOD_US))
        _write(group.cpu / "cpu.cfs_quota_us", str(quota))


def peak_bytes(group: Cgroup) -> int | None:
    name = "memory.peak" if group.version == 2 else "memory.max_usage_in_bytes"
    text = _read(group.memory / name).strip()
    return int(text) if text.isdigit() else None


def oom_kills(group: Cgroup) -> int:
    name = "memory.events" if group.version == 2 else "memory.oom_control"
    for line in _read(group.memory / name).splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0


def _pids(group: Cgroup) -> set[int]:
    return {int(p) for d in group.dirs for p in _read(d / "cgroup.procs").split()}


def kill_cgroup(group: Cgroup, patience: float = 30.0) -> None:
    """Stop, then SIGKILL, everything in the cgroup until it is empty (a stopped process
    cannot fork; what was forked meanwhile goes next round)."""
    deadline = time.monotonic() + patience
    while pids := _pids(group):
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {sorted(pids)} survive SIGKILL in {group.memory}")
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        time.sleep(0.01)


def remove_cgroup(group: Cgroup, patience: float = 5.0) -> None:
    """rmdir the cgroup; retried, as the kernel lets go of killed tasks a moment late."""
    deadline = time.monotonic() + patience
    for directory in group.dirs:
        while directory.exists():
            try:
                directory.rmdir()
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)


# -- availability -----------------------------------------------------------------------------
def _cap_effective() -> int:
    for line in _read(Path("/proc/self/status")).splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def available() -> str:
    """"" when the harness can run here, else one line saying why not."""
    if not sys.platform.startswith("linux"):
        return f"needs Linux (cgroups, seccomp), not {sys.platform}"
    if os.geteuid() != 0:
        return f"not root (uid {os.geteuid()}): cgroups and capability sets need root"
    if not _cap_effective() >> CAP_SYS_ADMIN & 1:
        return "root without CAP_SYS_ADMIN (already in a container?): cannot make cgroups"
    try:
        import pyseccomp  # noqa: F401  (raises when libseccomp.so is missing)
    except (ImportError, RuntimeError, OSError) as exc:
        return f"libseccomp missing ({exc}): pip install pyseccomp, apt-get install libseccomp2"
    try:
        remove_cgroup(create_cgroup())  # the honest test: can we make one?
    except (Unavailable, OSError) as exc:
        return f"no memory cgroup controller writable: {exc}"
    return ""


def require_dockerlike() -> None:
    """In a test: skip when the harness cannot run here, but fail under CI, which must cover
    the container setting."""
    import pytest

    problem = available()
    if not problem:
        return
    if os.environ.get("CI"):
        pytest.fail(f"the Docker-like harness must run under CI: {problem}")
    pytest.skip(f"no Docker-like harness here: {problem}")


# -- the outer side ---------------------------------------------------------------------------
def _inner_argv(group: Cgroup, landlock: str, argv: Sequence[str]) -> list[str]:
    spec = {"cgroups": [str(d) for d in group.dirs], "landlock": landlock}
    # -I: the caller's PYTHONPATH and friends cannot break the inner interpreter (they still
    # reach the command); the script path, not -m, so any cwd works.
    return [sys.executable, "-I", str(Path(__file__).resolve()), "--inner", json.dumps(spec),
            "--", *argv]


def _kill_all(proc: subprocess.Popen, group: Cgroup) -> None:
    try:  # the inner side may not have joined its cgroup yet; its session is its group
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    kill_cgroup(group)


def run(argv: Sequence[str], *, memory: int | str | None = None, cpus: float | None = None,
        landlock: str = "allow", env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike | None = None, timeout: float | None = None,
        capture: bool = True) -> Result:
    """Run ``argv`` as a default Docker container would, in a cgroup of its own.

    Whatever is left in the cgroup when ``argv`` exits is killed (a container's end). On a
    timeout the whole cgroup is killed: ``returncode`` -9 and ``timed_out`` True. Output goes
    to files, not pipes, so a leftover process holding them cannot hang the call.
    """
    if landlock not in LANDLOCK_MODES:
        raise ValueError(f"landlock must be one of {', '.join(LANDLOCK_MODES)}, not {landlock!r}")
    if not argv:
        raise ValueError("no command to run")
    problem = available()
    if problem:
        raise Unavailable(problem)
    group = create_cgroup(parse_size(memory), cpus)
    try:
        return _run_in(group, argv, landlock, env, cwd, timeout, capture)
    finally:
        try:
            kill_cgroup(group)
        finally:
            remove_cgroup(group)


def _run_in(group: Cgroup, argv: Sequence[str], landlock: str,
            env: Mapping[str, str] | None, cwd: str | os.PathLike | None,
            timeout: float | None, capture: bool) -> Result:
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        proc = subprocess.Popen(
            _inner_argv(group, landlock, argv), cwd=cwd,
            env=None if env is None else dict(env), start_new_session=True,
            stdin=subprocess.DEVNULL if capture else None,
            stdout=out if capture else None, stderr=err if capture else None)
        timed_out = False
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_all(proc, group)
            proc.wait()
            returncode = -signal.SIGKILL
        seconds = time.monotonic() - started
        kill_cgroup(group)  # before reading the output: nothing writes to it any more
        out.seek(0)
        err.seek(0)
        return Result(returncode, out.read() if capture else "", err.read() if capture else "",
                      peak_bytes(group), oom_kills(group), seconds, timed_out)


# -- the inner side: join the cgroup, load seccomp, drop capabilities, exec --------------------
def _join(cgroups: Sequence[str]) -> None:
    for directory in cgroups:  # first: anything the command does is then accounted
        _write(Path(directory) / "cgroup.procs", str(os.getpid()))


def _load_seccomp(landlock: str) -> None:
    import pyseccomp as sc

    filt = sc.SyscallFilter(sc.ALLOW)
    filt.set_attr(sc.Attr.CTL_NNP, 0)  # as Docker; allowed because we still hold CAP_SYS_ADMIN
    for name in DENIED_SYSCALLS:
        if sc.resolve_syscall(sc.Arch.NATIVE, name) >= 0:  # an old libseccomp lacks fsopen...
            filt.add_rule(sc.ERRNO(errno.EPERM), name)
    for flag in CLONE_NEW_FLAGS.values():  # several rules on one syscall: any one matches
        filt.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    filt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")  # flags behind a pointer: cannot inspect
    if LANDLOCK_MODES[landlock] is not None:
        for number in LANDLOCK_SYSCALLS:
            filt.add_rule(sc.ERRNO(LANDLOCK_MODES[landlock]), number)
    filt.load()


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_LINUX_CAPABILITY_VERSION_3 = 0x20080522
PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 47, 4


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _drop_capabilities() -> None:
    """Bounding set first (needs CAP_SETPCAP, which Docker keeps), then the process's own sets;
    exec as uid 0 then grants exactly the bounding set."""
    libc = ctypes.CDLL(None, use_errno=True)
    last = int(_read(Path("/proc/sys/kernel/cap_last_cap")).strip() or 63)
    for cap in range(last + 1):
        if not DOCKER_CAP_MASK >> cap & 1:
            _check(libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0),
                   f"PR_CAPBSET_DROP {cap}")
    header, data = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    _check(libc.capget(ctypes.byref(header), data), "capget")
    for i, word in enumerate(data):
        keep = DOCKER_CAP_MASK >> (32 * i) & 0xFFFFFFFF
        word.effective &= keep
        word.permitted &= keep
        word.inheritable &= keep
    _check(libc.capset(ctypes.byref(header), data), "capset")
    _check(libc.prctl(PR_CAP_AMBIENT, ctypes.c_ulong(PR_CAP_AMBIENT_CLEAR_ALL), 0, 0, 0),
           "clear the ambient set")


def inner(spec: Mapping, argv: Sequence[str]) -> int:
    """Become the container's process: never returns unless something failed."""
    try:
        _join(spec["cgroups"])
        _load_seccomp(spec["landlock"])
        _drop_capabilities()
    except Exception as exc:  # noqa: BLE001  (any failure: report it, as docker run does)
        print(f"dockerlike: could not set up the container: {exc}", file=sys.stderr)
        return HARNESS_FAILED
    try:
        os.execvp(argv[0], list(argv))
    except OSError as exc:
        print(f"dockerlike: {argv[0]}: {exc.strerror}", file=sys.stderr)
        return 127 if isinstance(exc, FileNotFoundError) else 126
    return HARNESS_FAILED  # not reached: exec replaced this process


# -- CLI --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.dockerlike",
                                usage="%(prog)s [options] -- CMD ARGS...",
                                description="Run CMD as a default Docker container would.")
    p.add_argument("--memory", type=parse_size, default=None,
                   help="memory cap, e.g. 768M (no swap either)")
    p.add_argument("--cpus", type=float, default=None, help="CPU cap, e.g. 0.5")
    p.add_argument("--landlock", choices=list(LANDLOCK_MODES), default="allow",
                   help="the Landlock syscalls: allowed (recent Docker), EPERM or ENOSYS")
    p.add_argument("--timeout", type=float, default=None, help="seconds, then kill it all")
    p.add_argument("--report", default=None, help="write the result as JSON here")
    return p


def exit_status(returncode: int) -> int:
    """A shell's (and Docker's) exit status: 128 + N for death by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--inner"] and argv[2:3] == ["--"]:
        return inner(json.loads(argv[1]), argv[3:])
    parser = build_parser()
    split = argv.index("--") if "--" in argv else len(argv)
    args, command = parser.parse_args(argv[:split]), argv[split + 1:]
    if not command:
        parser.error("no command: put it after --")
    try:
        result = run(command, memory=args.memory, cpus=args.cpus,
                     landlock=args.landlock, timeout=args.timeout, capture=False)
    except (Unavailable, OSError) as exc:
        print(f"dockerlike: {exc}", file=sys.stderr)
        return HARNESS_FAILED
    if args.report:
        Path(args.report).write_text(json.dumps(asdict(result), indent=2) + "\n")
    timed = f", timed out after {result.seconds:.0f} s" if result.timed_out else ""
    print(f"peak memory: {mib(result.peak_bytes)} MiB, oom kills: {result.oom_kills}{timed}",
          file=sys.stderr)
    return exit_status(result.returncode)


if __name__ == "__main__":
    sys.exit(main())
