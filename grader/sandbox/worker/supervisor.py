"""Runs INSIDE the sandbox: imports torch once, then forks one confined child per exercise.

    python -I supervisor.py --kit /kit --submission /submission --scratch /scratch \
        --req-fd 3 --rep-fd 4 [--pid-namespace] [--limits JSON] [--confine JSON]

Under bubblewrap (``--pid-namespace``) the namespaces are the wall; children get rlimits and,
with ``--confine '{"seccomp": true}'``, the seccomp filter (AF_UNIX sockets only, no SysV IPC:
AF_VSOCK is in no namespace). Without namespaces (``--confine``: a container, a laptop) each
child confines itself before it imports the submission (confine.py: uid, Landlock, seccomp,
rlimits), and the supervisor is their subreaper, so nothing a child starts outlives its
exercise.

Requests (pickled, from the trusted grader): {"op": "begin", "exercise": id},
{"op": "probe", "probe": "pkg.module:name", "module": "blocks", "case": {...}, "timeout": s},
{"op": "end"}. Replies: ``torch.save`` of {"status": "ok", "result": ...} or
{"status": "fail", "kind": ..., "message": ...}; the grader decodes them with ``wire.loads``
(bounded, runs no code). Student code runs only in the children.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import json
import os
import pickle
import signal
import stat
import sys
import time

SIGNAL_WORDS: dict[int, str] = {
    signal.SIGSEGV: "segmentation fault", signal.SIGBUS: "bus error",
    signal.SIGABRT: "aborted", signal.SIGFPE: "floating-point exception",
    signal.SIGKILL: "killed, probably over the memory or process limit",
    signal.SIGXCPU: "over the CPU-time limit", signal.SIGXFSZ: "wrote more output than allowed",
    signal.SIGILL: "illegal instruction",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--kit", required=True)
    p.add_argument("--submission", required=True)
    p.add_argument("--package", default="exercises")
    p.add_argument("--scratch", required=True)
    p.add_argument("--req-fd", type=int, required=True)
    p.add_argument("--rep-fd", type=int, required=True)
    p.add_argument("--pid-namespace", action="store_true")
    p.add_argument("--limits", default="{}")
    p.add_argument("--confine", default=None, help="confine.Spec as JSON (no namespaces)")
    return p.parse_args(argv)


def non_dumpable() -> None:
    """Children (same uid) may not ptrace us or open /proc/<us>/fd: PR_SET_DUMPABLE = 0."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def encode(payload: dict) -> bytes:
    from grader.sandbox.worker import wire

    return wire.dumps(payload)


def encode_view(payload: dict) -> memoryview:
    """``encode`` without the copy: the serialised buffer itself (a 45 MB reply held once)."""
    from grader.sandbox.worker import wire

    return wire.dumps(payload, view=True)


def failure_reply(kind: str, message: str) -> bytes:
    return encode({"status": "fail", "kind": kind, "message": message})


# -- the child: student code runs here ------------------------------------------------------------
def open_log(path: str) -> int:
    """The child's output file in scratch, which student code can write: never through a
    symlink, never blocking on a FIFO, always a regular file of our own (else made anew)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | os.O_CREAT, 0o600)
    except OSError:  # a symlink (ELOOP), a FIFO without a reader (ENXIO), ...
        fd = -1
    if fd >= 0:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid():
            return fd
        os.close(fd)
    try:
        os.unlink(path)  # planted by an earlier exercise's code, which ran as our uid
        return os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:  # a folder, or a race with a process of that code: no output at all
        return os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)


def release_free_memory() -> None:
    """malloc_trim(0): glibc keeps freed heap pages (a 9 MB tensor raises its mmap threshold,
    so later ones come from the heap); a container's limit counts them until they go back."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def resolve_probe(name: str):
    module_name, _, qualname = name.partition(":")
    obj = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def child_main(args: argparse.Namespace, req_fd: int, rep_fd: int, exercise: str) -> None:
    from pathlib import Path

    from grader.limits import IMPORT_TIMEOUT_S
    from grader.probes import ProbeFailure, sanitize
    from grader.sandbox.worker import confine, protocol
    from grader.sandbox.worker.guard import (
        guarded_call,
        import_submission_module,
        install_submission_package,
    )

    os.setpgid(0, 0)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it: over the cap, die
    import torch

    # OpenMP read OMP_NUM_THREADS when the grader loaded it: a forked supervisor's children
    # get the sandbox's share of the cores here, before their first parallel operation
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    limits = json.loads(args.limits)
    try:
        if args.confine:
            confine.apply(args.spec, limits)
        else:  # bubblewrap: the namespaces are the wall, and we are already unprivileged
            confine.oom_victim()
            confine.set_rlimits(limits, dropping_uid=False)
    except confine.ConfinementError as exc:  # run no student code unconfined
        request = pickle.loads(protocol.receive(req_fd))
        protocol.send(rep_fd, failure_reply(
            "crash", f"the sandbox could not confine the worker: {exc}"), request["seq"])
        os._exit(1)
    os.chdir(args.scratch)  # the working folder the contract promises (not the grader's)
    log = open_log(os.path.join(args.scratch, f"{exercise}.log"))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    package_dir = Path(args.submission)
    install_submission_package(args.package, package_dir)
    while True:
        try:
            request = pickle.loads(protocol.receive(req_fd))
        except protocol.ChannelClosed:
            os._exit(0)
        seq = request["seq"]
        try:
            probe = resolve_probe(request["probe"])
            # an import that hangs fails here, in words that name the module, before the
            # supervisor's wall clock kills the child: the handle then skips that module
            limit = min(IMPORT_TIMEOUT_S, 0.8 * request["timeout"])
            for name in (*request.get("uses", ()), request["module"]):
                module = import_submission_module(args.package, package_dir, name, limit)
            case = request["case"]
            result = guarded_call(lambda p=probe, m=module, c=case: p(m, c), 0,
                                  package_dir, request["probe"])
            # exact builtin types only, checked here too: a local class cannot be pickled, and
            # the reason the student should read is "not plain data", not a pickling error
            payload = {"status": "ok", "result": sanitize(result)}
            result = None  # the copy is what is sent: one less copy alive while encoding
        except ProbeFailure as failure:
            payload = {"status": "fail", "kind": failure.kind, "message": failure.message}
        try:
            data: bytes | memoryview = encode_view(payload)
        except BaseException as exc:  # noqa: BLE001  (a result torch cannot serialise)
            data = failure_reply("invalid_result",
                        f"your result could not be sent back ({type(exc).__name__}): return "
                        "plain data (tensors, numbers, strings, lists, tuples, dicts)")
        payload = {}  # its tensors are in ``data`` now
        protocol.send(rep_fd, data, seq)
        data = b""
        release_free_memory()  # what this probe freed goes back to the container


# -- the supervisor ----------------------------------------------------------------------------
class Child:
    def __init__(self, pid: int, to_child: int, from_child: int, exercise: str) -> None:
        self.pid, self.to_child, self.from_child = pid, to_child, from_child
        self.exercise = exercise

    def kill(self) -> str:
        """Kill the child's process group; return how it ended."""
        for fd in (self.to_child, self.from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            return "ended"
        return describe_status(status)


def describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return SIGNAL_WORDS.get(sig, f"signal {sig}")
    return f"it exited with status {os.WEXITSTATUS(status)}"


def confine_spec(args: argparse.Namespace):
    """The children's confinement; its uid is derived from our pid (unique while we live)."""
    from grader.sandbox.worker import confine

    spec = confine.Spec.from_json(args.confine)
    if spec.uid_base is not None:  # the launcher cannot know our pid in advance
        spec.uid = spec.uid_base + os.getpid()
    return spec


def reap_descendants() -> None:
    """Kill every process left under us: as their subreaper we inherit orphans and daemons."""
    me = str(os.getpid())
    for _ in range(100):  # a fork bomb refills; each round kills what exists
        found = []
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[1].decode() == me and fields[0] != b"Z":
                found.append(int(entry))
        kill_and_reap(found)
        if not found:
            return
        time.sleep(0.01)


def kill_strays() -> None:
    """In our own PID namespace, nothing but us (and bwrap's init, pid 1) may live on."""
    me = os.getpid()
    kill_and_reap([int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) not in (1, me)])


def kill_and_reap(pids: list[int]) -> None:
    """SIGKILL ``pids``, then reap whichever of our children have died."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def spawn(args: argparse.Namespace, exercise: str, channel: tuple[int, int]) -> Child:
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            for fd in (*channel, req_w, rep_r):
                os.close(fd)
            child_main(args, req_r, rep_w, exercise)
        finally:
            os._exit(0)
    try:
        os.setpgid(pid, pid)  # also here: no race with the child's own setpgid
    except OSError:
        pass
    os.close(req_r)
    os.close(rep_w)
    return Child(pid, req_w, rep_r, exercise)


def over_cap(folders: list[str]) -> str:
    from grader.limits import SCRATCH_MAX_BYTES, SCRATCH_MAX_FILES
    from grader.sandbox.worker import scratch

    return scratch.over_cap(folders, SCRATCH_MAX_FILES, SCRATCH_MAX_BYTES)


def await_reply(fd: int, deadline: float, folders: list[str]) -> str:
    """Wait until the child starts its reply (ChannelTimeout at ``deadline``), looking at its
    folders every SCRATCH_CHECK_S: what is over the cap, or "". Nothing is read here, so a
    reply is never cut between two looks."""
    import select

    from grader.limits import SCRATCH_CHECK_S
    from grader.sandbox.worker import protocol

    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise protocol.ChannelTimeout()
        ready, _, _ = select.select([fd], [], [], min(left, SCRATCH_CHECK_S))
        if ready:
            return ""
        overflow = over_cap(folders)
        if overflow:
            return overflow


def preload_probes(kit: str) -> None:
    """Import every probe module once here, so each forked child starts with them loaded."""
    from pathlib import Path

    for path in sorted(Path(kit, "grader", "packs").glob("*/probes/*.py")):
        name = ".".join(path.relative_to(kit).with_suffix("").parts)
        importlib.import_module(name.removesuffix(".__init__"))


_warm = False


def warm_up() -> None:
    """Pay torch's lazy first-use costs (~1 s: dispatch modes, autograd, nn) once, here
    (or in the grader a supervisor was forked from: zygote.py).

    Tiny tensors only: they never start an OpenMP thread pool, which must not exist at fork.
    """
    global _warm
    if _warm:
        return
    _warm = True
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    class Nop(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    x = torch.ones(1, 1, 3, 3, requires_grad=True)
    with Nop():
        y = torch.einsum("nchw,oc->nohw", x, torch.ones(1, 1)).sum()
        y.backward()
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), torch.nn.BatchNorm2d(1),
                                torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(9, 2))
    loss = torch.nn.functional.cross_entropy(model(x.detach()), torch.tensor([0]))
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9).step()


def main(argv: list[str] | None = None) -> None:
    """Serve the grader; ``argv`` as on the command line (a forked supervisor: zygote.py)."""
    args = parse_args(argv)
    sys.path.append(args.kit)  # after the standard library and site-packages: nothing shadows
    non_dumpable()
    if args.confine:  # orphans of our children come to us, not to init: reap_descendants
        from grader.sandbox.worker import confine

        args.spec = confine_spec(args)
        confine.prctl(confine.PR_SET_CHILD_SUBREAPER, 1)
        confine.oom_victim(500)  # after student code, before the grader
        if args.spec.seccomp:
            import pyseccomp  # noqa: F401  (finds libseccomp via a subprocess: not in a child)
    import torch  # noqa: F401  (once, before any fork: children start warm)

    from grader.limits import REPLY_MAX_WIRE_BYTES, SCRATCH_MAX_BYTES, SCRATCH_MAX_FILES
    from grader.sandbox.worker import confine, protocol, scratch

    # what a child may write: scratch, and under bubblewrap its own /tmp (the host's /tmp is
    # out of a confined child's reach: Landlock, or the grader's sweep of what a uid left)
    writable = [args.scratch] + (["/tmp"] if args.pid_namespace else [])

    preload_probes(args.kit)
    warm_up()
    req, rep = args.req_fd, args.rep_fd
    protocol.send(rep, encode({"status": "ok", "result": "ready"}))
    child: Child | None = None
    exercise = "unknown"
    sequence = 0
    while True:
        try:
            request = pickle.loads(protocol.receive(req))
        except protocol.ChannelClosed:
            break
        op = request["op"]
        if op == "end":
            break
        if op == "begin":
            if child:
                child.kill()
                child = None
            if args.pid_namespace:
                kill_strays()
                # our own IPC namespace: every SysV object in it was made by a child
                confine.remove_ipc()
            elif args.confine:
                reap_descendants()
            for folder in writable:  # each exercise starts with empty folders
                scratch.empty(folder, keep=("home",))
            exercise = request["exercise"]
            protocol.send(rep, encode({"status": "ok", "result": "begun"}))
            continue
        # op == "probe"
        if child is None:
            child = spawn(args, exercise, (req, rep))
        started = time.monotonic()
        sequence += 1
        request["seq"] = sequence
        reply: bytes | bytearray
        try:
            protocol.send(child.to_child, pickle.dumps(request))
            deadline = started + request["timeout"]
            overflow = await_reply(child.from_child, deadline, writable)
            if not overflow:  # the reply has begun: a second to finish it, however late
                reply = protocol.receive(child.from_child,
                                         timeout=max(1.0, deadline - time.monotonic()),
                                         max_bytes=REPLY_MAX_WIRE_BYTES, seq=sequence)
                overflow = over_cap(writable)
        except protocol.ChannelTimeout:
            child.kill()
            child = None
            if args.confine:
                reap_descendants()
            reply = failure_reply(
                "timeout", f"your code did not finish within {request['timeout']:g} s "
                f"(stopped after {time.monotonic() - started:.0f} s)")
        except protocol.ChannelClosed as exc:
            how = child.kill()
            child = None
            if args.confine:
                reap_descendants()
            if "exceeds" in str(exc):
                reply = failure_reply("invalid_result", "your result was too large to send back "
                                      f"(over the grader's {REPLY_MAX_WIRE_BYTES >> 20} MiB)")
            else:
                reply = failure_reply(
                    "crash", f"your module {request['module']}.py crashed the worker ({how})")
        else:
            if overflow:  # everything stopped, the folders emptied: the next probe is clean
                child.kill()
                child = None
                if args.pid_namespace:
                    kill_strays()
                elif args.confine:
                    reap_descendants()
                for folder in writable:
                    scratch.empty(folder, keep=("home",))
                reply = failure_reply(
                    "crash", f"your code left {overflow} in the folders it may write (its "
                    f"working folder and /tmp): an exercise may leave {SCRATCH_MAX_FILES} "
                    f"files and {SCRATCH_MAX_BYTES >> 20} MiB; remove what you no longer need")
        protocol.send(rep, reply)
        reply = b""  # a 45 MB reply is not kept while the next probe runs
    if child:
        child.kill()
    if args.confine:
        reap_descendants()


if __name__ == "__main__":
    main()
