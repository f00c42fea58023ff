"""Starting a sandbox: the bubblewrap command line, or a confined supervisor without namespaces.

What a worker sees (read-only unless noted): the Python installation and the virtual
environment, system libraries, a kit folder holding only the worker package, the probe API and
the pack's probes, the submission, and its scratch folder (writable). Not the solutions, not the
hidden graders, not the report folder, no network. Under bubblewrap that is a new mount and PID
namespace; without namespaces (tiers.py) each child drops to a uid of its own and confines
itself with Landlock and seccomp (worker/confine.py) before it imports the submission.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from grader import limits
from grader.manifest import Pack
from grader.sandbox import paths
from grader.sandbox.tiers import Tier

GRADER_DIR = Path(__file__).resolve().parents[1]
UNPRIVILEGED = 65534  # "nobody": as root under bubblewrap, the worker drops to it
# The untrusted side, exactly (grader/sandbox/worker/__init__.py): the worker package and the
# probe API; each pack adds its manifest and probes. No solutions, no hidden graders.
KIT_FILES = ("__init__.py", "probes.py", "manifest.py", "limits.py", "packs/__init__.py",
             "sandbox/__init__.py")
WORKER_PACKAGE = "sandbox/worker"


@dataclass
class Limits:
    address_space: int = limits.ADDRESS_SPACE_BYTES  # (grader/limits.py says why, each)
    cpu_seconds: int = limits.CPU_SECONDS  # per exercise child
    file_size: int = limits.FILE_SIZE_BYTES
    processes: int = limits.PROCESSES  # threads count too
    probe_timeout: float = limits.PROBE_TIMEOUT_S  # unless the probe asks for more

    def as_dict(self) -> dict:
        return {"address_space": self.address_space, "cpu_seconds": self.cpu_seconds,
                "file_size": self.file_size, "processes": self.processes,
                "gpu": bool(gpu_devices())}


def gpu_devices() -> list[str]:
    """The NVIDIA device nodes a worker needs to see the GPU (none on CPU machines)."""
    return sorted(str(p) for p in Path("/dev").glob("nvidia*") if p.is_char_device())


@dataclass
class Plan:
    """How a sandbox will be started: the argv and what isolation it gives."""

    argv: list[str]
    isolated: bool
    warning: str = ""
    env: dict[str, str] = field(default_factory=dict)


def build_kit(dest: Path, pack: Pack) -> Path:
    """Copy the public grader files, the pack's manifest and its probes into ``dest/grader``
    (the pack from wherever it lives: grader/packs/ or a folder on KIT_PACK_PATH)."""
    for rel in KIT_FILES:
        target = dest / "grader" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(GRADER_DIR / rel, target)
    shutil.copytree(GRADER_DIR / WORKER_PACKAGE, dest / "grader" / WORKER_PACKAGE,
                    ignore=shutil.ignore_patterns("__pycache__"))
    packed = dest / "grader" / "packs" / pack.name
    packed.mkdir(parents=True)
    shutil.copy(pack.root / "__init__.py", packed / "__init__.py")
    shutil.copytree(pack.root / "probes", packed / "probes",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return dest


SANDBOX_MOUNTS = ("/kit", "/submission", "/scratch")  # what bwrap mounts over its view


@functools.lru_cache(maxsize=1)
def bwrap_problem() -> str:
    """Empty if bubblewrap works here, else why not (cached: checked once per process)."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "bubblewrap (bwrap) is not installed"
    for root in [*paths.python_roots(), Path(sys.executable)]:
        if any(root.is_relative_to(mount) for mount in SANDBOX_MOUNTS):
            return (f"Python lives under {root}, which the sandbox mounts over "
                    f"({', '.join(SANDBOX_MOUNTS)}): install it elsewhere")
    probe = [exe, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "--die-with-parent"]
    if os.getuid() != 0:
        probe += ["--unshare-user"]
    try:
        done = subprocess.run(probe + ["true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap could not start: {exc}"
    if done.returncode != 0:
        return f"bwrap could not start: {done.stderr.decode(errors='replace').strip()[:200]}"
    return ""


@functools.lru_cache(maxsize=1)
def bwrap_sizes_tmpfs() -> bool:
    """bwrap knows --size (0.8 and later; Ubuntu 22.04 ships 0.6)."""
    try:
        done = subprocess.run([shutil.which("bwrap") or "bwrap", "--help"], capture_output=True,
                              text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--size" in done.stdout


def _dirs_for(path: Path, made: set[Path]) -> list[str]:
    """bwrap args creating the ancestors of ``path`` as traversable (0755) folders."""
    args = []
    for parent in reversed(path.parents[:-1]):
        if parent not in made:
            made.add(parent)
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def sandbox_env(threads: int) -> dict[str, str]:
    """The scrubbed environment of a worker: nothing of the grader's leaks in."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
           "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           # is_available() through NVML: the supervisor forks children after asking, and a
           # CUDA driver initialised before fork() is unusable in the child
           "PYTORCH_NVML_BASED_CUDA_CHECK": "1"}
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    return env


def plan(kit: Path, submission: Path, scratch: Path, req_fd: int, rep_fd: int,
         limits: Limits, tier: Tier, threads: int = 1, package: str = "exercises") -> Plan:
    def worker(kit: Path | str, submission: Path | str, scratch: Path | str) -> list[str]:
        return [sys.executable, "-I", f"{kit}/grader/{WORKER_PACKAGE}/supervisor.py",
                "--kit", str(kit), "--submission", str(submission), "--scratch", str(scratch),
                "--package", package,
                "--req-fd", str(req_fd), "--rep-fd", str(rep_fd),
                "--limits", json.dumps(limits.as_dict())]

    env = sandbox_env(threads)
    if not tier.namespaces:
        return _confined(worker(kit, submission, scratch), kit, submission, scratch, tier, env)
    argv = worker(*SANDBOX_MOUNTS)
    if "seccomp" in tier.pieces:  # the namespaces are the wall; seccomp closes what they
        argv += ["--confine", json.dumps({"seccomp": True})]  # do not (AF_VSOCK, SysV IPC)
    return _bubblewrap(argv, kit, submission, scratch, env)


def make_dir(path: Path, mode: int) -> None:
    """``path`` as a folder of ``mode``, inside a folder a worker can write: made or reused,
    never followed (chmod goes through an O_NOFOLLOW descriptor); a symlink or file that a
    worker put in its place is removed, not opened."""
    for _ in range(3):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            try:
                os.unlink(path)  # the link itself, never its target
            except OSError:
                pass
            continue
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        return
    raise RuntimeError(f"could not make the folder {path}: something keeps replacing it")


def _confined(argv: list[str], kit: Path, submission: Path, scratch: Path, tier: Tier,
              env: dict[str, str]) -> Plan:
    """No namespaces: the supervisor runs as we do; its children confine themselves."""
    home = scratch / "home"  # made again after a worker killed the supervisor: never followed
    make_dir(home, 0o1777)
    env.update(HOME=str(home), TMPDIR=str(home), USER="student", LOGNAME="student")
    spec = {"uid_base": paths.UID_BASE if "uid" in tier.pieces else None,
            "landlock": "landlock" in tier.pieces, "seccomp": "seccomp" in tier.pieces,
            "read": paths.readable([kit, submission]) + gpu_devices()
            + (["/proc/driver/nvidia"] if gpu_devices() else []),
            "write": [str(scratch), os.devnull] + gpu_devices()}
    warning = "" if tier.usable else (
        "WARNING: student code ran WITHOUT isolation (--allow-unsandboxed): it could read the "
        "solutions and change the grader. Install bubblewrap, or use Linux >= 5.13 with "
        "Landlock, to grade untrusted code.")
    return Plan(argv + ["--confine", json.dumps(spec)], tier.usable, warning, env)


def _bubblewrap(worker: list[str], kit: Path, submission: Path, scratch: Path,
                env: dict[str, str]) -> Plan:
    kit_at, submission_at, scratch_at = SANDBOX_MOUNTS
    binds = ["--ro-bind", str(kit), kit_at, "--ro-bind", str(submission), submission_at,
             "--bind", str(scratch), scratch_at]
    return Plan(bubblewrap_argv(binds, worker + ["--pid-namespace"], env), True, "", env)


def bubblewrap_argv(binds: list[str], command: list[str], env: dict[str, str]) -> list[str]:
    """bwrap running ``command`` unprivileged in new namespaces, seeing the system, Python
    (less hidden packages) and ``binds`` (more bwrap arguments); also the tier's self-test."""
    made: set[Path] = {Path("/")}
    bwrap = shutil.which("bwrap")
    assert bwrap is not None  # this tier: bwrap_problem() found it
    argv = [bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--new-session",
            "--clearenv"]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    # /tmp: RAM of the container's; sized to what an exercise may leave (limits.py), where
    # bwrap can size a tmpfs (0.8 and later), else watched by the supervisor alone
    size = ["--size", str(limits.SCRATCH_MAX_BYTES)] if bwrap_sizes_tmpfs() else []
    argv += ["--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", *size, "--tmpfs", "/tmp"]
    if Path("/etc/ld.so.cache").is_file():  # ctypes finds libseccomp with `ldconfig -p`
        argv += ["--perms", "0755", "--dir", "/etc",
                 "--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
        made.add(Path("/etc"))
    for link in ("lib", "lib64", "bin", "sbin", "lib32"):
        host = Path("/") / link
        if host.is_symlink():
            argv += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            argv += ["--ro-bind", str(host), str(host)]
    made.update(Path(p) for p in ("/usr", "/tmp", "/proc", "/dev"))
    for node in gpu_devices():  # the smoke test's GPU path; read-only /sys for the driver
        argv += ["--dev-bind", node, node]
    if gpu_devices():
        argv += ["--ro-bind-try", "/sys", "/sys"]
        made.add(Path("/sys"))
    roots = [r for r in paths.python_roots() if not r.is_relative_to("/usr")]
    for root in roots:
        argv += _dirs_for(root, made) + ["--ro-bind", str(root), str(root)]
    for hidden in paths.hidden_dirs(roots + [Path("/usr")]):
        argv += ["--tmpfs", str(hidden)]
    argv += binds
    if os.getuid() == 0:  # drop root inside the sandbox: no capabilities, no setuid back
        argv += ["--", shutil.which("setpriv") or "/usr/bin/setpriv",
                 f"--reuid={UNPRIVILEGED}", f"--regid={UNPRIVILEGED}", "--clear-groups",
                 "--no-new-privs"]
    else:
        argv[1:1] = ["--unshare-user", "--cap-drop", "ALL"]
        argv += ["--"]
    return argv + command


def kill_uid(uid: int) -> None:
    """Kill every process of ``uid`` (root only): kill(-1) as that uid reaches all of them.

    Each round stops them all first (a stopped process cannot fork), then kills them; rounds
    repeat until /proc shows none, so a fork bomb cannot refill faster than it is emptied.
    """
    if os.getuid() != 0 or not _processes_of(uid):  # the usual case: nothing to kill
        return
    for _ in range(20):
        subprocess.run(["/bin/sh", "-c", "kill -STOP -1; kill -KILL -1; true"], user=uid,
                       group=uid, extra_groups=[], env={"PATH": "/usr/bin:/bin"},
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False, timeout=60)
        if not _processes_of(uid):
            return


SHARED_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm")


def remove_files_of(uid: int) -> None:
    """Remove what ``uid`` left in the world-writable folders (only a tier without Landlock
    lets a worker write there): the next student must not find it."""
    if os.getuid() != 0:
        return
    for folder in SHARED_WRITABLE:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass


def remove_ipc_of(uid: int, kit: Path) -> None:
    """Remove the SysV IPC objects ``uid`` owns or created (root only; a tier without the
    seccomp piece lets a worker make them, and they outlive it). As that uid: a container's
    root lacks CAP_SYS_ADMIN, which removing another user's objects needs; ``kit`` (the
    sandbox's, readable by it) holds the script."""
    if os.getuid() != 0 or not ipc_objects(uid):  # the usual case: none
        return
    script = kit / "grader" / WORKER_PACKAGE / "confine.py"  # remove_ipc(), run as ``uid``
    subprocess.run([sys.executable, "-I", str(script), "--remove-ipc", str(uid)], user=uid,
                   group=uid, extra_groups=[], env={"PATH": "/usr/bin:/bin"},
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False, timeout=60)


def ipc_objects(uid: int) -> list[tuple[str, int]]:
    """(kind, id) of the SysV IPC objects of this IPC namespace that ``uid`` owns or created
    (as confine.ipc_objects, which runs on the worker's side of the boundary)."""
    found = []
    for kind in ("shm", "msg", "sem"):
        try:
            head, *rows = [line.split() for line in
                           Path(f"/proc/sysvipc/{kind}").read_text().splitlines() if line]
        except (OSError, ValueError):  # no /proc, or a kernel without SysV IPC
            continue
        for row in rows:
            fields = dict(zip(head, row, strict=False))
            if str(uid) in (fields.get("uid"), fields.get("cuid")):
                found.append((kind, int(row[1])))
    return found


def remove_tree(root: Path) -> None:
    """Remove a sandbox's folder, scratch included, without following a link a worker made
    (tempfile's cleanup, on a PermissionError, chmods the path it failed on, following a
    symlink planted there): worker/scratch.py's removal, the supervisor's between exercises."""
    from grader.sandbox.worker.scratch import remove_folder

    remove_folder(str(root))


def _processes_of(uid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.stat(f"/proc/{entry}").st_uid == uid:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    if f.read().rsplit(b")", 1)[1].split()[0] != b"Z":
                        found.append(int(entry))
        except (OSError, IndexError):
            pass
    return found


def protect(*secrets: Path) -> None:
    """As root, take "other" permissions off secret folders: the worker's uid is an "other".

    Landlock already denies them; the mode bits hold even where Landlock is missing.
    """
    if os.getuid() != 0:
        return
    for path in secrets:
        try:
            mode = path.stat().st_mode
            if mode & 0o007:
                os.chmod(path, mode & ~0o007)
        except OSError:
            pass
