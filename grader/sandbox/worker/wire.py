"""The one tensor encoding on the wire and on disk: ``torch.save`` out, ``weights_only`` in.

    data = dumps({"status": "ok", "result": tensor})   # in a worker, or a cache entry
    value = loads(data)                                # in the grader: runs no code from data

``loads`` never unpickles arbitrary objects (``torch.load(weights_only=True)``): a hostile
worker can send wrong data, never code. Callers still ``sanitize`` what comes back.
"""

from __future__ import annotations

import io
from typing import Any


def dumps(value: Any) -> bytes:
    import torch  # lazily: the self-check imports the probe API without paying for this

    buf = io.BytesIO()
    torch.save(value, buf)
    return buf.getvalue()


def loads(data: bytes) -> Any:
    import torch

    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
