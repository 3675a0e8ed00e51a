"""One OTLP/JSON span (and its resource) decoded into typed values, and weave's copy of it.

`decode_span` reads a span object as weave's server would after protobuf parsing: ids as
lowercase hex, 64-bit integers, attributes expanded the weave way. It raises `FieldError`
(field path relative to the span) for what weave's server cannot take. `otel_dump` is
weave's `Span.as_dict()`: the whole span as weave keeps it in `attributes.otel_span`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tracecli.otel.anyvalue import (
    UINT32_MAX,
    UINT64_MAX,
    FieldError,
    base64_bytes,
    get,
    hex_id,
    integer,
    key_values,
    optional_integer,
    text,
)
from tracecli.otel.nesting import (
    PathConflictError,
    expand_attributes,
    load_json_text,
    to_json_serializable,
)
from tracecli.otel.weave_keys import iso_from_ns, utc_from_seconds

SPAN_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_CODES = ("UNSET", "OK", "ERROR")
STATUS_ERROR = 2


@dataclass
class Resource:
    attributes: dict[str, Any] = field(default_factory=dict)
    dropped_attributes_count: int = 0
    _dump: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def dump(self) -> dict[str, Any]:
        """Weave's `Resource.as_dict()`, made JSON-safe once for all the spans that share it."""
        if self._dump is None:
            self._dump = to_json_serializable(
                {
                    "attributes": self.attributes,
                    "dropped_attributes_count": self.dropped_attributes_count,
                }
            )
        return self._dump


# Event and Link: field names and order are weave's, which serialises them field by field.
@dataclass
class Event:
    name: str
    timestamp: int  # ns since the epoch
    attributes: dict[str, Any] = field(default_factory=dict)
    dropped_attributes_count: int = 0
    # attributes hold only what JSON writes as is: not copied for the dump (see Span.plain)
    plain: bool = field(default=False, repr=False, compare=False)


@dataclass
class Link:
    trace_id: str
    span_id: str
    trace_state: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    dropped_attributes_count: int = 0
    flags: int = 0


@dataclass
class Span:
    resource: Resource | None
    name: str
    trace_id: str
    span_id: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    attributes: dict[str, Any] = field(default_factory=dict)
    kind: int = 0
    parent_id: str | None = None
    trace_state: str = ""
    flags: int = 0
    events: list[Event] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    status_code: int = 0
    status_message: str = ""
    # attributes hold only what JSON writes as is (no bytes, no NaN): not copied for the dump
    plain: bool = False

    @property
    def start_time(self) -> datetime:
        """Weave's arithmetic: float seconds, rounded to the microsecond (not truncated)."""
        return utc_from_seconds(self.start_time_unix_nano / 1_000_000_000)

    @property
    def end_time(self) -> datetime:
        return utc_from_seconds(self.end_time_unix_nano / 1_000_000_000)

    def otel_dump(self, start_iso: str | None = None, end_iso: str | None = None) -> dict[str, Any]:
        """Weave's `Span.as_dict()`, the whole span as it keeps it (`to_json_serializable` of
        it, field by field: the times as isoformat text, which the caller may have made)."""
        return {
            "name": self.name,
            "context": {
                "trace_id": self.trace_id,
                "span_id": self.span_id,
                "trace_state": self.trace_state,
            },
            "kind": SPAN_KINDS[self.kind],
            "parent_id": self.parent_id,
            "start_time": iso_from_ns(self.start_time_unix_nano)
            if start_iso is None
            else start_iso,
            "end_time": iso_from_ns(self.end_time_unix_nano) if end_iso is None else end_iso,
            "status": {"code": STATUS_CODES[self.status_code], "message": self.status_message},
            # plain: the same values, shared (nothing changes them from here on)
            "attributes": self.attributes if self.plain else to_json_serializable(self.attributes),
            "events": [_event_dump(e) for e in self.events],
            "links": [_link_dump(k) for k in self.links],
            "resource": self.resource.dump() if self.resource else None,
        }


def _event_dump(e: Event) -> dict[str, Any]:
    """`to_json_serializable(event)`: its fields in order, without dataclasses.fields()."""
    return {
        "name": e.name,
        "timestamp": e.timestamp,
        "attributes": e.attributes if e.plain else to_json_serializable(e.attributes),
        "dropped_attributes_count": e.dropped_attributes_count,
    }


def _link_dump(k: Link) -> dict[str, Any]:
    """`to_json_serializable(link)`, as `_event_dump`."""
    return {
        "trace_id": k.trace_id,
        "span_id": k.span_id,
        "trace_state": k.trace_state,
        "attributes": to_json_serializable(k.attributes),
        "dropped_attributes_count": k.dropped_attributes_count,
        "flags": k.flags,
    }


def attributes_of(obj: dict[str, Any], where: str = "attributes") -> dict[str, Any]:
    """An object's `attributes` list, decoded and expanded as weave does."""
    quick = _quick_attributes(obj.get("attributes"))
    if quick is not None:
        return quick[0]
    pairs = key_values(obj.get("attributes"), where)
    try:
        return expand_attributes(pairs)
    except PathConflictError as exc:
        raise FieldError(f"{where}[{exc.index}].key", str(exc)) from None


def decode_resource(raw: Any) -> Resource:
    """A `resource` object (field paths relative to it)."""
    if raw is None:
        return Resource()
    if not isinstance(raw, dict):
        raise FieldError("", f"expected an object, got {type(raw).__name__}")
    return Resource(
        attributes_of(raw),
        optional_integer(raw, "droppedAttributesCount", "dropped_attributes_count", UINT32_MAX),
    )


def _enum(obj: dict[str, Any], camel: str, snake: str, names: tuple[str, ...], prefix: str) -> int:
    value = get(obj, camel, snake)
    if value is None:
        return 0
    if isinstance(value, str) and value.startswith(prefix) and value[len(prefix) :] in names:
        return names.index(value[len(prefix) :])
    n = integer(value, camel, -(2**31), 2**31 - 1)
    if not 0 <= n < len(names):
        raise FieldError(camel, f"unknown value {n} (weave knows 0..{len(names) - 1})")
    return n


def decode_span(raw: Any, resource: Resource | None) -> Span:
    """One span object; `FieldError.field` is relative to it (`startTimeUnixNano`)."""
    if type(raw) is dict:
        usual = _quick_span(raw, resource)
        if usual is not None:
            return usual
    if not isinstance(raw, dict):
        raise FieldError("", f"expected a span object, got {type(raw).__name__}")
    status = raw.get("status") or {}
    if not isinstance(status, dict):
        raise FieldError("status", f"expected an object, got {type(status).__name__}")
    try:
        status_code = _enum(status, "code", "code", STATUS_CODES, "STATUS_CODE_")
        status_message = text(status, "message", "message")
    except FieldError as exc:
        raise FieldError(f"status.{exc.field}", exc.message) from None
    # in the order of the fields: a span wrong in two places is told its first one
    name = text(raw, "name", "name")
    trace_id = hex_id(get(raw, "traceId", "trace_id"), "traceId", 16, required=True) or ""
    span_id = hex_id(get(raw, "spanId", "span_id"), "spanId", 8, required=True) or ""
    parent_id = hex_id(
        get(raw, "parentSpanId", "parent_span_id"), "parentSpanId", 8, required=False
    )
    start = _time(raw, "startTimeUnixNano", "start_time_unix_nano")
    end = _time(raw, "endTimeUnixNano", "end_time_unix_nano")
    kind = _enum(raw, "kind", "kind", SPAN_KINDS, "SPAN_KIND_")
    trace_state = text(raw, "traceState", "trace_state")
    flags = optional_integer(raw, "flags", "flags", UINT32_MAX)
    quick = _quick_attributes(raw.get("attributes"))  # never raises
    if quick is None:
        attributes, plain = attributes_of(raw), plain_values(raw.get("attributes"))
    else:
        attributes, plain = quick
    return Span(
        resource=resource,
        name=name,
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        kind=kind,
        trace_state=trace_state,
        flags=flags,
        attributes=attributes,
        plain=plain,
        events=[_event(e, f"events[{i}]") for i, e in enumerate(_list(raw, "events"))],
        links=[_link(k, f"links[{i}]") for i, k in enumerate(_list(raw, "links"))],
        status_code=status_code,
        status_message=status_message,
    )


_TRACE_ID = re.compile("[0-9a-f]{32}").fullmatch
_SPAN_ID = re.compile("[0-9a-f]{16}").fullmatch


def _ns(value: Any) -> int | None:
    """A usual time: at most 19 digits (below 2**64); None for anything else."""
    if type(value) is str and len(value) < 20 and value.isdigit() and value.isascii():
        return int(value)
    return None


def _quick_span(raw: dict[str, Any], resource: Resource | None) -> Span | None:
    """`decode_span` of the usual span (the file exporter's: camelCase fields, lowercase
    ids, times as digit strings, kind and status code as numbers, the usual attributes),
    field by field as it reads them; None for anything else, which `decode_span` then
    reads (and refuses with the field's path if it must). Events and links are read as
    there (they raise with their paths)."""
    status = raw.get("status")
    code, message = 0, ""
    if status:
        if type(status) is not dict:
            return None
        code = status.get("code", 0)
        message = status.get("message", "")
        if type(code) is not int or not 0 <= code < 3 or type(message) is not str:
            return None
    name = raw.get("name", "")
    trace_id = raw.get("traceId")
    span_id = raw.get("spanId")
    parent_id = raw.get("parentSpanId")
    if (
        type(name) is not str
        or type(trace_id) is not str
        or type(span_id) is not str
        or not _TRACE_ID(trace_id)
        or not _SPAN_ID(span_id)
    ):
        return None
    if parent_id is None:
        if "parent_span_id" in raw:
            return None
    elif parent_id == "":
        parent_id = None
    elif type(parent_id) is not str or not _SPAN_ID(parent_id):
        return None
    start = _ns(raw.get("startTimeUnixNano"))
    end = _ns(raw.get("endTimeUnixNano"))
    kind = raw.get("kind", 0)
    trace_state = raw.get("traceState")
    flags = raw.get("flags", 0)
    if (
        start is None
        or end is None
        or type(kind) is not int
        or not 0 <= kind < len(SPAN_KINDS)
        or type(flags) is not int
        or not 0 <= flags <= UINT32_MAX
    ):
        return None
    if trace_state is None:
        if "trace_state" in raw:
            return None
        trace_state = ""
    elif type(trace_state) is not str:
        return None
    quick = _quick_attributes(raw.get("attributes"))
    if quick is None:
        return None
    return Span(
        resource=resource,
        name=name,
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        kind=kind,
        trace_state=trace_state,
        flags=flags,
        attributes=quick[0],
        plain=quick[1],
        events=[_event(e, f"events[{i}]") for i, e in enumerate(_list(raw, "events"))],
        links=[_link(k, f"links[{i}]") for i, k in enumerate(_list(raw, "links"))],
        status_code=code,
        status_message=message,
    )


def _time(obj: dict[str, Any], camel: str, snake: str) -> int:
    value = obj.get(camel)
    if type(value) is str and len(value) < 20 and value.isdigit() and value.isascii():
        return int(value)  # the usual: at most 19 digits, below 2**64
    return optional_integer(obj, camel, snake, UINT64_MAX)


_INT64_DIGITS = 19  # a decimal string shorter than this is an int64 when all digits
_OPENERS = ("[", "{")
_CONTAINERS = (dict, list)
_NO = object()  # not a usual value: the general reader decides


def _quick_attributes(items: Any) -> tuple[dict[str, Any], bool] | None:
    """`(attributes_of(...), plain_values(...))` in one pass for the usual attribute list
    (values of the usual kinds, one kind each, string keys, no clash between keys); None
    for anything else, which the general code then reads (and refuses with the field's
    path if it must). Most spans of a file are read here."""
    if items is None:
        return {}, True
    if type(items) is not list:
        return None
    keys: list[str] = []
    values: list[Any] = []
    plain = True
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
                    plain = False
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
            if plain:
                for text_ in x:  # text that may hold NaN (see `_plain`)
                    if text_[:1] in _OPENERS and ("NaN" in text_ or "Infinity" in text_):
                        plain = False
                        break
        else:
            x = _quick_value(kind, x, 0)
            if x is _NO:
                return None
            if plain and kind not in _PLAIN_KINDS and not _plain(value, 0):
                plain = False  # bytes, or text in a list that may hold NaN
        keys.append(key)
        values.append(x)
    shape = tuple(keys)
    build = _SHAPES.get(shape)
    if build is None:
        build = _builder(shape)
    if build is not _NESTED:
        return build(values), plain
    result = _nest(keys, values)
    return None if result is None else (result, plain)


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


def plain_values(items: Any) -> bool:
    """Whether an attribute list (already decoded without error) holds only values that
    weave's `to_json_serializable` leaves as they are: strings (no JSON text that may hold
    NaN), integers, booleans, doubles written as JSON numbers, and lists and key/value
    lists of them. Bytes, NaN or anything else say no."""
    return all(_plain(kv.get("value"), 0) for kv in items or ())


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


def _list(raw: dict[str, Any], name: str) -> list[Any]:
    value = raw.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise FieldError(name, f"expected a list, got {type(value).__name__}")
    return value


def _nested(where: str, exc: FieldError) -> FieldError:
    return FieldError(f"{where}.{exc.field}" if exc.field else where, exc.message)


def _event(raw: Any, where: str) -> Event:
    if not isinstance(raw, dict):
        raise FieldError(where, "expected an event object")
    try:
        name = text(raw, "name", "name")
        timestamp = _time(raw, "timeUnixNano", "time_unix_nano")
        quick = _quick_attributes(raw.get("attributes"))  # never raises
        attributes, plain = (attributes_of(raw), False) if quick is None else quick
        return Event(
            name=name,
            timestamp=timestamp,
            attributes=attributes,
            dropped_attributes_count=optional_integer(
                raw, "droppedAttributesCount", "dropped_attributes_count", UINT32_MAX
            ),
            plain=plain,
        )
    except FieldError as exc:
        raise _nested(where, exc) from None


def _link(raw: Any, where: str) -> Link:
    if not isinstance(raw, dict):
        raise FieldError(where, "expected a link object")
    try:
        return Link(
            trace_id=hex_id(get(raw, "traceId", "trace_id"), "traceId", 0, required=False) or "",
            span_id=hex_id(get(raw, "spanId", "span_id"), "spanId", 0, required=False) or "",
            trace_state=text(raw, "traceState", "trace_state"),
            attributes=attributes_of(raw),
            dropped_attributes_count=optional_integer(
                raw, "droppedAttributesCount", "dropped_attributes_count", UINT32_MAX
            ),
            flags=optional_integer(raw, "flags", "flags", UINT32_MAX),
        )
    except FieldError as exc:
        raise _nested(where, exc) from None
