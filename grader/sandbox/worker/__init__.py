"""The untrusted side of the trust boundary: everything that runs inside a sandbox worker.

This package, the probe API (``grader/probes.py``) and the pack's ``probes/`` are the exact set
of kit files copied into each sandbox (``grader.sandbox.launcher.build_kit``); nothing else of
the grader is there, so nothing here may import a trusted module (``grader.handle``,
``grader.plugin``, the hidden graders, ``solutions``).

    supervisor.py  runs in the sandbox: imports torch once, forks one child per exercise
    confine.py     confines a child without namespaces: uid, no_new_privs, Landlock, seccomp,
                   rlimits, oom_score_adj (containers such as Gradescope's)
    guard.py       imports the submission and calls student code, turning anything it does
                   wrong into a one-line ProbeFailure (also used by the in-process handle)
    protocol.py    length-prefixed message framing over pipes
    wire.py        the one tensor encoding on the wire: torch.save out, a bounded decoder in

Trusted code imports only ``protocol`` and ``wire`` from here (the wire format), and ``guard``
for the in-process handle, where student code runs in the student's own process by design.
"""
