"""A span's attribute list (OTLP `KeyValue`s) read the usual way: decoded, checked and
nested as weave expands it, in one pass.

Most of a span's cost is its attributes, and most attribute lists are usual (string, int,
bool, double, array, key/value list and bytes values, one kind each, string keys, no clash
between keys): `quick_attributes` reads them at once and names the keys whose values JSON
does not write as they are (`impure`: bytes, text that may hold NaN); anything else is
left to the general reader (`tracecli.otel.span_parts.attributes_of`), which names the field
at fault. Lists of a shape a file repeats are nested by a function built once for that
shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from tracecli.otel.anyvalue import FieldError, base64_bytes
from tracecli.otel.nesting import load_json_text

_INT64_DIGITS = 19  # a decimal string shorter than this is an int64 when all digits
_OPENERS = ("[", "{")
_CONTAINERS = (dict, list)
_NO = object()  # not a usual value: the general reader decides


Impure = tuple[str, ...]  # the keys of an attribute list whose values are not plain


class Read(NamedTuple):
    """An attribute list read: expanded as weave does, its impure keys, all its keys."""

    values: dict[str, Any]
    impure: Impure
    keys: tuple[str, ...]  # as read, in order (dotted): what weave's picks may find


def quick_attributes(items: Any) -> Read | None:
    """`Read(attributes_of(...), impure_keys(...), keys)` in one pass for the usual attribute list
    (values of the usual kinds, one kind each, string keys, no clash between keys); None
    for anything else, which the general code then reads (and refuses with the field's
    path if it must). Most spans of a file are read here."""
    if items is None:
        return Read({}, (), ())
    if type(items) is not list:
        return None
    keys: list[str] = []
    values: list[Any] = []
    impure: list[str] = []
    for kv in items:
        # the usual KeyValue (see `_pair`), read here: most of a span's work is this loop
        if type(kv) is not dict:
            return None
        key = kv.get("key", "")
        value = kv.get("value")
        if type(key) is not str or type(value) is not dict or len(value) != 1:
            return None
        ((kind, x),) = value.items()
        if kind == "stringValue" and type(x) is str:
            if x[:1] in _OPENERS:  # weave loads JSON-looking text (at the top level only)
                if "NaN" in x or "Infinity" in x:
                    impure.append(key)
                x = load_json_text(x)
        elif kind == "intValue" and type(x) is str and len(x) < _INT64_DIGITS and x.isdigit():
            if not x.isascii():
                return None  # other digits: the general reader
            x = int(x)  # signs, JSON numbers and big values: `_quick_value`
        elif kind == "doubleValue" and (type(x) is float or type(x) is int):
            x = float(x)
        elif kind == "boolValue" and type(x) is bool:
            pass
        elif kind == "arrayValue" and type(x) is dict and len(x) == 1 and _strings(x):
            # the usual array: plain strings (finish reasons); weave loads no JSON in it
            x = [v["stringValue"] for v in x["values"]]
            for text_ in x:  # text that may hold NaN (see `_plain`)
                if text_[:1] in _OPENERS and ("NaN" in text_ or "Infinity" in text_):
                    impure.append(key)
                    break
        else:
            x = _quick_value(kind, x, 0)
            if x is _NO:
                return None
            if kind not in _PLAIN_KINDS and not _plain(value, 0):
                impure.append(key)  # bytes, or text in a list that may hold NaN
        keys.append(key)
        values.append(x)
    return _finish(keys, values, impure)


def _finish(keys: list[str], values: list[Any], impure: list[str]) -> Read | None:
    """The read list's values nested (by its shape's builder, or key by key); None at a
    clash between keys. Also the typed reader's (`tracecli.otel.typed`)."""
    shape = tuple(keys)
    build = _SHAPES.get(shape)
    if build is None:
        build = _builder(shape)
    if build is not _NESTED:
        return Read(build(values), tuple(impure), shape)
    result = _nest(keys, values)
    return None if result is None else Read(result, tuple(impure), shape)


def _strings(x: dict[str, Any]) -> bool:
    """An arrayValue's body `{"values": [...]}` of one-kind `stringValue` strings only."""
    values = x.get("values")
    if type(values) is not list:
        return False
    for v in values:
        if type(v) is not dict or len(v) != 1 or type(v.get("stringValue")) is not str:
            return False
    return True


def _nest(keys: list[str], values: list[Any]) -> dict[str, Any] | None:
    """Weave's `expand_attributes` of decoded values (`set_nested`, on paths split once
    per key); None at a clash between keys (the general code then says it)."""
    result: dict[str, Any] = {}
    for key, x in zip(keys, values, strict=True):
        if "." in key:
            path = _PATHS.get(key)
            if path is None:
                path = _path(key)
            current = result
            for part in path[0]:
                nxt = current.get(part, _NO)
                if nxt is _NO:
                    nxt = current[part] = {}
                elif type(nxt) is not dict:
                    return None  # a clash: the general code says it
                current = nxt
            last = path[1]
            existing = current.get(last)
            if (
                existing is not None
                and type(existing) in _CONTAINERS
                and type(x) not in _CONTAINERS
            ):
                return None  # a clash: the general code says it
            current[last] = x
        else:
            existing = result.get(key)
            if existing is not None and type(existing) in _CONTAINERS:
                return None  # perhaps a clash: the general code says it
            result[key] = x
    return result


Builder = Callable[[list[Any]], dict[str, Any]]


def _key_by_key(values: list[Any]) -> dict[str, Any]:
    raise AssertionError("a marker, never called")


_NESTED: Builder = _key_by_key  # the shape is nested key by key (`_nest`)
_SHAPES: dict[tuple[str, ...], Builder] = {}  # attribute keys in order → their builder
_SEEN: set[tuple[str, ...]] = set()  # shapes met once (built at the second)
_MAX_KEYS, _MAX_PARTS = 256, 16


def _builder(shape: tuple[str, ...]) -> Builder:
    """What `_nest` makes of attributes with these keys (in this order), as one function
    that builds the nested objects at once, for the shapes a file repeats (the spans of
    an instrumentation share their keys): possible when no key is another's prefix at a
    dot and none repeats (then no value is walked into, nothing clashes, and each object
    holds its parts in the order they first appear, as set_nested leaves them). The
    function is made from the key tree's positions: `{n[0]: {n[1]: v[0], ...}, ...}`
    with `n` the parts and `v` the values; no key text goes into its code."""
    if shape in _SEEN:
        _SEEN.discard(shape)
        build = _compile(shape)
    else:
        if len(_SEEN) >= 1024:
            _SEEN.clear()
        _SEEN.add(shape)
        return _NESTED  # met once: perhaps never again
    if len(_SHAPES) >= 1024:
        _SHAPES.clear()
    _SHAPES[shape] = build
    return build


def _compile(shape: tuple[str, ...]) -> Builder:
    if len(shape) > _MAX_KEYS:
        return _NESTED
    tree: dict[str, Any] = {}
    for i, key in enumerate(shape):
        parts = key.split(".")
        if len(parts) > _MAX_PARTS:
            return _NESTED
        node = tree
        for part in parts[:-1]:
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            elif type(nxt) is not dict:
                return _NESTED  # an earlier key is a prefix of this one
            node = nxt
        if parts[-1] in node:
            return _NESTED  # a repeated key, or a prefix of an earlier one
        node[parts[-1]] = i
    names: list[str] = []

    def code(node: dict[str, Any]) -> str:
        items = []
        for part, sub in node.items():
            at = len(names)
            names.append(part)
            value = f"v[{sub}]" if type(sub) is int else code(sub)
            items.append(f"n[{at}]: {value}")
        return "{" + ", ".join(items) + "}"

    text = f"lambda v, n=n: {code(tree)}"
    build: Builder = eval(text, {"__builtins__": {}, "n": tuple(names)})
    return build


def _pair(kv: Any) -> tuple[str, dict[str, Any], str, Any] | None:
    """A usual `KeyValue`: (key, value object, its one kind, the raw value); else None."""
    if type(kv) is not dict:
        return None
    key = kv.get("key", "")
    value = kv.get("value")
    if type(key) is not str or type(value) is not dict or len(value) != 1:
        return None
    ((kind, x),) = value.items()
    return key, value, kind, x


_PATHS: dict[str, tuple[list[str], str]] = {}


def _path(key: str) -> tuple[list[str], str]:
    """A dotted key's parts: (those before the last, the last), kept for the next span."""
    if len(_PATHS) > 8192:
        _PATHS.clear()
    *head, last = key.split(".")
    path = _PATHS[key] = (head, last)
    return path


_PLAIN_KINDS = frozenset({"intValue", "boolValue", "doubleValue"})


def _quick_value(kind: str, x: Any, depth: int) -> Any:
    """`any_value({kind: x})` for the usual kinds, or `_NO` (the general reader then
    reads it, with the field path of what is wrong)."""
    tx = type(x)
    if kind == "stringValue":
        return x if tx is str else _NO
    if kind == "intValue":
        if tx is str and len(x) < _INT64_DIGITS and x.isdigit() and x.isascii():
            return int(x)
        return _NO  # signs, JSON numbers and big values: the general reader
    if kind == "boolValue":
        return x if tx is bool else _NO
    if kind == "doubleValue":
        return float(x) if tx is float or tx is int else _NO
    if kind == "bytesValue":
        try:
            return base64_bytes(x, "")
        except FieldError:
            return _NO
    if depth > 3 or tx is not dict or len(x) > 1:
        return _NO
    values = x.get("values") if x else []
    if type(values) is not list:
        return _NO
    if kind == "arrayValue":
        out: list[Any] = []
        for v in values:
            if type(v) is not dict or len(v) != 1:
                return _NO
            ((k, raw),) = v.items()
            item = _quick_value(k, raw, depth + 1)
            if item is _NO:
                return _NO
            out.append(item)
        return out
    if kind == "kvlistValue":
        obj: dict[str, Any] = {}
        for kv in values:
            pair = _pair(kv)
            if pair is None:
                return _NO
            key, _, k, raw = pair
            item = _quick_value(k, raw, depth + 1)
            if item is _NO:
                return _NO
            obj[key] = item
        return obj
    return _NO


_SCALARS = frozenset({"stringValue", "intValue", "boolValue", "string_value", "int_value",
                      "bool_value"})  # fmt: skip


def impure_keys(items: Any) -> Impure:
    """The keys of an attribute list (already decoded without error) whose values weave's
    `to_json_serializable` does not leave as they are, in order: all but strings (no JSON
    text that may hold NaN), integers, booleans, doubles written as JSON numbers, and lists
    and key/value lists of them (bytes, NaN, anything else). Empty: the list is plain."""
    return tuple(kv.get("key", "") for kv in items or () if not _plain(kv.get("value"), 0))


def _plain(value: Any, depth: int) -> bool:
    if type(value) is not dict or len(value) != 1 or depth > 8:
        return False
    ((kind, x),) = value.items()
    if kind == "stringValue" or kind == "string_value":
        return not (x[:1] in ("[", "{") and ("NaN" in x or "Infinity" in x))
    if kind in _SCALARS:
        return True
    if kind == "doubleValue" or kind == "double_value":
        return type(x) is not str  # "NaN", "Infinity" (or a number as text)
    if kind == "arrayValue" or kind == "array_value":
        return all(_plain(v, depth + 1) for v in x.get("values") or ())
    if kind == "kvlistValue" or kind == "kvlist_value":
        return all(_plain(kv.get("value"), depth + 1) for kv in x.get("values") or ())
    return False
