"""How every self-check failure reads: what was tried, what came back, what was expected, and
a hint that points at the fix. The kit prints this block instead of the test's source.

    assert got == 3, msg("conv_output_size(7, 3, dilation=2)", got, 3, "the span is d(k-1)+1")
"""

from __future__ import annotations


def msg(tried: str, got: object, expected: object, hint: str) -> str:
    """``Tried: ...\\nGot: ...\\nExpected: ...\\nHint: ...``; every failure names a hint."""
    return f"Tried: {tried}\nGot: {got}\nExpected: {expected}\nHint: {hint}"
