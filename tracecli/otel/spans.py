"""One OTLP/JSON span (and its resource) decoded into typed values, and weave's copy of it.

`decode_span` reads a span object as weave's server would after protobuf parsing: ids as
lowercase hex, 64-bit integers, attributes expanded the weave way. It raises `FieldError`
(field path relative to the span) for what weave's server cannot take. `otel_dump` is
weave's `Span.as_dict()`: the whole span as weave keeps it in `attributes.otel_span`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tracecli.otel.anyvalue import (
    RESOURCE_LEVEL,
    UINT32_MAX,
    FieldError,
    get,
    hex_id,
    integer,
    optional_integer,
    text,
)
from tracecli.otel.attrlist import Impure, Read, impure_keys, quick_attributes
from tracecli.otel.nesting import (
    DEEP_TEXTS,
    json_safe_path,
    to_json_serializable,
)
from tracecli.otel.span_parts import (
    Event,
    Link,
    attributes_of,
    event_dump,
    events_of,
    link_dump,
    links_of,
    time_ns,
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
    # its attributes loaded JSON text that may nest deep (`tracecli.otel.deep_text`)
    deep: bool = field(default=False, repr=False, compare=False)

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
    # the attribute keys whose values are not plain (empty when `plain`): a call that picks
    # none of them holds only JSON's own values (see `tracecli.otel.to_weave.plain_call`)
    impure: Impure = ()
    # the attribute keys as read (dotted, in order): where weave's picks may find values
    # (None: not known, the picks look wherever a key's first part is)
    keys: tuple[str, ...] | None = None
    # it (its events, its resource) loaded JSON text that may nest deep: its call is
    # checked for nesting (`tracecli.otel.deep_text`)
    deep: bool = field(default=False, repr=False, compare=False)

    @property
    def start_time(self) -> datetime:
        """Weave's arithmetic: float seconds, rounded to the microsecond (not truncated)."""
        return utc_from_seconds(self.start_time_unix_nano / 1_000_000_000)

    @property
    def end_time(self) -> datetime:
        return utc_from_seconds(self.end_time_unix_nano / 1_000_000_000)

    def json_attributes(self) -> dict[str, Any]:
        """`to_json_serializable(self.attributes)`: its values are JSON's own but for those
        of the impure keys, so only the objects on the way to those are copied, and their
        values made JSON-safe; the others are the same values, shared (nothing changes
        them from here on). Where an impure key's path is not a chain of objects (weave's
        list conversion may have changed it), its whole top-level entry is copied."""
        if self.plain:
            return self.attributes
        out = dict(self.attributes)
        fresh: set[int] = set()  # the objects copied here (their parents' copies hold them)
        whole: set[str] = set()  # top-level entries copied whole
        for key in self.impure:
            head = key.partition(".")[0]
            if head in whole or head not in out:
                continue
            if not json_safe_path(out, key.split("."), fresh):
                out[head] = to_json_serializable(self.attributes[head])
                whole.add(head)
        return out

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
            "attributes": self.json_attributes(),
            "events": [event_dump(e) for e in self.events],
            "links": [link_dump(k) for k in self.links],
            "resource": self.resource.dump() if self.resource else None,
        }


def decode_resource(raw: Any) -> Resource:
    """A `resource` object (field paths relative to it)."""
    if raw is None:
        return Resource()
    if not isinstance(raw, dict):
        raise FieldError("", f"expected an object, got {type(raw).__name__}")
    seen = DEEP_TEXTS[0]
    resource = Resource(
        attributes_of(raw, level=RESOURCE_LEVEL),
        optional_integer(raw, "droppedAttributesCount", "dropped_attributes_count", UINT32_MAX),
    )
    resource.deep = DEEP_TEXTS[0] != seen
    return resource


def _enum(obj: dict[str, Any], camel: str, snake: str, names: tuple[str, ...], prefix: str) -> int:
    value = get(obj, camel, snake)
    if value is None:
        return 0
    if isinstance(value, str) and value.startswith(prefix) and value[len(prefix) :] in names:
        return names.index(value[len(prefix) :])
    try:
        n = integer(value, camel, -(2**31), 2**31 - 1)
    except FieldError:
        if isinstance(value, str):  # a name, but not protobuf's ("client", "SpanKind.CLIENT")
            raise FieldError(camel, _unknown_name(value, names, prefix)) from None
        raise
    if not 0 <= n < len(names):
        raise FieldError(camel, f"unknown value {n} (weave knows 0..{len(names) - 1})")
    return n


def _unknown_name(value: str, names: tuple[str, ...], prefix: str) -> str:
    """An enum name protobuf's JSON does not know: weave's server (and the Collector)
    read it as 0, which would drop an ERROR status without a word; refused, with the
    name protobuf knows."""
    guess = value.rpartition(".")[2].upper().removeprefix(prefix)
    known = f"{prefix}{guess if guess in names else names[1]}"
    kind = "SpanKind" if prefix == "SPAN_KIND_" else "StatusCode"
    return f"{value!r} is not a {kind} name ({known}, ...): weave's server reads it as 0"


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
    start = time_ns(raw, "startTimeUnixNano", "start_time_unix_nano")
    end = time_ns(raw, "endTimeUnixNano", "end_time_unix_nano")
    kind = _enum(raw, "kind", "kind", SPAN_KINDS, "SPAN_KIND_")
    trace_state = text(raw, "traceState", "trace_state")
    flags = optional_integer(raw, "flags", "flags", UINT32_MAX)
    quick = quick_attributes(raw.get("attributes"))  # never raises
    if quick is None:
        items = raw.get("attributes") or ()
        attributes, impure = attributes_of(raw), impure_keys(items)
        keys = tuple(kv.get("key", "") for kv in items)  # (read: keys are strings)
    else:
        attributes, impure, keys = quick
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
        plain=not impure,
        impure=impure,
        keys=keys,
        events=events_of(raw),
        links=links_of(raw),
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
    quick = quick_attributes(raw.get("attributes"))
    if quick is None:
        return None
    ids = (trace_id, span_id, parent_id)
    return usual_span(
        resource, name, ids, (start, end), (kind, trace_state, flags), quick, (code, message),
        events_of(raw),
        links_of(raw),
    )  # fmt: skip


def usual_span(
    resource: Resource | None,
    name: str,
    ids: tuple[str, str, str | None],
    times: tuple[int, int],
    kind_state_flags: tuple[int, str, int],
    quick: Read,
    status: tuple[int, str],
    events: list[Event],
    links: list[Link],
) -> Span:
    """The `Span` of a usual span's fields as read (by `_quick_span`, or by type:
    `tracecli.otel.typed`): ids (trace, span, parent), times (start, end), its attributes.

    Positional, in the fields' order: a dataclass's `__init__` matches 18 keywords one by
    one (measured: 14.5k instructions a span against 5.5k)."""
    return Span(
        resource,
        name,
        ids[0],  # trace_id
        ids[1],  # span_id
        times[0],  # start_time_unix_nano
        times[1],  # end_time_unix_nano
        quick.values,  # attributes
        kind_state_flags[0],  # kind
        ids[2],  # parent_id
        kind_state_flags[1],  # trace_state
        kind_state_flags[2],  # flags
        events,
        links,
        status[0],  # status_code
        status[1],  # status_message
        not quick.impure,  # plain
        quick.impure,  # impure
        quick.keys,  # keys
    )
