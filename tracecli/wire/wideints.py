"""Values orjson cannot read or write as they are, and what weave's server does with them.

orjson reads every JSONL line here, fast, but it refuses or changes a few things that weave's
own server (Python's json) takes:

- integers beyond 64 bits: orjson reads those outside [-2**63, 2**64) as floats
  (123456789012345678901234567890 would become 1.2345678901234568e+29), and cannot write
  them at all. weave's server stores them exactly, so tracecli keeps them exact too: such a
  line is read again with Python's json (`exact_loads`), and the body is written by
  `encode.dumps`, which falls back to Python's json for what orjson cannot write.
- `NaN`, `Infinity`, `-Infinity` and numbers beyond a double (`1e400`): not JSON, refused
  by orjson; weave's server reads them and stores null where any JSON value may go, and
  fails (a 500) where the schema wants an integer. They are read here as `NonFinite`
  floats, so the schema refuses them where it wants an integer, and sent as null.
- a lone UTF-16 surrogate escape (`"\\ud800"`): not text; refused by orjson; weave's server
  stores it but then cannot read the project back (a value) or changes it (a key).

A wide integer needs at least 20 digits in a row (19 after a minus), which trace records
almost never hold, so a block is searched once (at C speed) and only a line of a block that
has such a run is looked at closely; the other values are seen only in lines orjson refuses.

Deep nesting is measured here too (`deep_fields`): weave's server stores a value nested
past `READ_DEPTH` levels but then cannot read the project back, and fails on one nested
past `STORE_DEPTH`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any, NamedTuple

_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= i <= 0x39 else i for i in range(256))
# 2**64 has 20 digits and every 19-digit number is below it; -2**63 has 19: a wide integer
# is 20 digits in a row, or 19 after a minus (OTel's nanosecond times, 19 digits, are not)
_RUN = b"0" * 20
_NEG_RUN = b"-" + b"0" * 19
_LOW, _HIGH = -(2**63), 2**64  # what orjson keeps exact
INT64_MAX = 2**63 - 1  # an integer column of weave's server (wb_run_step) holds no more

# Measured against weave's server (weave 0.52.42, SQLite): a call whose `output` nests
# more than 254 containers (its own value counted), or whose other fields nest more than
# 255, is stored but `/calls/stream_query` then stops before it, for the whole project.
# From about 489 levels the write itself fails (a 500: Python's recursion limit, so the
# exact level moves by a few with the server's own stack); past STORE_DEPTH is an error.
# (`otel_dump` too reads back at 255 levels and not at 256, objects or lists: measured on
# weave-ref for OTLP spans, whose JSON text lands there, `tracecli.otel.deep_text`.)
READ_DEPTH = {"output": 254}
READ_DEPTH_DEFAULT = 255
STORE_DEPTH = 485
DEEP_BRACKETS = min(*READ_DEPTH.values(), READ_DEPTH_DEFAULT) + 1


class NonFinite(float):
    """NaN, ±Infinity or a number beyond a double, as read by `exact_loads` (its text kept
    for messages). A float subclass: the schema refuses it where it wants an integer."""

    text: str


def _constant(text: str) -> NonFinite:
    v = NonFinite(text)
    v.text = text
    return v


def _float(text: str) -> float:
    v = float(text)
    if math.isfinite(v):
        return v
    return _constant(text)


def exact_loads(raw: bytes) -> Any:
    """One JSON line as weave's server reads it: integers exact whatever their size, NaN and
    Infinity accepted (as `NonFinite`), lone surrogates kept. Raises ValueError for what is
    not JSON even so (RecursionError included: nesting past ~1000 levels)."""
    try:
        # decoded here, strictly: json.loads would take UTF-16 or a BOM from bytes
        return json.loads(raw.decode("utf-8"), parse_constant=_constant, parse_float=_float)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def may_hold_wide_ints(data: bytes) -> bool:
    """Whether `data` holds a run of digits as long as a wide integer's (a block: cheap
    enough to ask of every one)."""
    t = data.translate(_DIGITS_AS_ZERO)
    return t.find(_RUN) >= 0 or t.find(_NEG_RUN) >= 0


def wide_ints(raw: bytes) -> list[tuple[str, int]]:
    """(field path, value) of each integer of the JSON line outside orjson's exact range."""
    try:
        value: Any = exact_loads(raw)
    except ValueError:
        return []
    return [(p, v) for p, v in _walk(value) if type(v) is int and not _LOW <= v < _HIGH]


def is_wide(value: Any) -> bool:
    return type(value) is int and not _LOW <= value < _HIGH


def _key(k: Any) -> str:
    """A key as a path part, printable even when it holds a lone surrogate."""
    s = str(k)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return s.encode("utf-8", "backslashreplace").decode("ascii", "replace")
    return s


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, leaf) of every scalar, iteratively (a value may nest ~1000 deep)."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        p, v = stack.pop()
        if type(v) is dict:
            items = [(f"{p}.{_key(k)}" if p else _key(k), x) for k, x in v.items()]
            stack.extend(reversed(items))
        elif type(v) is list:
            stack.extend(reversed([(f"{p}.{i}" if p else str(i), x) for i, x in enumerate(v)]))
        else:
            yield p or "(record)", v


def _has_surrogate(s: str) -> bool:
    if s.isascii():
        return False
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class Odd(NamedTuple):
    """A value weave's server stores other than as written: (field, code, message)."""

    field: str
    code: str
    message: str


def odd_values(value: Any, prefix: str = "") -> list[Odd]:
    """Warnings for the values of a record read by `exact_loads` that the server changes:
    non-finite numbers (stored as null) and lone surrogates (in values: the project cannot
    be read back; in keys: read back changed). Where the schema wants an integer, a
    non-finite number is the schema's error, not this warning (the caller drops it)."""
    found: list[Odd] = []
    stack: list[tuple[str, Any]] = [(prefix.rstrip("."), value)]
    while stack:
        p, v = stack.pop()
        t = type(v)
        if t is dict:
            items = []
            for k, x in v.items():
                kp = f"{p}.{_key(k)}" if p else _key(k)
                if type(k) is str and _has_surrogate(k):
                    found.append(Odd(kp, "surrogate", _SURROGATE_KEY))
                items.append((kp, x))
            stack.extend(reversed(items))
        elif t is list:
            stack.extend(reversed([(f"{p}.{i}" if p else str(i), x) for i, x in enumerate(v)]))
        elif t is NonFinite or (t is float and not math.isfinite(v)):  # (YAML's .nan too)
            found.append(
                Odd(
                    p or "(record)",
                    "non-finite",
                    f"{getattr(v, 'text', v)} is not a JSON number: weave's server stores "
                    "null here, and upload sends null",
                )
            )
        elif t is str and _has_surrogate(v):
            found.append(Odd(p or "(record)", "surrogate", _SURROGATE_VALUE))
    return found


_SURROGATE_VALUE = (
    "holds a lone UTF-16 surrogate (an escape like \\ud800 with no pair), which is not "
    "text: weave's server stores it, but then cannot read the project back"
)
_SURROGATE_KEY = (
    "the key holds a lone UTF-16 surrogate (an escape like \\ud800 with no pair): weave's "
    "server stores it, but reads it back as U+FFFD"
)


def _non_finite(x: Any) -> bool:
    """A `NonFinite`, or a float NaN or infinity (a JSON array's element, YAML's `.nan`)."""
    t = type(x)
    return t is NonFinite or (t is float and not math.isfinite(x))


def null_non_finite(value: Any) -> Any:
    """`value` with every `NonFinite` (and non-finite float) replaced by None (in place: the
    value is ours), what weave's server stores for them. Iterative, for deep values."""
    if _non_finite(value):
        return None
    stack = [value]
    while stack:
        v = stack.pop()
        if type(v) is dict:
            for k, x in v.items():
                if _non_finite(x):
                    v[k] = None
                elif type(x) is dict or type(x) is list:
                    stack.append(x)
        elif type(v) is list:
            for i, x in enumerate(v):
                if _non_finite(x):
                    v[i] = None
                elif type(x) is dict or type(x) is list:
                    stack.append(x)
    return value


def may_nest_deep(raw: bytes) -> bool:
    """Whether a line has brackets enough to nest past what the server reads back."""
    return raw.count(b"[") + raw.count(b"{") >= DEEP_BRACKETS


def depth(value: Any) -> tuple[int, str]:
    """How many containers deep `value` nests (itself counted) and the path, from it, to
    the deepest one (iterative)."""
    best, best_path = 0, ""
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        v, d, p = stack.pop()
        if type(v) is dict:
            if d > best:
                best, best_path = d, p
            stack.extend((x, d + 1, f"{p}.{_key(k)}" if p else _key(k)) for k, x in v.items())
        elif type(v) is list:
            if d > best:
                best, best_path = d, p
            stack.extend((x, d + 1, f"{p}.{i}" if p else str(i)) for i, x in enumerate(v))
    return best, best_path


class Deep(NamedTuple):
    field: str  # the path to the deepest container, shortened
    levels: int
    limit: int
    stored: bool  # weave's server stores it (but cannot read it back)


def deep_fields(body: dict[str, Any]) -> list[Deep]:
    """The fields of a call body nested deeper than weave's server can read back."""
    found = []
    for key, v in body.items():
        if type(v) is not dict and type(v) is not list:
            continue
        levels, path = depth(v)
        limit = READ_DEPTH.get(key, READ_DEPTH_DEFAULT)
        if levels > limit:
            field = f"{_key(key)}.{path}" if path else _key(key)
            found.append(Deep(_shorten(field), levels, limit, levels <= STORE_DEPTH))
    return found


def _shorten(path: str, keep: int = 4) -> str:
    parts = path.split(".")
    if len(parts) <= keep * 2 + 1:
        return path
    more = len(parts) - keep * 2
    return ".".join(parts[:keep]) + f".(... {more} more ...)." + ".".join(parts[-keep:])


def deep_message(d: Deep) -> str:
    if d.stored:
        return (
            f"nests {d.levels} levels deep: weave's server stores it, but cannot read the "
            f"project back past {d.limit} levels (its calls stop at this one)"
        )
    return (
        f"nests {d.levels} levels deep: weave's server fails (500) storing a value nested "
        f"more than about {STORE_DEPTH} levels"
    )
