"""Confining one worker where namespaces are not available (a Docker container, a laptop).

Each forked student child calls ``apply(spec, limits)`` before it imports the submission:

    oom_score_adj 1000      the kernel's OOM killer takes student code first, never the grader
    rlimits                 CPU, address space, file size, core dumps, processes
    unprivileged uid        root only: a uid of its own (no_new_privs, no groups, no way back)
    Landlock                read: Python, the kit, the submission; write: its scratch folder;
                            no TCP; no signals or abstract sockets outside its own domain
    seccomp                 sockets of AF_UNIX only; no SysV IPC or POSIX message queues
                            (they outlive the process); no io_uring, no ptrace or
                            process_vm_*, no namespace, mount, bpf, keyring or module calls

A piece that is asked for and fails raises ``ConfinementError``: the child then runs no
student code. Which pieces to ask for is decided once, by the grader, from ``self_test``:

    python -I confine.py --self-test '{"uid": 2000000001, "read": [...], "probe_dir": "..."}'

prints ``{"uid": "", "landlock": "", "seccomp": "why not"}`` (empty: it works here; a
"pieces" list in the JSON tests only those). Under bubblewrap the children load the same
seccomp filter (the namespaces do the rest). After each exercise the grader removes the SysV
IPC objects a worker uid left (``remove_ipc``; as that uid, since a container's root may not):

    python -I confine.py --remove-ipc 2000001234

Only the standard library and the two bindings (landlockpy, pyseccomp) are imported here.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import socket
import sys
from dataclasses import dataclass, field
from typing import cast

PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_SET_DUMPABLE = 4
# The one socket family a worker may open (socket, socketpair): AF_UNIX, which stays on this
# machine (Landlock scopes its abstract names; bubblewrap gives it a network namespace of its
# own). Every other family is denied, including those no namespace isolates (AF_VSOCK reaches
# the hypervisor) and those that reach the kernel or the network (INET, NETLINK, PACKET, XDP).
ALLOWED_FAMILY = socket.AF_UNIX
# Syscalls no probe needs and an attacker would: debugging others, namespaces and mounts
# (Docker's own profile denies most of them too), kernel objects, and io_uring, whose
# socket and file operations would bypass the socket rule above.
DENIED_SYSCALLS = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig",
    "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "open_by_handle_at", "name_to_handle_at", "reboot", "swapon", "swapoff", "acct",
    "quotactl", "syslog", "io_uring_setup", "io_uring_enter", "io_uring_register",
    # SysV IPC and POSIX message queues belong to the IPC namespace, not to a process: a
    # container shares one with the grader, so they would outlive the exercise, the grade and
    # the next student (torch and multiprocessing use POSIX shm files, never these). "ipc" is
    # the multiplexer older ABIs (i386) use for all of them.
    "shmget", "shmat", "shmdt", "shmctl", "msgget", "msgsnd", "msgrcv", "msgctl",
    "semget", "semop", "semtimedop", "semctl", "ipc",
    "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
)
CLONE_NEW_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                   0x40000000, 0x00000080)  # NEWNS CGROUP UTS IPC USER PID NET TIME


class ConfinementError(Exception):
    """A protection that was asked for could not be put in force."""


@dataclass
class Spec:
    """What one worker gets; built by the grader (grader.sandbox.launcher), sent as JSON."""

    uid: int | None = None  # drop to this uid (needs root); None: keep ours
    uid_base: int | None = None  # or to uid_base + the supervisor's pid (unique while it lives)
    landlock: bool = False
    seccomp: bool = False
    read: list[str] = field(default_factory=list)  # folders and files it may read
    write: list[str] = field(default_factory=list)  # ... and write (scratch, /dev/null)

    @classmethod
    def from_json(cls, text: str) -> Spec:
        return cls(**json.loads(text))


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def prctl(option: int, value: int) -> None:
    if _libc().prctl(option, value, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise ConfinementError(f"prctl({option}) failed: {os.strerror(err)}")


def oom_victim(score: int = 1000) -> None:
    """Make this process the OOM killer's first choice (raising it needs no privilege)."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(score))
    except OSError:
        pass  # no /proc (or not Linux): the rlimits still bound memory


def set_rlimits(limits: dict, dropping_uid: bool) -> None:
    def cap(which: int, value: int) -> None:
        soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))

    memory = int(limits.get("address_space", 6 << 30))
    # CUDA reserves the device's memory in the address space: cap the heap instead
    cap(resource.RLIMIT_DATA if limits.get("gpu") else resource.RLIMIT_AS, memory)
    cap(resource.RLIMIT_CPU, int(limits.get("cpu_seconds", 300)))
    cap(resource.RLIMIT_FSIZE, int(limits.get("file_size", 16 << 20)))
    cap(resource.RLIMIT_CORE, 0)
    if os.getuid() != 0 or dropping_uid:  # root ignores RLIMIT_NPROC; the uid it drops to won't
        cap(resource.RLIMIT_NPROC, int(limits.get("processes", 512)))


def drop_uid(uid: int) -> None:
    """No supplementary groups, then gid, then uid (real, effective and saved: no way back)."""
    try:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    except OSError as exc:
        raise ConfinementError(f"could not switch to uid {uid}: {exc.strerror}") from None
    if os.getuid() != uid or os.geteuid() != uid:
        raise ConfinementError(f"still uid {os.geteuid()} after switching to {uid}")


def landlock(read: list[str], write: list[str]) -> None:
    """Allow reading ``read``, writing ``write``; deny every other file access and TCP."""
    try:
        from landlockpy import AccessFS, LandlockError, Ruleset, Scope
    except ImportError as exc:
        raise ConfinementError(f"the landlockpy binding is missing ({exc})") from None
    reading = AccessFS.READ_FILE | AccessFS.READ_DIR | AccessFS.EXECUTE
    file_rights = AccessFS.READ_FILE | AccessFS.WRITE_FILE | AccessFS.TRUNCATE \
        | AccessFS.IOCTL_DEV
    try:
        # handled_fs/handled_net None: every right the kernel knows is denied unless allowed;
        # scoped: no signals to (or abstract sockets of) processes outside this domain
        with Ruleset(scoped=Scope.SIGNAL | Scope.ABSTRACT_UNIX_SOCKET) as rules:
            for path in read:
                if os.path.exists(path):
                    rules.allow_path(path, reading if os.path.isdir(path)
                                     else AccessFS.READ_FILE | AccessFS.EXECUTE)
            for path in write:
                if os.path.isdir(path):
                    rules.allow_path(path, rules.handled_fs)
                elif os.path.exists(path):
                    rules.allow_path(path, file_rights)
            rules.restrict(no_new_privs=True)
    except (LandlockError, OSError) as exc:
        raise ConfinementError(f"Landlock: {exc}") from None


def seccomp() -> None:
    """Load the syscall filter (libseccomp; it also sets no_new_privs)."""
    try:
        import pyseccomp as sc
    except (ImportError, RuntimeError) as exc:  # RuntimeError: no libseccomp.so on this system
        raise ConfinementError(f"libseccomp is not available ({exc})") from None
    try:
        rules = sc.SyscallFilter(sc.ALLOW)
        for call in ("socket", "socketpair"):  # arg 0 is the family: an allowlist of one
            rules.add_rule(sc.ERRNO(errno.EACCES), call,
                           sc.Arg(0, sc.NE, int(ALLOWED_FAMILY)))
        for name in DENIED_SYSCALLS:
            try:
                rules.add_rule(sc.ERRNO(errno.EPERM), name)
            except (OSError, ValueError, RuntimeError):
                pass  # unknown to this libseccomp: it is older than the syscall
        for flag in CLONE_NEW_FLAGS:  # threads and fork pass; new namespaces don't
            rules.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
        try:
            rules.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")  # its flags are behind a pointer:
        except (OSError, ValueError, RuntimeError):       # glibc falls back to clone
            pass
        rules.load()
    except OSError as exc:
        raise ConfinementError(f"seccomp: {exc}") from None


def apply(spec: Spec, limits: dict) -> None:
    """Confine this (single-threaded, freshly forked) process; order matters."""
    oom_victim()
    set_rlimits(limits, dropping_uid=spec.uid is not None)
    if spec.uid is not None:
        drop_uid(spec.uid)
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    if spec.landlock:
        landlock(spec.read, spec.write)
    if spec.seccomp:
        seccomp()


# -- the self-test: which pieces work here (run by the grader in a throwaway process) -----------
def _in_fork(test) -> str:
    """Run ``test()`` in a forked child; its return value (why not, or "") comes back."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            why = test() or ""
        except ConfinementError as exc:
            why = str(exc)
        except BaseException as exc:  # noqa: BLE001  (anything is a reason, never a crash)
            why = f"{type(exc).__name__}: {exc}"
        os.write(w, why.encode()[:2000])
        os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 4096):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    why = b"".join(chunks).decode(errors="replace")
    if not why and not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
        why = f"the test process died (status {status})"
    return why


def _test_uid(uid: int, must_read: list[str]) -> str:
    drop_uid(uid)
    for path in must_read:
        try:
            if os.path.isdir(path):
                os.listdir(path)
            else:
                open(path, "rb").close()
        except OSError as exc:
            return (f"uid {uid} cannot read {path} ({exc.strerror}): make the Python "
                    "installation readable by all users (e.g. chmod o+x on its parent folders)")
    return ""


def _test_landlock(read: list[str], probe_dir: str) -> str:
    from landlockpy import abi_version  # raises on kernels and profiles without it

    try:
        abi = abi_version()  # 0 for ENOSYS and EOPNOTSUPP
    except OSError as exc:
        if exc.errno == errno.EPERM:
            return ("the Landlock system calls are blocked (EPERM): the container's seccomp "
                    "profile predates them (Docker < 24; pass a newer profile)")
        abi, why = 0, os.strerror(exc.errno or 0)
    else:
        why = "ENOSYS or disabled at boot"
    if abi < 1:
        return f"the kernel has no Landlock ({why}; it needs Linux >= 5.13 with lsm=landlock)"
    landlock(read, [])
    try:
        os.listdir(probe_dir)
    except PermissionError:
        return ""
    return f"Landlock ABI {abi} accepted the rules but did not deny {probe_dir}"


def _test_seccomp() -> str:
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    seccomp()
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
    except PermissionError:
        pass
    else:
        return "the seccomp filter loaded but an AF_INET socket was still allowed"
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()  # and AF_UNIX is not denied
    return ""


def self_test(options: dict) -> dict[str, str]:
    """{"uid": why, "landlock": why, "seccomp": why}: empty when the piece works here."""
    pieces = options.get("pieces", ["uid", "landlock", "seccomp"])
    if not sys.platform.startswith("linux"):
        return {k: f"not Linux ({sys.platform})" for k in pieces}
    uid = cast(int, options.get("uid"))  # tiers.self_test always sends one
    read = options.get("read", [])
    found = {}
    if "uid" in pieces:
        found["uid"] = "not root: the worker keeps the grader's uid" if os.getuid() != 0 \
            else _in_fork(lambda: _test_uid(uid, options.get("must_read", [])))
    if "landlock" in pieces:
        found["landlock"] = _in_fork(lambda: _test_landlock(read, options["probe_dir"]))
    if "seccomp" in pieces:
        found["seccomp"] = _in_fork(_test_seccomp)
    return found


# -- SysV IPC left behind (a tier without the seccomp piece, or made before it loaded) ----------
SYSV_IPC = ("shm", "msg", "sem")
IPC_RMID = 0


def ipc_objects(uid: int | None = None) -> list[tuple[str, int]]:
    """(kind, id) of the SysV IPC objects in this IPC namespace that ``uid`` owns or created
    (all of them when ``uid`` is None)."""
    found = []
    for kind in SYSV_IPC:
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                head, *rows = [line.split() for line in f if line.strip()]
        except (OSError, ValueError):  # no /proc, or no SysV IPC in this kernel
            continue
        for row in rows:
            fields = dict(zip(head, row, strict=False))
            if uid is None or str(uid) in (fields.get("uid"), fields.get("cuid")):
                found.append((kind, int(row[1])))
    return found


def remove_ipc(uid: int | None = None) -> list[tuple[str, int]]:
    """Remove the objects ``ipc_objects(uid)`` lists; return those still there after."""
    libc = _libc()
    for kind, ident in ipc_objects(uid):
        if kind == "shm":
            libc.shmctl(ident, IPC_RMID, None)
        elif kind == "msg":
            libc.msgctl(ident, IPC_RMID, None)
        else:
            libc.semctl(ident, 0, IPC_RMID)
    return ipc_objects(uid)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--self-test":
        print(json.dumps(self_test(json.loads(sys.argv[2]))))
    elif len(sys.argv) == 3 and sys.argv[1] == "--remove-ipc":  # run as that uid
        left = remove_ipc(int(sys.argv[2]))
        sys.exit(f"could not remove {left}" if left else 0)
    else:
        sys.exit("usage: python -I confine.py --self-test JSON | --remove-ipc UID")
