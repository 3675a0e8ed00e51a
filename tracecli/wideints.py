"""Integers beyond 64 bits, which orjson would silently turn into floats.

orjson, which reads every JSONL line here, holds integers in [-2**63, 2**64) exactly and
reads larger ones as floats: 123456789012345678901234567890 would be uploaded as
1.2345678901234568e+29, a changed call. Python's json (the Weave server's) keeps them. Such
a number needs at least 19 digits in a row, which trace records almost never hold, so a
block is searched once (at C speed) and only a line of a block that has such a run is
looked at closely.
"""

from __future__ import annotations

import json
from typing import Any

_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= i <= 0x39 else i for i in range(256))
_RUN = b"0" * 19  # 2**63 has 19 digits
_LOW, _HIGH = -(2**63), 2**64  # what orjson keeps exact


def may_hold_wide_ints(data: bytes) -> bool:
    """Whether `data` holds 19 digits in a row (a block: cheap enough to ask of every one)."""
    return data.translate(_DIGITS_AS_ZERO).find(_RUN) >= 0


def wide_ints(raw: bytes) -> list[tuple[str, int]]:
    """(field path, value) of each integer of the JSON line outside orjson's exact range."""
    try:
        value: Any = json.loads(raw)  # exact integers, whatever their size
    except (ValueError, RecursionError):
        return []
    found: list[tuple[str, int]] = []
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, v = stack.pop()
        if type(v) is int:
            if not _LOW <= v < _HIGH:
                found.append((path or "(record)", v))
        elif type(v) is dict:
            stack.extend((f"{path}.{k}" if path else str(k), x) for k, x in v.items())
        elif type(v) is list:
            stack.extend((f"{path}.{i}" if path else str(i), x) for i, x in enumerate(v))
    found.reverse()
    return found


def wide_int_message(value: int) -> str:
    digits = str(value)
    shown = digits if len(digits) <= 40 else f"{digits[:37]}..."
    return (
        f"integer {shown} does not fit in 64 bits: it would be read as a float and its value "
        "changed; write it as a string"
    )
