"""OTLP/JSON trace requests → OTLP protobuf bytes (the answers: tracecli.wire.otlp_answers).

Weave documents its OTel route (`POST /otel/v1/traces`) with protobuf
(`application/x-protobuf`), the encoding OpenTelemetry's exporters send by default
(OTLP/JSON is optional for them, and not every receiver reads it). The messages are few and
small, so they are written here by hand rather than with the `protobuf` and
`opentelemetry-proto` packages (a compiled extension, ~2 MB, for one route). Field numbers
and wire types are those of opentelemetry-proto 1.x (`collector/trace/v1`, `trace/v1`,
`common/v1`, `resource/v1`); a test decodes these bytes with the real protobuf library and
compares them with protobuf's own reading of the JSON.

The JSON is read as protobuf's JSON parser reads it (what weave's server does with an
OTLP/JSON body): camelCase or proto field names, 64-bit integers as decimal strings or
numbers, doubles as numbers or "NaN"/"Infinity", bytes as base64, enums by number or name,
`null` as absent, unknown fields ignored; OTLP/JSON's one exception, hex trace and span ids.
Defaults are left out as proto3 writes them, except inside `AnyValue`'s oneof (an empty string
is a value). What cannot be encoded raises `EncodeError` naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import orjson

from tracecli.wire.otlp_values import (
    INT32,
    INT64,
    UINT32,
    EncodeError,
    b64_bytes,
    json_double,
    json_get,
    json_int,
    json_list,
    json_object,
    show,
    under,
    utf8,
)
from tracecli.wire.protobuf import PACK_D, Encoder, Writer, field_len, varint

CONTENT_TYPE = "application/x-protobuf"
_T = TypeVar("_T")

_SPAN_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
_STATUS_CODES = ("UNSET", "OK", "ERROR")


# -- common/v1 ---------------------------------------------------------------------------
def key_value(obj: Any) -> bytes:
    if type(obj) is dict and len(obj) == 2:  # the usual: {"key": "k", "value": {one value}}
        key, value = obj.get("key"), obj.get("value")
        if type(key) is str and type(value) is dict and len(value) == 1:
            inner = _usual_value(value)
            if inner is not None and key.isascii():
                head = field_len(1, key.encode()) if key else b""
                return head + field_len(2, inner)
    w = Writer(obj)
    w.string(1, "key", "key")
    w.message(2, "value", "value", any_value)
    w.uint(3, "keyStrindex", "key_strindex", INT32)
    return w.bytes()


def _usual_value(value: dict[str, Any]) -> bytes | None:
    """`any_value` of the usual one-value AnyValue (a string, a small int as digits, a bool,
    a float), at once; None for any other, which `any_value` then writes or refuses."""
    raw = value.get("stringValue")
    if type(raw) is str:
        try:
            return field_len(1, raw.encode())
        except UnicodeEncodeError:
            return None  # a lone surrogate: said by the general path, with its field
    raw = value.get("intValue")
    if type(raw) is str and len(raw) < 19 and raw.isdigit() and raw.isascii():
        return b"\x18" + varint(int(raw))  # below 10**18: within int64
    raw = value.get("boolValue")
    if type(raw) is bool:
        return b"\x10\x01" if raw else b"\x10\x00"
    raw = value.get("doubleValue")
    if type(raw) is float:
        return b"\x21" + PACK_D(raw)
    return None


def any_value(obj: Any) -> bytes:
    """An AnyValue: its oneof member written whatever its value (presence is the point)."""
    value = json_object(obj, "")
    out: list[bytes] = []
    for key, raw in value.items():
        if raw is None:
            continue
        try:
            if key in ("stringValue", "string_value"):
                out.append(field_len(1, utf8(raw, "")))
            elif key in ("boolValue", "bool_value"):
                if not isinstance(raw, bool):
                    raise EncodeError("", f"expected true or false, got {show(raw)}")
                out.append(b"\x10\x01" if raw else b"\x10\x00")
            elif key in ("intValue", "int_value"):
                out.append(b"\x18" + varint(json_int(raw, "", INT64)))
            elif key in ("doubleValue", "double_value"):
                out.append(b"\x21" + PACK_D(json_double(raw, "")))
            elif key in ("arrayValue", "array_value"):
                out.append(field_len(5, _repeated(raw, any_value)))
            elif key in ("kvlistValue", "kvlist_value"):
                out.append(field_len(6, _repeated(raw, key_value)))
            elif key in ("bytesValue", "bytes_value"):
                out.append(field_len(7, b64_bytes(raw, "")))
            elif key in ("stringValueStrindex", "string_value_strindex"):
                out.append(b"\x40" + varint(json_int(raw, "", INT32)))
            # any other field: ignored, as protobuf's JSON parser is told to
        except EncodeError as exc:
            raise under(key, exc) from None
    if len(out) > 1:
        raise EncodeError("", "AnyValue sets more than one value")
    return out[0] if out else b""


def _repeated(obj: Any, encode: Encoder) -> bytes:
    """ArrayValue / KeyValueList: one repeated `values` field (number 1)."""
    w = Writer(obj)
    w.messages(1, "values", "values", encode)
    return w.bytes()


def scope(obj: Any) -> bytes:
    w = Writer(obj)
    w.string(1, "name", "name")
    w.string(2, "version", "version")
    w.messages(3, "attributes", "attributes", key_value)
    w.uint(4, "droppedAttributesCount", "dropped_attributes_count", UINT32)
    return w.bytes()


def _entity_ref(obj: Any) -> bytes:
    w = Writer(obj)
    w.string(1, "schemaUrl", "schema_url")
    w.string(2, "type", "type")
    w.strings(3, "idKeys", "id_keys")
    w.strings(4, "descriptionKeys", "description_keys")
    return w.bytes()


def resource(obj: Any) -> bytes:
    w = Writer(obj)
    w.messages(1, "attributes", "attributes", key_value)
    w.uint(2, "droppedAttributesCount", "dropped_attributes_count", UINT32)
    w.messages(3, "entityRefs", "entity_refs", _entity_ref)
    return w.bytes()


# -- trace/v1 ----------------------------------------------------------------------------
def _event(obj: Any) -> bytes:
    w = Writer(obj)
    w.fixed64(1, "timeUnixNano", "time_unix_nano")
    w.string(2, "name", "name")
    w.messages(3, "attributes", "attributes", key_value)
    w.uint(4, "droppedAttributesCount", "dropped_attributes_count", UINT32)
    return w.bytes()


def _link(obj: Any) -> bytes:
    w = Writer(obj)
    w.hex_bytes(1, "traceId", "trace_id")
    w.hex_bytes(2, "spanId", "span_id")
    w.string(3, "traceState", "trace_state")
    w.messages(4, "attributes", "attributes", key_value)
    w.uint(5, "droppedAttributesCount", "dropped_attributes_count", UINT32)
    w.fixed32(6, "flags", "flags")
    return w.bytes()


def _status(obj: Any) -> bytes:
    w = Writer(obj)
    w.string(2, "message", "message")
    w.enum(3, "code", _STATUS_CODES, "STATUS_CODE_")
    return w.bytes()


def span(obj: Any) -> bytes:
    """One Span, its fields in number order (as protobuf writes them)."""
    w = Writer(obj)
    w.hex_bytes(1, "traceId", "trace_id")
    w.hex_bytes(2, "spanId", "span_id")
    w.string(3, "traceState", "trace_state")
    w.hex_bytes(4, "parentSpanId", "parent_span_id")
    w.string(5, "name", "name")
    w.enum(6, "kind", _SPAN_KINDS, "SPAN_KIND_")
    w.fixed64(7, "startTimeUnixNano", "start_time_unix_nano")
    w.fixed64(8, "endTimeUnixNano", "end_time_unix_nano")
    w.messages(9, "attributes", "attributes", key_value)
    w.uint(10, "droppedAttributesCount", "dropped_attributes_count", UINT32)
    w.messages(11, "events", "events", _event)
    w.uint(12, "droppedEventsCount", "dropped_events_count", UINT32)
    w.messages(13, "links", "links", _link)
    w.uint(14, "droppedLinksCount", "dropped_links_count", UINT32)
    w.message(15, "status", "status", _status)
    w.fixed32(16, "flags", "flags")
    return w.bytes()


class Shell(NamedTuple):
    """A ResourceSpans' or ScopeSpans' own fields, encoded: `head` (its resource or scope,
    field 1) goes before the list it holds (field 2), `tail` (schema_url, field 3) after,
    as protobuf writes them. Equal shells, the same resource or scope."""

    head: bytes
    tail: bytes

    def wrap(self, number: int, inner: list[bytes]) -> bytes:
        return field_len(number, self.head + b"".join(inner) + self.tail)


class Shells(NamedTuple):
    """What wraps a span: its resource's shell and its scope's."""

    resource: Shell
    scope: Shell


def _shell(obj: Any, name: str, encode: Encoder) -> Shell:
    head = Writer(obj)
    head.message(1, name, name, encode)
    tail = Writer(obj)
    tail.string(3, "schemaUrl", "schema_url")
    return Shell(head.bytes(), tail.bytes())


def resource_shell(rs: Any) -> Shell:
    return _shell(rs, "resource", resource)


def scope_shell(ss: Any) -> Shell:
    return _shell(ss, "scope", scope)


class SpanBytes(NamedTuple):
    """One span of a request, encoded, with the shells it sits in."""

    shells: Shells
    span: bytes


def _at(where: str, encode: Callable[[Any], _T], obj: Any) -> _T:
    """`encode(obj)`, an error's field put under `where`."""
    try:
        return encode(obj)
    except EncodeError as exc:
        raise under(where, exc) from None


def _scopes(rs: Any, r: int) -> list[Any]:
    try:
        return json_list(json_get(json_object(rs, ""), "scopeSpans", "scope_spans"), "scopeSpans")
    except EncodeError as exc:
        raise under(f"resourceSpans[{r}]", exc) from None


def request_spans(request: Any, memo: dict[bytes, Shell] | None = None) -> list[SpanBytes]:
    """Every span of an OTLP/JSON ExportTraceServiceRequest, encoded, in order. `memo`
    keeps the shells encoded so far by their JSON text: a chunk's items repeat the same few
    resources (and their many attributes) span after span."""
    out: list[SpanBytes] = []
    for r, rs in enumerate(_resource_spans(request)):
        rshell = _memo(memo, rs, f"resourceSpans[{r}]", resource_shell)
        for s, ss in enumerate(_scopes(rs, r)):
            swhere = f"resourceSpans[{r}].scopeSpans[{s}]"
            shells = Shells(rshell, _memo(memo, ss, swhere, scope_shell))
            for i, sp in enumerate(_spans(ss, swhere)):
                out.append(SpanBytes(shells, _at(f"{swhere}.spans[{i}]", span, sp)))
    return out


def _resource_spans(request: Any) -> list[Any]:
    return json_list(
        json_get(json_object(request, ""), "resourceSpans", "resource_spans"), "resourceSpans"
    )


def _spans(ss: Any, where: str) -> list[Any]:
    try:
        return json_list(json_object(ss, "").get("spans"), "spans")
    except EncodeError as exc:
        raise under(where, exc) from None


_LISTS = ("scopeSpans", "scope_spans", "spans")


def _memo(
    memo: dict[bytes, Shell] | None, obj: Any, where: str, encode: Callable[[Any], Shell]
) -> Shell:
    """`encode(obj)`, or the shell already encoded for the same JSON (not its span lists)."""
    if memo is None or type(obj) is not dict:
        return _at(where, encode, obj)
    try:
        key = orjson.dumps({k: v for k, v in obj.items() if k not in _LISTS})
    except (orjson.JSONEncodeError, TypeError):  # what orjson cannot write: not kept
        return _at(where, encode, obj)
    key = where[:1].encode() + key  # a resource and a scope never share a shell
    shell = memo.get(key)
    if shell is None:
        shell = memo[key] = _at(where, encode, obj)  # raises for a bad one: never kept
    return shell


def export_request(spans: list[SpanBytes]) -> bytes:
    """One ExportTraceServiceRequest holding these spans, those of one resource and scope
    put together (in the order first met), the spans in the order given."""
    groups: dict[Shell, dict[Shell, list[bytes]]] = {}
    for sb in spans:
        groups.setdefault(sb.shells.resource, {}).setdefault(sb.shells.scope, []).append(
            field_len(2, sb.span)
        )
    return b"".join(
        rshell.wrap(1, [sshell.wrap(2, encoded) for sshell, encoded in scopes.items()])
        for rshell, scopes in groups.items()
    )


def encode_request(request: Any) -> bytes:
    """A whole OTLP/JSON request as protobuf, its resources and scopes kept as they are."""
    out: list[bytes] = []
    for r, rs in enumerate(_resource_spans(request)):
        inner = []
        for s, ss in enumerate(_scopes(rs, r)):
            swhere = f"resourceSpans[{r}].scopeSpans[{s}]"
            encoded = [
                field_len(2, _at(f"{swhere}.spans[{i}]", span, sp))
                for i, sp in enumerate(_spans(ss, swhere))
            ]
            inner.append(_at(swhere, scope_shell, ss).wrap(2, encoded))
        out.append(_at(f"resourceSpans[{r}]", resource_shell, rs).wrap(1, inner))
    return b"".join(out)
