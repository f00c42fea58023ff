"""Length-prefixed messages over pipes, read with a deadline and a size cap.

Grader -> sandbox messages are pickled (the grader is trusted). Sandbox -> grader replies are
``torch.save`` bytes decoded by ``wire.loads``, a bounded decoder that runs no code from the
sandbox and refuses oversized or self-overlapping data before it allocates anything.
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


def send(fd: int, payload: bytes | bytearray | memoryview, seq: int = 0) -> None:
    for part in (HEADER.pack(seq, len(payload)), payload):  # no copy of a large payload
        with memoryview(part) as view:
            while view:
                try:
                    written = os.write(fd, view)
                except (BrokenPipeError, OSError) as exc:
                    raise ChannelClosed(str(exc)) from None
                view = view[written:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytearray:
    """Exactly ``n`` bytes, read into one buffer (no list of chunks joined into a copy)."""
    buf = bytearray(n)
    got = 0
    with memoryview(buf) as view:
        while got < n:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ChannelTimeout()
                ready, _, _ = select.select([fd], [], [], left)
                if not ready:
                    raise ChannelTimeout()
            try:
                count = os.readv(fd, [view[got:got + min(n - got, 1 << 20)]])
            except OSError as exc:
                raise ChannelClosed(str(exc)) from None
            if not count:
                raise ChannelClosed("end of stream")
            got += count
    return buf


def receive(fd: int, timeout: float | None = None, max_bytes: int = 1 << 28,
            seq: int | None = None) -> bytearray:
    """One message; ChannelTimeout after ``timeout`` s, ChannelClosed on EOF or oversize.

    Replies are read with ``max_bytes=limits.REPLY_MAX_WIRE_BYTES`` (the grader and the
    supervisor): the size header is checked before a byte of the payload is read.

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
