"""Length-prefixed messages over pipes, read with a deadline and a size cap.

Grader -> sandbox messages are pickled (the grader is trusted). Sandbox -> grader replies are
``torch.save`` bytes decoded with ``torch.load(weights_only=True)``: no code from the sandbox
ever runs in the grader.
"""

from __future__ import annotations

import os
import select
import struct
import time

HEADER = struct.Struct(">QQ")  # (sequence number, payload size)


class ChannelClosed(Exception):
    """The other end went away (or sent something malformed)."""


class ChannelTimeout(Exception):
    """No complete message before the deadline."""


def send(fd: int, payload: bytes, seq: int = 0) -> None:
    data = HEADER.pack(seq, len(payload)) + payload
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except (BrokenPipeError, OSError) as exc:
            raise ChannelClosed(str(exc)) from None
        view = view[written:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, need = [], n
    while need:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChannelTimeout()
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                raise ChannelTimeout()
        try:
            chunk = os.read(fd, min(need, 1 << 20))
        except OSError as exc:
            raise ChannelClosed(str(exc)) from None
        if not chunk:
            raise ChannelClosed("end of stream")
        chunks.append(chunk)
        need -= len(chunk)
    return b"".join(chunks)


def receive(fd: int, timeout: float | None = None, max_bytes: int = 1 << 28,
            seq: int | None = None) -> bytes:
    """One message; ChannelTimeout after ``timeout`` s, ChannelClosed on EOF or oversize.

    With ``seq``, messages with another sequence number are skipped: a stale or duplicated
    reply (a forked copy of student code answering too) is never taken for the current one.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        got, size = HEADER.unpack(_read_exact(fd, HEADER.size, deadline))
        if size > max_bytes:
            raise ChannelClosed(f"message of {size} bytes exceeds the {max_bytes}-byte cap")
        payload = _read_exact(fd, size, deadline)
        if seq is None or got == seq:
            return payload
