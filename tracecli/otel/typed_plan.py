"""A typed attribute list of a shape the file repeats, read by a function made for that shape.

The spans of one instrumentation repeat the same attribute keys in the same order, each
with the same kind of value (`gen_ai.usage.input_tokens` is always an `intValue`). The
general loop (`tracecli.otel.typed._read_attributes`) finds each value's one kind and
reads it in Python, attribute by attribute (~1 µs each, most of a span's decoding). For
a shape met before, `compile_reader` writes out one function for the whole list: for each
position, the field of its expected kind read, "that one set, and it alone" checked as
the loop checks it, and that kind's steps (no loop, no test of the kind, no lists of keys
and values). (One chained list of all the values' fields, picked by one `itemgetter` and
checked by one count, was tried first: more instructions than the loop.) The gain is
small (~5% of a list): most of its cost is the values themselves. Where the list is not
what the shape's
function expects (another kind, two kinds, a value missing, an integer it would not read
quickly, an array it cannot read), it answers `MISS` and the general loop reads the list,
so the answer is always the general loop's (a hypothesis test holds the two to the same
reading, `tests/test_otel_typed.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from operator import attrgetter
from typing import Any

from msgspec import UNSET
from msgspec.structs import astuple

from tracecli.otel.nesting import load_json_text

MISS: Any = object()  # a reader's answer when the general loop must read the list
Reader = Callable[[list[Any]], Any]

FIELDS = ("stringValue", "intValue", "doubleValue", "boolValue", "arrayValue", "kvlistValue",
          "bytesValue")  # fmt: skip
KINDS = len(FIELDS)  # the fields of `typed.AnyValue`, in its order:
STRING, INT, DOUBLE, BOOL = 0, 1, 2, 3  # (array, key/value list, bytes: `other`)
_MAX_KEYS = 256

key_of = attrgetter("key")


def kinds_of(items: list[Any]) -> tuple[int, ...] | None:
    """The kind (field index) each value of a typed attribute list holds; None where one
    holds none or several (such a list gets no reader)."""
    out = []
    for kv in items:
        fields = astuple(kv.value)
        if fields.count(UNSET) != KINDS - 1:
            return None
        out.append(next(i for i, x in enumerate(fields) if x is not UNSET))
    return tuple(out)


def compile_reader(
    shape: tuple[str, ...],
    kinds: tuple[int, ...],
    build: Callable[[Any], dict[str, Any]],
    other: Callable[[Any, str, list[str]], Any],
    no: Any,
    make: Callable[[tuple[Any, ...]], Any],
) -> Reader:
    """The reader of attribute lists with these keys (in this order) and these kinds of
    value. `build`: the shape's nesting function (`attrlist._SHAPES`); `other(value, key,
    impure)`: an array, key/value list or bytes value read (`no` when it cannot be);
    `make`: the `Read` of (values, impure keys, keys). No key text goes into the code:
    keys are read from a tuple by position, as the nesting functions do."""
    n = len(shape)
    lines = [
        "def read(items):",
        "    " + "".join(f"i{i}, " for i in range(n)) + "= items",
        "    impure = []",
        "    try:",
    ]
    for i, kind in enumerate(kinds):
        x = f"x{i}"
        lines += [  # its kind set, and it alone (else the general loop says what)
            f"        v = i{i}.value",  # (UNSET: an AttributeError)
            f"        {x} = v.{FIELDS[kind]}",
            f"        if {x} is U or ASTUPLE(v).count(U) != {KINDS - 1}:",
            "            return MISS",
        ]
        if kind == STRING:  # weave loads JSON-looking text (at the top level only)
            lines += [
                f"        if {x}[:1] in OPENERS:",
                f"            if 'NaN' in {x} or 'Infinity' in {x}:",
                f"                impure.append(K[{i}])",
                f"            {x} = LOAD({x})",
            ]
        elif kind == INT:  # signs, other digits and big values: the general loop
            lines += [
                f"        if len({x}) >= 19 or not {x}.isdigit() or not {x}.isascii():",
                "            return MISS",
                f"        {x} = int({x})",
            ]
        elif kind not in (DOUBLE, BOOL):
            lines += [
                f"        {x} = OTHER(v, K[{i}], impure)",
                f"        if {x} is NO:",
                "            return MISS",
            ]
    lines += ["    except AttributeError:", "        return MISS"]
    values = "".join(f"x{i}, " for i in range(n))
    lines.append(f"    return MAKE((BUILD(({values})), tuple(impure), K))")
    names = {
        "__builtins__": {"len": len, "int": int, "tuple": tuple, "AttributeError": AttributeError},
        "ASTUPLE": astuple,
        "U": UNSET,
        "OPENERS": ("[", "{"),
        "K": shape,
        "LOAD": load_json_text,
        "OTHER": other,
        "NO": no,
        "BUILD": build,
        "MAKE": make,
        "MISS": MISS,
    }
    exec("\n".join(lines), names)
    reader: Reader = names["read"]
    return reader


def can_compile(shape: tuple[str, ...]) -> bool:
    """Whether a shape gets a reader: its keys all strings (a missing key is the general
    loop's ""), not too many."""
    return 0 < len(shape) <= _MAX_KEYS and all(type(k) is str for k in shape)


_new_tuple = tuple.__new__


def maker(cls: type) -> Callable[[tuple[Any, ...]], Any]:
    """A named tuple's constructor from a plain tuple, at C speed."""
    return partial(_new_tuple, cls)
