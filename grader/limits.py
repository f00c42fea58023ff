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
# What an exercise may leave in its writable folders (scratch, and /tmp under bubblewrap):
# entries (files and folders) and bytes, all together. Honest code writes a matplotlib cache
# and a log; the folders are emptied before the next exercise (worker/scratch.py).
SCRATCH_MAX_FILES = 2000
SCRATCH_MAX_BYTES = 64 << 20
# How often the supervisor looks while a probe runs: a burst between two looks is bounded by
# the CPU a worker gets in that time, and /tmp's tmpfs is sized to the byte cap.
SCRATCH_CHECK_S = 0.25

# -- a class (batch) ------------------------------------------------------------------------
# The whole grade of one submission, hostile ones included.
SUBMISSION_TIMEOUT_S = 1800.0
# How long a --scheduler batch waits for its first worker to join.
WORKER_WAIT_S = 120.0

# -- a notebook course ----------------------------------------------------------------------
# nbgrader's Execute.timeout per cell (its default 30 s is too short for the smoke test).
CELL_TIMEOUT_S = 300

# -- what a submission is made of (the trusted grader parses it: grader/submission.py) --------
# A submitted notebook, read as JSON by the grader: the course's own is about 50 KB; nbgrader's
# sanitizing and a student's outputs make more, never megabytes of source.
NOTEBOOK_MAX_BYTES = 16 << 20
# A student id (a batch's folder name per student, grader/batch/collect.py), in UTF-8 bytes:
# well under the file system's 255 for one name, with room for what the batch adds.
STUDENT_ID_MAX_BYTES = 100

# -- a reply from a worker (decoded in the grader: grader/sandbox/worker/wire.py) ------------
# Everything in a reply is chosen by the student, so the grader refuses it before it
# materialises more than these. The largest honest reply is a ResNet-18's trained weights:
# about 11.2M float32 values (~45 MB) and small extras.
# Bytes on the pipe: twice the weights leaves room for the extras; the supervisor refuses a
# larger result and the grader never reads a larger message.
REPLY_MAX_WIRE_BYTES = 96 << 20
# Tensor bytes the grader may copy out of one reply (numel * element size, every view counted
# each time it appears): a stride-0 view, or one tensor listed a million times, stops here.
REPLY_MAX_TENSOR_BYTES = 128 << 20
# The pickle inside the reply (data.pkl): lists, dicts, numbers and tensor headers; tensor
# data lives in records of their own, so an honest pickle is kilobytes (a million floats fit).
REPLY_MAX_PICKLE_BYTES = 8 << 20
# Records in the reply's zip: one per tensor storage (a ResNet-18 state dict has 122) plus six.
REPLY_MAX_RECORDS = 4096
# Declared record bytes per byte on the wire: records are stored, never compressed, so they
# cannot hold more than the reply's own bytes; more means overlapping records.
REPLY_EXPANSION = 1
# Nesting of lists, tuples and dicts: honest results are a few levels deep; the grader's own
# code recurses over them, and a deeper one would crash it with RecursionError.
REPLY_MAX_DEPTH = 32
# Values in a reply (numbers, strings, tensors, containers; a shared one counted each time it
# is reached): rebuilding a list that holds the same list a thousand times, a thousand levels
# down, would otherwise be exponential. A million floats is about 32 MB of Python objects.
REPLY_MAX_VALUES = 1_000_000
