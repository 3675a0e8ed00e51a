"""OTLP/JSON scalars and attribute values → Python values, as protobuf's JSON parser reads them.

Weave's `/otel/v1/traces` parses a request with protobuf, so a value it accepts is one the
protobuf JSON mapping accepts: 64-bit integers as decimal strings (or JSON numbers), doubles
as numbers or "NaN"/"Infinity", bytes as base64, hex ids (OTLP/JSON's one exception to the
mapping). Each reader raises `FieldError` naming the field, so a problem is one clear line.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from tracecli.wire.otlp_values import EncodeError, b64_bytes, json_double
from tracecli.wire.otlp_values import show as _show

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1
UINT32_MAX = 2**32 - 1
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_HEX = re.compile(r"[0-9a-fA-F]*")
VALUE_KINDS = ("string", "bool", "int", "double", "array", "kvlist", "bytes")

# Protobuf (upb's decoder, which weave's route runs on the request) reads messages nested
# at most 100 deep below the request, and refuses the whole request past that (400). An
# attribute's AnyValue lies this deep (ExportTraceServiceRequest → ResourceSpans →
# Resource → KeyValue → AnyValue, ...), and each array inside it adds two messages
# (ArrayValue, AnyValue), each key/value list three (KeyValueList, KeyValue, AnyValue):
# measured on weave-ref, a span attribute holds 47 arrays or 31 key/value lists at most.
PROTOBUF_DEPTH = 100
RESOURCE_LEVEL, SCOPE_LEVEL, SPAN_LEVEL, EVENT_LEVEL = 4, 5, 5, 6


class FieldError(ValueError):
    """A field that cannot be read: `field` is its path relative to what was being read."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    """A field by its OTLP/JSON (camelCase) name or its proto name, as protobuf accepts both."""
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def integer(value: Any, field: str, low: int, high: int) -> int:
    """An integer written as a decimal string (OTLP/JSON) or a JSON number."""
    if isinstance(value, bool):
        raise FieldError(field, f"expected an integer, got {value!r}")
    integral = isinstance(value, float) and value.is_integer()
    if (
        isinstance(value, int)
        or integral
        or (isinstance(value, str) and _INT_TEXT.fullmatch(value))
    ):
        n = int(value)
    else:
        raise FieldError(field, f"expected an integer as a decimal string, got {_show(value)}")
    if not low <= n <= high:
        raise FieldError(field, f"integer {n} out of range ({low}..{high})")
    return n


def optional_integer(obj: dict[str, Any], camel: str, snake: str, high: int) -> int:
    value = get(obj, camel, snake)
    return 0 if value is None else integer(value, camel, 0, high)


def text(obj: dict[str, Any], camel: str, snake: str) -> str:
    value = get(obj, camel, snake)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FieldError(camel, f"expected a string, got {_show(value)}")
    return value


def hex_id(value: Any, field: str, nbytes: int, *, required: bool) -> str | None:
    """A trace or span id: `2 * nbytes` hex digits, read as weave does (lowercase hex)."""
    if value is None or value == "":
        if required:
            raise FieldError(field, f"missing: expected {2 * nbytes} hex digits")
        return None
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        digits = f"{2 * nbytes} hex digits" if nbytes else "hex digits"  # 0: any even count
        raise FieldError(field, f"expected {digits}, got {_show(value)}{_b64_hint(value)}")
    if nbytes and len(value) != 2 * nbytes:
        raise FieldError(field, f"expected {2 * nbytes} hex digits, got {len(value)}: {value!r}")
    if len(value) % 2:
        raise FieldError(field, f"odd number of hex digits: {value!r}")
    return value.lower()


def _b64_hint(value: Any) -> str:
    """For an id written in base64 (protobuf's own JSON mapping of bytes, which some tools
    write, e.g. `MessageToJson`): what it holds, in the hex OTLP/JSON and weave's route read."""
    if not isinstance(value, str) or len(value) not in (12, 24):  # 8 or 16 bytes
        return ""
    try:
        raw = base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        return ""
    return f" (base64 of {raw.hex()}: OTLP/JSON writes ids in hex, as weave's route reads them)"


def double(value: Any, field: str) -> float:
    """A double as protobuf's JSON parser reads it (the protobuf encoder's own reader)."""
    try:
        return json_double(value, field)
    except EncodeError as exc:
        raise FieldError(field, exc.message) from None


_KIND_OF = {f"{k}Value": k for k in VALUE_KINDS} | {f"{k}_value": k for k in VALUE_KINDS}


def _within(prefix: str, exc: FieldError) -> FieldError:
    """The error of a part, its field path put under `prefix` (paths are built only on error:
    most values are fine, and formatting a path for each would cost more than reading it)."""
    return FieldError(prefix + exc.field, exc.message)


def any_value(value: Any, field: str = "") -> Any:
    """One `AnyValue`: exactly one kind set, read as str/bool/int/float/list/dict/bytes."""
    if type(value) is dict and len(value) == 1:  # most values: one string, said at once
        raw = value.get("stringValue")
        if type(raw) is str:
            return raw
    if not isinstance(value, dict):
        raise FieldError(field, f"expected an AnyValue object, got {_show(value)}")
    found = [
        (kind, raw) for k, raw in value.items() if raw is not None and (kind := _KIND_OF.get(k))
    ]
    if len(found) != 1:
        if not found:
            raise FieldError(field, "AnyValue has no value set (weave refuses the whole request)")
        kinds = ", ".join(kind for kind, _ in found)
        raise FieldError(field, f"AnyValue sets more than one value: {kinds}")
    kind, raw = found[0]
    if kind == "string" and isinstance(raw, str):
        return raw
    try:
        return _typed(kind, raw)
    except FieldError as exc:
        raise _within(f"{field}.{kind}Value", exc) from None


def _typed(kind: str, raw: Any) -> Any:
    if kind == "string":
        raise FieldError("", f"expected a string, got {_show(raw)}")
    if kind == "bool":
        if not isinstance(raw, bool):
            raise FieldError("", f"expected true or false, got {_show(raw)}")
        return raw
    if kind == "int":
        return integer(raw, "", INT64_MIN, INT64_MAX)
    if kind == "double":
        return double(raw, "")
    if kind == "bytes":
        return base64_bytes(raw, "")
    if not isinstance(raw, dict):
        raise FieldError("", f"expected an object, got {_show(raw)}")
    items = raw.get("values") or []
    if not isinstance(items, list):
        raise FieldError(".values", f"expected a list, got {_show(items)}")
    if kind == "kvlist":
        return dict(key_values(items, ".values"))
    out = []
    for i, v in enumerate(items):
        try:
            out.append(any_value(v))
        except FieldError as exc:
            raise _within(f".values[{i}]", exc) from None
    return out


def key_values(items: Any, field: str, level: int = SPAN_LEVEL) -> list[tuple[str, Any]]:
    """A `KeyValue` list (attributes) as (key, value) pairs, in order, duplicates kept.
    `level`: how deep its values' AnyValues lie below the request (`PROTOBUF_DEPTH`)."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise FieldError(field, f"expected a list of key/value objects, got {_show(items)}")
    out: list[tuple[str, Any]] = []
    for i, kv in enumerate(items):
        if not isinstance(kv, dict):
            raise FieldError(f"{field}[{i}]", f"expected a key/value object, got {_show(kv)}")
        key = kv.get("key", "")
        value = kv.get("value")
        if type(value) is dict and len(value) == 1 and type(key) is str:
            raw = value.get("stringValue")  # most values: one string, taken at once
            if type(raw) is str:
                out.append((key, raw))
                continue
        if not isinstance(key, str):
            raise FieldError(f"{field}[{i}].key", f"expected a string, got {_show(key)}")
        too_deep = nesting_error(value, level)
        if too_deep is not None:
            raise FieldError(f"{field}[{i}].value", too_deep)
        try:
            out.append((key, any_value(value or {})))
        except FieldError as exc:
            raise _within(f"{field}[{i}].value", exc) from None
    return out


def base64_bytes(raw: Any, field: str) -> bytes:
    """bytesValue as protobuf's JSON parser reads it (standard or URL-safe, padding optional)."""
    try:
        return b64_bytes(raw, field)
    except EncodeError as exc:
        raise FieldError(field, exc.message) from None


_LISTS = (("arrayValue", "array_value", False), ("kvlistValue", "kvlist_value", True))


def nesting_error(value: Any, level: int) -> str | None:
    """Why weave's server refuses the request that holds this AnyValue, `level` messages
    deep (see `PROTOBUF_DEPTH`), for its nesting; None when it does not. Measured without
    recursion (a JSON value may nest ~1000 deep); what is no AnyValue is the reader's."""
    if type(value) is not dict or len(value) != 1 or "stringValue" in value:
        return None  # a string, a number, ... (or no value: the reader says)
    deepest, lists = level, 0
    stack: list[tuple[Any, int, int]] = [(value, level, 0)]  # (AnyValue, its level, lists)
    while stack:
        v, d, n = stack.pop()
        if type(v) is not dict:
            continue
        deepest, lists = max((deepest, lists), (d, n))
        for camel, snake, pairs in _LISTS:
            body = v.get(camel, v.get(snake))
            if type(body) is not dict:
                continue
            deepest, lists = max((deepest, lists), (d + 1, n + 1))  # ArrayValue, KeyValueList
            items = body.get("values")
            for item in items if type(items) is list else ():
                if not pairs:
                    stack.append((item, d + 2, n + 1))
                elif type(item) is dict:  # a KeyValue, then its AnyValue
                    deepest, lists = max((deepest, lists), (d + 2, n + 1))
                    stack.append((item.get("value"), d + 3, n + 1))
    if deepest <= PROTOBUF_DEPTH:
        return None
    return (
        f"{lists} arrays or key/value lists inside each other: {deepest} levels of protobuf "
        f"messages, past the {PROTOBUF_DEPTH} weave's server reads (it refuses the whole "
        "request, 400)"
    )
