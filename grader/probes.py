"""Probes: small public functions that exercise one submission module and return plain data.

A probe is ``fn(module, case) -> data``. The grader runs the same probe on the reference
module and, through a handle, on the student's: ``expected = reference.run(probe, case)`` vs
``got = student.run(probe, case)``. Probes never import the solutions, so they can run in an
untrusted worker; what they return is checked by ``sanitize`` before anyone compares it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, cast

import torch

from grader import limits


class ProbeFn(Protocol):
    """A probe as ``@probe`` returns it: ``fn(module, case)``, with what the handles read."""

    module: str
    timeout: float | None
    uses: tuple[str, ...]
    probe_name: str

    def __call__(self, module: Any, case: dict, /) -> Any: ...


class ProbeFailure(Exception):
    """Student code could not produce a result: the message is one line of feedback.

    kind: "not_implemented", "exception", "import_error", "timeout", "crash", "invalid_result".
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def probe(module: str, timeout: float | None = None,
          uses: tuple[str, ...] = ()) -> Callable[[Callable[[Any, dict], Any]], ProbeFn]:
    """Mark ``fn`` as a probe of the submission module ``module`` (e.g. "blocks").

    ``timeout``: wall-clock seconds one call may take in a worker (default: the handle's).
    ``uses``: other submission modules the probe imports; they are imported (and their
    failures reported) before the probe runs, under the import time limit, not its own.
    """

    def mark(fn: Callable[[Any, dict], Any]) -> ProbeFn:
        @functools.wraps(fn)
        def wrapper(mod: Any, case: dict) -> Any:
            return fn(mod, case)

        marked = cast(ProbeFn, wrapper)  # a ProbeFn once it has these attributes
        marked.module = module
        marked.timeout = timeout
        marked.uses = tuple(uses)
        marked.probe_name = f"{fn.__module__}:{fn.__qualname__}"
        return marked

    return mark


@contextmanager
def one_thread() -> Iterator[None]:
    """Run small-tensor work on one intra-op thread (a context manager or ``@one_thread()``).

    Per op these nets are tiny: on a busy 2-core machine a second OpenMP thread only adds
    barrier waits (measured 0.4 s -> 19 s for PlainNet(50) under load). The caller's setting
    is restored.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


_SCALARS = (type(None), bool, int, float, str)


def sanitize(value: Any, path: str = "result") -> Any:
    """Return ``value`` as trusted plain data, or raise ProbeFailure("invalid_result").

    Only exact builtin types pass (an ``int`` subclass with a lying ``__eq__`` does not);
    tensors must be plain, dense ``torch.Tensor`` and are detached and copied; containers are
    rebuilt. Bounded before anything is copied (grader/limits.py): REPLY_MAX_DEPTH levels of
    nesting, REPLY_MAX_VALUES values and REPLY_MAX_TENSOR_BYTES of tensors, a value or view
    counted each time it is reached (a list holding one list a thousand times, a thousand
    levels down, or a stride-0 view of a billion elements, stops there).
    """
    return _Sanitizer().clean(value, path, 0)


class _Sanitizer:
    """One reply's budget: values seen and tensor bytes copied so far."""

    def __init__(self) -> None:
        self.values = 0
        self.tensor_bytes = 0

    def _count(self, n: int, path: str) -> None:
        self.values += n
        if self.values > limits.REPLY_MAX_VALUES:
            raise ProbeFailure("invalid_result", f"{path}: the result holds more than "
                               f"{limits.REPLY_MAX_VALUES:,} values (numbers, strings, "
                               "tensors, containers)")

    def clean(self, value: Any, path: str, depth: int) -> Any:
        self._count(1, path)
        kind = type(value)
        if kind in _SCALARS:
            return value
        if kind is torch.Tensor or kind is torch.nn.Parameter:
            return self._tensor(value, path)
        if kind not in (list, tuple, dict):
            raise ProbeFailure("invalid_result",
                               f"{path} is a {kind.__module__}.{kind.__qualname__}, expected "
                               "plain data (int, float, str, list, tuple, dict or torch.Tensor)")
        if depth >= limits.REPLY_MAX_DEPTH:
            raise ProbeFailure("invalid_result", f"{path} is nested more than "
                               f"{limits.REPLY_MAX_DEPTH} levels deep")
        if kind is dict:
            out = {}
            for k, v in value.items():
                if type(k) is not str:
                    raise ProbeFailure("invalid_result", f"{path} has a non-string key of type "
                                       f"{type(k).__name__}")
                out[k] = self.clean(v, f"{path}[{k!r}]", depth + 1)
            return out
        items = []
        for i, v in enumerate(value):
            if type(v) in _SCALARS:  # no path string per number: lists can be long
                self._count(1, path)
                items.append(v)
            else:
                items.append(self.clean(v, f"{path}[{i}]", depth + 1))
        return kind(items)

    def _tensor(self, value: torch.Tensor, path: str) -> torch.Tensor:
        if value.layout is not torch.strided:
            raise ProbeFailure("invalid_result", f"{path} is a {value.layout} tensor, expected "
                               "a dense one")
        self.tensor_bytes += value.numel() * value.element_size()
        if self.tensor_bytes > limits.REPLY_MAX_TENSOR_BYTES:
            raise ProbeFailure("invalid_result", f"{path}: the result holds more than "
                               f"{limits.REPLY_MAX_TENSOR_BYTES >> 20} MiB of tensors (a view "
                               "counted each time it appears)")
        copy = value.detach().clone()
        return copy if type(value) is torch.Tensor else torch.Tensor(copy)
