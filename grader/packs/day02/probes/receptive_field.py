"""Probes of ``receptive_field.py``: the field of a layer stack and ResNet-18's table."""

from __future__ import annotations

from collections.abc import Mapping

from grader.probes import probe


@probe("receptive_field")
def field(mod, case: dict):
    """``receptive_field(layers)`` on a list of (kernel, stride[, dilation]) tuples."""
    return mod.receptive_field(list(case["layers"]))


@probe("receptive_field")
def field_error(mod, case: dict) -> str:
    """The name of the exception ``receptive_field`` raised, or ``"returned <value>"``."""
    try:
        value = mod.receptive_field(list(case["layers"]))
    except ValueError:
        return "ValueError"
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001  (which error it raised is the answer)
        return type(exc).__name__
    return f"returned {value!r}"[:80]


def _plain_int(value):
    """Ints pass as they are; anything else becomes a description (a float 3.0 is not 3)."""
    if type(value) is int:
        return value
    return f"{value!r} (a {type(value).__name__})"[:80]


@probe("receptive_field")
def resnet18_table(mod, case: dict):
    """``resnet18_receptive_fields()`` as a plain dict (any mapping is accepted)."""
    table = mod.resnet18_receptive_fields()
    if not isinstance(table, Mapping):
        return f"a {type(table).__name__}"
    return {str(k): _plain_int(v) for k, v in table.items()}
