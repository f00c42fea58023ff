"""Every time limit and resource cap of the kit, in one place, each with its reason.

    from grader.limits import PROBE_TIMEOUT_S     # 20 s: one probe call in a sandbox worker

Pure constants: the sandbox's workers import this module too (it is part of their kit).
"""

from __future__ import annotations

# -- one probe call (wall clock) ------------------------------------------------------------
# In a sandbox worker. Fixed, not scaled to the machine: a busy grader must not change a
# score's timeouts. A probe that legitimately needs more asks for it (@probe(timeout=...)).
PROBE_TIMEOUT_S = 20.0
# In process (self-check, trusted code): the student's own laptop may be slow, and nothing
# hostile runs there.
IN_PROCESS_TIMEOUT_S = 60.0
# In a notebook kernel: the smoke test's CPU training run shares the kernel with the reference
# run, often on a busy machine; nbgrader's cell timeout still bounds the whole cell.
NOTEBOOK_PROBE_TIMEOUT_S = 120.0
# The smoke test's training run and the figures' short run (probes ask for it).
TRAINING_PROBE_TIMEOUT_S = 300.0
# Importing one submission module in a worker (torch is already loaded): at most this, and at
# most 0.8 of the probe's own limit, so a hanging import is named before the call times out.
IMPORT_TIMEOUT_S = 20.0

# -- a sandbox ------------------------------------------------------------------------------
# Until the supervisor says "ready": bubblewrap plus a fresh interpreter importing torch on a
# loaded 2-core machine takes seconds; 120 s only fails a machine that is truly stuck.
STARTUP_TIMEOUT_S = 120.0
# CPU seconds per exercise child (RLIMIT_CPU): the smoke run is the most expensive exercise.
CPU_SECONDS = 300
# Address space per worker: importing torch alone needs more than 3.25 GB of it.
ADDRESS_SPACE_BYTES = 6 << 30
# Largest file a worker may write (RLIMIT_FSIZE).
FILE_SIZE_BYTES = 16 << 20
# Processes and threads per worker uid (RLIMIT_NPROC): a fork bomb stops here.
PROCESSES = 512

# -- a class (batch) ------------------------------------------------------------------------
# The whole grade of one submission, hostile ones included.
SUBMISSION_TIMEOUT_S = 1800.0
# How long a --scheduler batch waits for its first worker to join.
WORKER_WAIT_S = 120.0

# -- a notebook course ----------------------------------------------------------------------
# nbgrader's Execute.timeout per cell (its default 30 s is too short for the smoke test).
CELL_TIMEOUT_S = 300
