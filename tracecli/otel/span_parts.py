"""An OTLP span's parts below it, decoded as weave's server reads them: its attributes list
(expanded the weave way), its events and its links, and their copies in weave's dump.

Split from `spans`, which decodes the span itself: field paths here are relative to the
span (`events[2].timeUnixNano`), as `FieldError` gives them to its callers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tracecli.otel.anyvalue import (
    EVENT_LEVEL,
    SPAN_LEVEL,
    UINT32_MAX,
    UINT64_MAX,
    FieldError,
    get,
    hex_id,
    key_values,
    optional_integer,
    text,
)
from tracecli.otel.attrlist import quick_attributes
from tracecli.otel.nesting import PathConflictError, expand_attributes, to_json_serializable

__all__ = [
    "Event",
    "Link",
    "attributes_of",
    "event_dump",
    "events_of",
    "link_dump",
    "links_of",
    "time_ns",
]


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


def event_dump(e: Event) -> dict[str, Any]:
    """`to_json_serializable(event)`: its fields in order, without dataclasses.fields()."""
    return {
        "name": e.name,
        "timestamp": e.timestamp,
        "attributes": e.attributes if e.plain else to_json_serializable(e.attributes),
        "dropped_attributes_count": e.dropped_attributes_count,
    }


def link_dump(k: Link) -> dict[str, Any]:
    """`to_json_serializable(link)`, as `event_dump`."""
    return {
        "trace_id": k.trace_id,
        "span_id": k.span_id,
        "trace_state": k.trace_state,
        "attributes": to_json_serializable(k.attributes),
        "dropped_attributes_count": k.dropped_attributes_count,
        "flags": k.flags,
    }


def attributes_of(
    obj: dict[str, Any], where: str = "attributes", level: int = SPAN_LEVEL
) -> dict[str, Any]:
    """An object's `attributes` list, decoded and expanded as weave does (`level`: how
    deep its values lie in a request, `anyvalue.PROTOBUF_DEPTH`; the quick reader reads
    none nested deep enough to matter)."""
    quick = quick_attributes(obj.get("attributes"))
    if quick is not None:
        return quick.values
    pairs = key_values(obj.get("attributes"), where, level)
    try:
        return expand_attributes(pairs)
    except PathConflictError as exc:
        raise FieldError(f"{where}[{exc.index}].key", str(exc)) from None


def time_ns(obj: dict[str, Any], camel: str, snake: str) -> int:
    value = obj.get(camel)
    if type(value) is str and len(value) < 20 and value.isdigit() and value.isascii():
        return int(value)  # the usual: at most 19 digits, below 2**64
    return optional_integer(obj, camel, snake, UINT64_MAX)


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
        timestamp = time_ns(raw, "timeUnixNano", "time_unix_nano")
        quick = quick_attributes(raw.get("attributes"))  # never raises
        if quick is None:
            attributes, plain = attributes_of(raw, level=EVENT_LEVEL), False
        else:
            attributes, plain = quick.values, not quick.impure
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
            attributes=attributes_of(raw, level=EVENT_LEVEL),
            dropped_attributes_count=optional_integer(
                raw, "droppedAttributesCount", "dropped_attributes_count", UINT32_MAX
            ),
            flags=optional_integer(raw, "flags", "flags", UINT32_MAX),
        )
    except FieldError as exc:
        raise _nested(where, exc) from None


def events_of(raw: dict[str, Any]) -> list[Event]:
    """A span's `events`, each decoded (field paths `events[i]...`)."""
    return [_event(e, f"events[{i}]") for i, e in enumerate(_list(raw, "events"))]


def links_of(raw: dict[str, Any]) -> list[Link]:
    """A span's `links`, each decoded (field paths `links[i]...`)."""
    return [_link(k, f"links[{i}]") for i, k in enumerate(_list(raw, "links"))]
