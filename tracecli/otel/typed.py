"""Typed decoding of an OTLP/JSON line: its bytes straight to decoded spans, for the usual line.

`orjson.loads` builds two dicts per attribute (`{"key": .., "value": {"stringValue": ..}}`)
and the usual reader (`spans._quick_span`, `attrlist.quick_attributes`) then checks each
one's keys and types in Python. `msgspec` decodes the line into `Struct`s instead, checking
structure and types in C (unknown fields refused), so the Python left per attribute is
picking its one value. `typed_spans` gives the spans `read.spans_of_request` gives for the
same line, or None for anything it does not vouch for (then the caller reads the line the
usual way, which says what is wrong with the field's path): a field it does not know,
another type than the usual one, a span the usual reader would not read quickly, any
value that is not a string, digits, a double or a boolean (arrays, key/value lists and
bytes are kept as their JSON text, `msgspec.Raw`, and loaded with orjson as the usual
reader loads them).

Why the answer is the usual one: every byte of a line it answers for is either decoded
here by type (strings, booleans, doubles, integers in range: msgspec and orjson agree on
what JSON they accept there and what it means, and both keep the last of duplicate keys;
integers are range-checked, as msgspec reads those beyond 64 bits exactly where orjson
makes floats of them) or loaded by orjson (the `Raw` values: msgspec only skips them, more
leniently than orjson parses); the rest is the usual reader's own checks, written for
these types (hypothesis tests hold the two to the same spans, tests/test_otel_typed.py).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from operator import attrgetter
from typing import Any, NamedTuple, cast

import msgspec
import orjson
from msgspec import UNSET, Raw, Struct, UnsetType
from msgspec.structs import astuple

from tracecli.diagnostics import Location
from tracecli.otel.anyvalue import UINT32_MAX, FieldError
from tracecli.otel.attrlist import (
    _NESTED,
    _NO,
    _OPENERS,
    _SHAPES,
    Read,
    _finish,
    _plain,
    _quick_value,
    _strings,
)
from tracecli.otel.nesting import DEEP_TEXTS, load_json_text
from tracecli.otel.read import SpanAt, _resource
from tracecli.otel.span_parts import Event
from tracecli.otel.spans import (
    _SPAN_ID,
    _TRACE_ID,
    SPAN_KINDS,
    Resource,
    Span,
    _ns,
    usual_span,
)
from tracecli.otel.typed_plan import (
    MISS,
    Reader,
    can_compile,
    compile_reader,
    key_of,
    kinds_of,
    maker,
)

__all__ = ["TypedRow", "row_of", "typed_rows", "typed_spans"]


class AnyValue(Struct, forbid_unknown_fields=True, gc=False):
    """One of these is set (checked in Python: none, or two, is not the usual value)."""

    stringValue: str | UnsetType = UNSET
    intValue: str | UnsetType = UNSET  # OTLP/JSON writes 64-bit integers as text
    doubleValue: float | UnsetType = UNSET
    boolValue: bool | UnsetType = UNSET
    arrayValue: Raw | UnsetType = UNSET
    kvlistValue: Raw | UnsetType = UNSET
    bytesValue: str | UnsetType = UNSET


_KINDS = len(AnyValue.__struct_fields__)


class KeyValue(Struct, forbid_unknown_fields=True, gc=False):
    key: str | UnsetType = UNSET
    value: AnyValue | UnsetType = UNSET


class Status(Struct, forbid_unknown_fields=True, gc=False):
    code: int | UnsetType = UNSET
    message: str | UnsetType = UNSET


class TypedEvent(Struct, forbid_unknown_fields=True, gc=False):
    timeUnixNano: str | UnsetType = UNSET
    name: str | UnsetType = UNSET
    attributes: list[KeyValue] | UnsetType = UNSET
    droppedAttributesCount: int | UnsetType = UNSET


class TypedSpan(Struct, forbid_unknown_fields=True, gc=False):
    traceId: str | UnsetType = UNSET
    spanId: str | UnsetType = UNSET
    parentSpanId: str | UnsetType = UNSET
    flags: int | UnsetType = UNSET
    name: str | UnsetType = UNSET
    kind: int | UnsetType = UNSET
    startTimeUnixNano: str | UnsetType = UNSET
    endTimeUnixNano: str | UnsetType = UNSET
    attributes: list[KeyValue] | UnsetType = UNSET
    events: list[TypedEvent] | UnsetType = UNSET
    links: list[Raw] | UnsetType = UNSET  # any link: the usual way
    status: Status | UnsetType = UNSET
    traceState: str | UnsetType = UNSET


class Scope(Struct, forbid_unknown_fields=True, gc=False):
    """Not read (weave keeps nothing of it), but checked as JSON: only these fields."""

    name: str | UnsetType = UNSET
    version: str | UnsetType = UNSET


class ScopeSpans(Struct, forbid_unknown_fields=True, gc=False):
    scope: Scope | UnsetType = UNSET
    spans: list[TypedSpan] | UnsetType = UNSET
    schemaUrl: str | UnsetType = UNSET


class ResourceSpans(Struct, forbid_unknown_fields=True, gc=False):
    resource: Raw | UnsetType = UNSET  # loaded by orjson (once per text: `_typed_resource`)
    scopeSpans: list[ScopeSpans] | UnsetType = UNSET
    schemaUrl: str | UnsetType = UNSET


class Request(Struct, forbid_unknown_fields=True, gc=False):
    resourceSpans: list[ResourceSpans] | UnsetType = UNSET


_decode = msgspec.json.Decoder(Request).decode
_Refused = (msgspec.DecodeError, orjson.JSONDecodeError, FieldError)


def typed_spans(loc: Location, raw: bytes) -> list[SpanAt] | None:
    """The spans of one line as `spans_of_request(loc, orjson.loads(raw))` yields them, when
    the line and all its spans are usual; None otherwise (the caller reads it that way)."""
    rows = typed_rows(raw)
    return None if rows is None else [SpanAt(loc, w, span, p) for w, span, p in rows]


class TypedRow(NamedTuple):
    """A span of `typed_spans`, without its line's location: what mapping a block needs
    (made at C speed, `_new_row`: a frozen `SpanAt` costs ~6k instructions to build)."""

    where: str
    span: Span
    project_id: str | None


# a `SpanAt`'s fields as its row (where, span, project), for code that takes either
row_of = cast(
    Callable[[Any], tuple[str, Span, str | None]], attrgetter("where", "span", "project_id")
)
_new_row = cast(
    Callable[[tuple[str, Span, str | None]], TypedRow], partial(tuple.__new__, TypedRow)
)


def typed_rows(raw: bytes) -> list[TypedRow] | None:
    """`typed_spans` as (where, span, project) rows, made as plain tuples."""
    try:
        request = _decode(raw)
    except (msgspec.DecodeError, RecursionError):  # (nesting too deep for msgspec)
        return None
    rs_list = request.resourceSpans
    if rs_list is UNSET:
        return None
    out: list[TypedRow] = []
    seen = DEEP_TEXTS[0]
    for r, rs in enumerate(rs_list):
        raw_resource = rs.resource
        try:
            resource, project = _typed_resource(raw_resource)
        except _Refused:
            return None
        if resource.deep:
            return None  # JSON text that may nest deep: the usual reader marks its spans
        scopes = rs.scopeSpans
        if scopes is UNSET:
            continue
        for s, ss in enumerate(scopes):
            spans = ss.spans
            if spans is UNSET:
                continue
            at = f"resourceSpans[{r}].scopeSpans[{s}].spans["
            for i, typed in enumerate(spans):
                span = typed_span(typed, resource)
                if span is None:
                    return None
                out.append(_new_row((f"{at}{i}]", span, project)))
    if DEEP_TEXTS[0] != seen:
        return None  # JSON text that may nest deep: the usual reader marks its span
    return out


_RESOURCES: dict[bytes, tuple[Resource, str | None]] = {}


def _typed_resource(raw: Raw | UnsetType) -> tuple[Resource, str | None]:
    """`read._resource` of the resource's JSON text (orjson's reading of it), once per text."""
    if raw is UNSET:
        return _resource(None)
    key = bytes(raw)  # (orjson reads no `Raw`: its bytes)
    got = _RESOURCES.get(key)
    if got is None:
        value = orjson.loads(key)
        if value is None:  # `"resource": null`: as absent (not kept: rare)
            return _resource(None)
        got = _resource(value)  # raises for a bad one: never kept
        if len(_RESOURCES) >= 64:
            _RESOURCES.clear()
        _RESOURCES[key] = got
    return got


def typed_span(raw: TypedSpan, resource: Resource | None) -> Span | None:
    """`spans._quick_span` of the same span read by orjson, or None where it gives None or
    raises (the usual reader then says what it must)."""
    status = raw.status
    code: Any = 0
    message: Any = ""
    if status is not UNSET:
        code = 0 if status.code is UNSET else status.code
        message = "" if status.message is UNSET else status.message
        if not 0 <= code < 3:
            return None
    name = "" if raw.name is UNSET else raw.name
    trace_id = raw.traceId
    span_id = raw.spanId
    if trace_id is UNSET or span_id is UNSET or not _TRACE_ID(trace_id) or not _SPAN_ID(span_id):
        return None
    parent_id: str | None = None
    parent = raw.parentSpanId
    if parent is not UNSET and parent != "":
        if not _SPAN_ID(parent):
            return None
        parent_id = parent
    start = _ns(raw.startTimeUnixNano)
    end = _ns(raw.endTimeUnixNano)
    kind = 0 if raw.kind is UNSET else raw.kind
    flags = 0 if raw.flags is UNSET else raw.flags
    if (
        start is None
        or end is None
        or not 0 <= kind < len(SPAN_KINDS)
        or not 0 <= flags <= UINT32_MAX
    ):
        return None
    links = raw.links
    if links is not UNSET and links:
        return None
    quick = typed_attributes(raw.attributes)
    if quick is None:
        return None
    events: list[Event] = []
    if raw.events is not UNSET:
        for e in raw.events:
            event = _typed_event(e)
            if event is None:
                return None
            events.append(event)
    state = "" if raw.traceState is UNSET else raw.traceState
    ids = (trace_id, span_id, parent_id)
    return usual_span(
        resource, name, ids, (start, end), (kind, state, flags), quick, (code, message), events, []
    )


def _typed_event(raw: TypedEvent) -> Event | None:
    """`span_parts._event` of the usual event (its time as digits, its usual attributes)."""
    timestamp = _ns(raw.timeUnixNano)
    dropped = 0 if raw.droppedAttributesCount is UNSET else raw.droppedAttributesCount
    if timestamp is None or not 0 <= dropped <= UINT32_MAX:
        return None
    quick = typed_attributes(raw.attributes)
    if quick is None:
        return None
    name = "" if raw.name is UNSET else raw.name
    # positional, in the fields' order (name, timestamp, attributes, dropped count, plain):
    # quicker than keywords (see `spans.usual_span`)
    return Event(name, timestamp, quick.values, dropped, not quick.impure)


def typed_attributes(items: list[KeyValue] | UnsetType) -> Read | None:
    """`attrlist.quick_attributes` of the same list read by orjson, or None where it gives
    None (then the whole line is read the usual way). A list of a shape met before is read
    by its shape's function (`tracecli.otel.typed_plan`), the same reading at less cost."""
    if items is UNSET:
        return Read({}, (), ())
    shape = tuple(map(key_of, items))
    reader = _READERS.get(shape)
    if reader is not None:
        got = reader(items)
        if got is not MISS:
            return cast(Read, got)
    got = _read_attributes(items)
    if got is not None:
        _learn(shape, reader, items)
    return got


_READERS: dict[tuple[Any, ...], Reader] = {}  # attribute keys in order → their reader
_REMADE: dict[tuple[Any, ...], int] = {}  # readers made again (their kinds changed)
_make_read = maker(Read)


def _never(items: list[KeyValue]) -> Any:
    return MISS  # a shape whose kinds keep changing: the general loop reads it


def _learn(shape: tuple[Any, ...], reader: Reader | None, items: list[KeyValue]) -> None:
    """A reader for a shape the general loop has just read, once it nests by a function
    of its own (`attrlist._SHAPES`: from its second list on); made again when its kinds
    change (a few times, then the shape is left to the general loop)."""
    build = _SHAPES.get(cast(tuple[str, ...], shape))
    if build is None or build is _NESTED or not can_compile(shape):
        return
    if reader is not None:
        remade = _REMADE[shape] = _REMADE.get(shape, 0) + 1
        if remade > 4:
            _READERS[shape] = _never
            return
    kinds = kinds_of(items)
    if kinds is None:
        return
    if len(_READERS) >= 1024:
        _READERS.clear()
        _REMADE.clear()
    _READERS[shape] = compile_reader(shape, kinds, build, _other, _NO, _make_read)


def _read_attributes(items: list[KeyValue]) -> Read | None:
    """`typed_attributes`' general loop: each value's one kind found and read."""
    keys: list[str] = []
    values: list[Any] = []
    impure: list[str] = []
    unset = UNSET
    for kv in items:
        value = kv.value
        if value is unset or astuple(value).count(unset) != _KINDS - 1:
            return None  # no value, or two kinds: the usual reader says which
        key = kv.key
        if key is unset:
            key = ""
        x: Any = value.stringValue
        if x is not unset:
            if x[:1] in _OPENERS:  # weave loads JSON-looking text (at the top level only)
                if "NaN" in x or "Infinity" in x:
                    impure.append(key)
                x = load_json_text(x)
        elif (x := value.intValue) is not unset:
            if len(x) >= 19 or not x.isdigit() or not x.isascii():
                return None  # signs, other digits and big values: the usual reader
            x = int(x)
        elif (x := value.doubleValue) is not unset or (x := value.boolValue) is not unset:
            pass
        else:
            x = _other(value, key, impure)
            if x is _NO:
                return None
        keys.append(key)
        values.append(x)
    return _finish(keys, values, impure)


def _other(value: AnyValue, key: str, impure: list[str]) -> Any:
    """An array, a key/value list or bytes, as `quick_attributes` reads it from orjson's
    reading of its JSON text; `_NO` where it gives None. An array of scalars is read once
    per text (a file repeats its finish reasons, tags, flags): a fresh list each time, as
    the value is the span's own (weave's look-ups may change lists in place)."""
    x: Any
    if value.bytesValue is not UNSET:
        kind, x = "bytesValue", value.bytesValue
    else:
        text_ = b""  # an array's JSON text (a `Raw` is not hashable)
        if value.arrayValue is not UNSET:
            kind, text_ = "arrayValue", bytes(value.arrayValue)
            seen = _ARRAYS.get(text_)
            if seen is not None:
                if seen[1]:
                    impure.append(key)
                return list(seen[0])
            raw: Any = text_
        else:
            kind, raw = "kvlistValue", memoryview(value.kvlistValue)  # type: ignore[arg-type]
        try:
            x = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _NO
    before = len(impure)
    got = _value(kind, x, key, impure)
    if kind == "arrayValue" and type(got) is list and all(type(v) in _SCALARS for v in got):
        if len(_ARRAYS) >= 4096:
            _ARRAYS.clear()
        _ARRAYS[text_] = (tuple(got), len(impure) > before)
    return got


_ARRAYS: dict[bytes, tuple[tuple[Any, ...], bool]] = {}  # an array's JSON text → (items, impure)
_SCALARS = frozenset({str, int, float, bool})


def _value(kind: str, x: Any, key: str, impure: list[str]) -> Any:
    """`quick_attributes`' reading of an array, key/value list or bytes value, decoded."""
    if kind == "arrayValue" and type(x) is dict and len(x) == 1 and _strings(x):
        strings = [v["stringValue"] for v in x["values"]]
        for t in strings:  # text that may hold NaN (see `attrlist._plain`)
            if t[:1] in _OPENERS and ("NaN" in t or "Infinity" in t):
                impure.append(key)
                break
        return strings
    got = _quick_value(kind, x, 0)
    if got is not _NO and not _plain({kind: x}, 0):
        impure.append(key)  # bytes, or text in a list that may hold NaN
    return got
