"""Weave's handling of span attributes, reproduced: dotted keys → nested objects, and back.

Weave (`trace_server/opentelemetry/helpers.py`) turns `gen_ai.usage.input_tokens` into
`{"gen_ai": {"usage": {"input_tokens": …}}}`, loads every string that starts with `[` or `{`
as JSON, refuses a span with both `a` and `a.b`, and finds values again by dotted path.
Its lookups also convert objects with keys "0", "1", … into lists *in place*, which shows in
what it stores; so these functions follow its code step by step, mutations included, and
must not be "simplified" without checking against weave's server.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
from collections.abc import Iterable
from dataclasses import fields, is_dataclass
from datetime import datetime
from typing import Any

import msgspec
import orjson


class PathConflictError(ValueError):
    """Both `a` and `a.b` (or `a.b` under a non-object `a`): weave rejects the span.
    `index` is the position of the attribute that clashed with an earlier one."""

    index: int = -1


def _conflict(key: str, sub: str) -> PathConflictError:
    # keys are trace text: shown as Python literals (escaped, one line), and shortened
    a, b = (repr(k if len(k) <= 60 else k[:57] + "...") for k in (key, f"{key}.{sub}"))
    return PathConflictError(
        f"attributes {a} and {b} both set: weave refuses such a span "
        f"(keep only the nested keys, or rename {a})"
    )


# ASCII digits to "0", every other byte to " ": a run of 19 digits becomes a run of 19 "0"
_DIGITS_TO_ZERO = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))
_WIDE_RUN = b"0" * 19


def has_wide_digits(text: str) -> bool:
    """Whether `text` holds a run of 19 ASCII digits (what `re` writes `[0-9]{19}`): the
    only place an integer orjson cannot hold may be. A scan of bytes (encode, translate,
    find) costs half the instructions of the regex, whose character class is tried at every
    position. UTF-8 writes other characters, surrogates too (`surrogatepass`), with bytes
    of 0x80 and up only, so no digit appears that the text did not hold as one."""
    return _WIDE_RUN in text.encode("utf-8", "surrogatepass").translate(_DIGITS_TO_ZERO)


_decode = msgspec.json.decode
_INT_DIGITS_LIMIT = 4300  # sys.int_info.default_max_str_digits

# Texts loaded that may nest deep enough for weave's server to store a call it cannot read
# back (`tracecli.otel.deep_text`): the readers compare the count before and after a span.
# Such a call nests the text at least 2 levels below its `otel_dump` (4 for an event's):
# text of `SUSPECT` levels or more (2 bytes a level) leaves ~50 levels for dotted keys.
DEEP_TEXTS = [0]
SUSPECT = 200
_SUSPECT_LEN = 2 * SUSPECT


def load_json_text(text: str) -> Any:
    """What weave's `json.loads` makes of an attribute string that starts with `[` or `{`;
    the string itself when it is no JSON. orjson reads the common case ~5x faster and
    agrees with the stdlib on everything both accept, except integers beyond 64 bits (orjson
    makes floats of them): text with a run of 19 digits, and whatever orjson refuses (NaN,
    lone surrogates, nesting past 1024), is read by the stdlib, as weave reads it (a
    hypothesis test holds the two to the same values).

    msgspec reads integers beyond 64 bits exactly, as the stdlib does, so text shorter than
    the stdlib's limit on an integer's digits (4,300: past it, it refuses the text) is read
    by msgspec first, without the search for wide digits (~0.4 µs of a ~1 µs text).

    A long text with brackets enough to nest `SUSPECT` levels is counted in `DEEP_TEXTS`."""
    if len(text) >= _SUSPECT_LEN and text.count("[") + text.count("{") >= SUSPECT:
        DEEP_TEXTS[0] += 1
    if len(text) < _INT_DIGITS_LIMIT:
        try:
            return _decode(text)
        except (msgspec.DecodeError, RecursionError, UnicodeEncodeError):
            pass  # (NaN, lone surrogates, 1e400, not JSON: the stdlib says)
    elif not has_wide_digits(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    # the stdlib, as weave: NaN, big ints, the last of duplicate keys
    with contextlib.suppress(json.JSONDecodeError, RecursionError):
        return json.loads(text)
    return text


def expand_attributes(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Attributes as weave's `expand_attributes`: JSON-looking strings loaded, keys nested."""
    result: dict[str, Any] = {}
    for index, (flat_key, value) in enumerate(pairs):
        if isinstance(value, str) and value.startswith(("[", "{")):
            value = load_json_text(value)
        try:
            set_nested(result, flat_key, value)
        except PathConflictError as exc:
            exc.index = index
            raise
    return result


_MISSING = object()
_MAPPING = (dict, list)


def set_nested(d: dict[str, Any], key: str, value: Any) -> None:
    """Weave's `_validate_structure` then `_set_nested_value`, in one walk down the path:
    a part that holds something other than an object, or a value that would replace an
    object or a list with a scalar, is a conflict (weave refuses the span)."""
    if "." not in key:
        existing = d.get(key)
        if isinstance(existing, _MAPPING) and not isinstance(value, _MAPPING):
            raise _conflict(key, "*")
        d[key] = value
        return
    parts = key.split(".")
    last = len(parts) - 1
    current = d
    for i in range(last):
        part = parts[i]
        nxt = current.get(part, _MISSING)
        if nxt is _MISSING:
            nxt = current[part] = {}
        elif type(nxt) is not dict and not isinstance(nxt, dict):
            raise _conflict(".".join(parts[: i + 1]), parts[i + 1])
        current = nxt
    existing = current.get(parts[last])
    if isinstance(existing, _MAPPING) and not isinstance(value, _MAPPING):
        raise _conflict(key, "*")
    current[parts[last]] = value


def nested_get(d: dict[str, Any], key: str) -> Any:
    """Weave's `_get_value_from_nested_dict`: digits index into lists on the way."""
    head, dot, _ = key.partition(".")
    if not dot:
        return d.get(key)
    if head not in d:  # most of weave's keys are not there at all: the quick no
        return None
    current: Any = d
    for part in key.split("."):
        if not isinstance(current, dict) or part not in current:
            if isinstance(current, list) and part.isdigit():
                index = int(part)
                current = current[index] if index < len(current) else None
                continue
            return None
        current = current[part]
    return current


def get_attribute(data: dict[str, Any], key: str) -> Any:
    """Weave's `get_attribute`: a flat key first, then the dotted path."""
    if key in data:
        return data[key]
    return nested_get(data, key)


def numeric_keys_to_list(obj: dict[str, Any]) -> dict[str, Any] | list[Any]:
    """Weave's `convert_numeric_keys_to_list`: nested objects converted in place, then this
    one returned as a list when its keys are exactly "0".."n-1"."""
    for key, value in obj.items():
        if isinstance(value, dict):
            obj[key] = numeric_keys_to_list(value)
    for key in obj:  # the usual answer, without raising: a key that is no digits
        if type(key) is not str or not key.isdigit():
            return obj
    try:
        keys = sorted(int(k) for k in obj)
        if keys == list(range(len(keys))) and all(isinstance(k, str) and k.isdigit() for k in obj):
            return [obj[str(i)] for i in range(len(keys))]
    except (ValueError, TypeError):
        pass
    return obj


def try_numeric_keys_to_list(value: Any) -> Any:
    if isinstance(value, dict):
        try:
            return numeric_keys_to_list(value)
        except Exception:  # weave's bare except (a `try`: cheaper than contextlib.suppress)
            return value
    return value


def to_json_serializable(value: Any) -> Any:
    """Weave's `to_json_serializable` for the types a span can hold."""
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return value
    if t is float:  # (`_serializable`'s answer: NaN and the infinities as text; x - x is
        return value if value - value == 0.0 else str(value)  # 0.0 for every finite x)
    if t is dict:
        return {
            k if type(k) is str else str(k): v
            if (tv := type(v)) is str or tv is int or tv is bool or v is None
            else to_json_serializable(v)
            for k, v in value.items()
        }
    if t is list:
        return [
            v if (tv := type(v)) is str or tv is int or tv is bool else to_json_serializable(v)
            for v in value
        ]
    return _serializable(value)


def json_safe_path(out: dict[str, Any], parts: list[str], fresh: set[int]) -> bool:
    """The value at a dotted path of `out` (a copy of the attributes' top level) made
    JSON-safe, the objects on the way copied (once); False where the path is not a chain of
    objects ending at a key (nothing changed then but copies)."""
    node = out
    for part in parts[:-1]:
        child = node.get(part)
        if type(child) is not dict:
            return False
        if id(child) not in fresh:
            child = node[part] = dict(child)
            fresh.add(id(child))
        node = child
    last = parts[-1]
    if last not in node:
        return False
    node[last] = to_json_serializable(node[last])
    return True


def _serializable(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return str(value) if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, (list, tuple)):
        return [to_json_serializable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json_serializable(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json_serializable(getattr(value, f.name)) for f in fields(value)}
    raise ValueError(f"unsupported type for JSON: {type(value).__name__}")
