"""OTLP JSON-lines files (one `ExportTraceServiceRequest` per line, `.gz` too) → spans.

The official OpenTelemetry file exporter and the Collector's `file` exporter write this
format. Reading streams line by line (the file reader of tracecli.inputs.reader: gzip, a BOM, a
bad line is one diagnostic); each span comes with its file, line and field path
(`resourceSpans[0].scopeSpans[1].spans[3]`) and the project its resource names, if any.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from tracecli.diagnostics import Diagnostic, Location
from tracecli.inputs.reader import Source
from tracecli.otel.anyvalue import SCOPE_LEVEL, FieldError, get, key_values, nesting_error
from tracecli.otel.checks import FIELD, SHAPE
from tracecli.otel.nesting import DEEP_TEXTS
from tracecli.otel.spans import Resource, Span, decode_resource, decode_span


@dataclass(frozen=True, slots=True)
class SpanAt:
    """One decoded span, where it was read, and the project of its resource (if named)."""

    loc: Location
    where: str  # field path of the span within its line
    span: Span
    project_id: str | None


@dataclass(frozen=True, slots=True)
class Unread:
    """Spans that could not be decoded: the diagnostic and how many spans it costs."""

    diagnostic: Diagnostic
    spans: int


def project_of(resource: Any) -> str | None:
    """`wandb.entity/wandb.project` from resource attributes (non-empty strings), as weave's
    OTel route reads them; None when not both are there."""
    if not isinstance(resource, dict):
        return None
    try:
        pairs = dict(key_values(resource.get("attributes"), "attributes"))
    except FieldError:
        return None
    entity, project = pairs.get("wandb.entity"), pairs.get("wandb.project")
    if isinstance(entity, str) and isinstance(project, str) and entity and project:
        return f"{entity}/{project}"
    return None


def _list(obj: Any, camel: str, snake: str) -> list[Any] | None:
    value = get(obj, camel, snake) if isinstance(obj, dict) else None
    if value is None:
        return []
    return value if isinstance(value, list) else None


def _count(resource_spans: Any) -> int:
    """Spans under a resourceSpans entry, counted without decoding them (for the report)."""
    total = 0
    for ss in _list(resource_spans, "scopeSpans", "scope_spans") or []:
        total += len(_list(ss, "spans", "spans") or [])
    return total


def _fail(loc: Location, field: str, message: str, spans: int, code: str = FIELD) -> Unread:
    return Unread(Diagnostic.at(loc, code, message, field), spans)


def spans_of_request(loc: Location, value: Any) -> Iterator[SpanAt | Unread]:
    """The spans of one line (an ExportTraceServiceRequest), in order. `{}` is an empty
    request (protobuf's JSON of a message with nothing set): none, as weave's OTel route
    answers it (200, nothing stored), like `{"resourceSpans": []}`."""
    if value == {}:
        return
    rs_list = _list(value, "resourceSpans", "resource_spans")
    if (
        not isinstance(value, dict)
        or rs_list is None
        or not ("resourceSpans" in value or "resource_spans" in value)
    ):
        yield _fail(loc, "", "not an OTLP ExportTraceServiceRequest "
                    '({"resourceSpans": [...]})', 0, SHAPE)  # fmt: skip
        return
    for r, rs in enumerate(rs_list):
        where = f"resourceSpans[{r}]"
        raw_resource = rs.get("resource") if isinstance(rs, dict) else None
        try:
            resource, project = _resource(raw_resource)
        except FieldError as exc:
            field = f"{where}.resource.{exc.field}".rstrip(".")
            yield _fail(loc, field, f"{exc.message} (all spans of this resource left out)",
                        _count(rs))  # fmt: skip
            continue
        yield from _scope_spans(loc, where, rs, resource, project)


_RESOURCES: dict[bytes, tuple[Resource, str | None]] = {}


def _resource(raw: Any) -> tuple[Resource, str | None]:
    """A resource decoded and its project, once for all the lines that repeat it (a file
    names the same few resources on every line): kept by its JSON text. The `Resource` is
    then shared by the spans of those lines, as by the spans of one line (nothing changes
    it once decoded)."""
    try:
        key = orjson.dumps(raw) if raw is not None else b"-"
    except (orjson.JSONEncodeError, TypeError):  # a value orjson cannot write: not kept
        return decode_resource(raw), project_of(raw)
    got = _RESOURCES.get(key)
    if got is None:
        if b"null" in key:  # NaN writes as null too (a stdlib-read line): not kept
            return decode_resource(raw), project_of(raw)
        got = decode_resource(raw), project_of(raw)  # raises for a bad one: never kept
        if len(_RESOURCES) >= 64:
            _RESOURCES.clear()
        _RESOURCES[key] = got
    return got


def _scope_spans(
    loc: Location, where: str, rs: Any, resource: Resource, project: str | None
) -> Iterator[SpanAt | Unread]:
    scopes = _list(rs, "scopeSpans", "scope_spans")
    if not scopes and isinstance(rs, dict) and _OLD_SCOPES in rs:
        yield _old_scopes(loc, where, rs)
    for s, ss in enumerate(scopes if scopes is not None else [rs]):
        # no list of scopes: said once, as for a scope without a list of spans
        at = f"{where}.scopeSpans[{s}]" if scopes is not None else where
        spans = _list(ss, "spans", "spans") if scopes is not None else None
        if spans is None:
            field = f"{at}.spans" if scopes is not None else f"{at}.scopeSpans"
            yield _fail(loc, field, "expected a list", 0, SHAPE)
            continue
        scope = ss.get("scope") if type(ss) is dict else None
        too_deep = _deep_scope(scope) if type(scope) is dict and "attributes" in scope else None
        if too_deep is not None:
            yield _fail(loc, f"{at}.scope.{too_deep.field}", too_deep.message, len(spans))
            continue
        for i, raw in enumerate(spans):
            span_at = f"{at}.spans[{i}]"
            seen = DEEP_TEXTS[0]
            try:
                span = decode_span(raw, resource)
            except FieldError as exc:
                field = f"{span_at}.{exc.field}" if exc.field else span_at
                yield _fail(loc, field, exc.message, 1)
                continue
            if DEEP_TEXTS[0] != seen or resource.deep:  # (a count: the usual span is not)
                span.deep = True
            yield SpanAt(loc, span_at, span, project)


def _deep_scope(scope: dict[str, Any]) -> FieldError | None:
    """A scope attribute nested past what weave's server (protobuf) reads: it refuses the
    request, so the scope's spans are left out. (Nothing else of a scope is read: weave
    keeps none of it.)"""
    items = scope.get("attributes")
    for i, kv in enumerate(items if isinstance(items, list) else ()):
        message = nesting_error(kv.get("value"), SCOPE_LEVEL) if isinstance(kv, dict) else None
        if message is not None:
            return FieldError(f"attributes[{i}].value", message)
    return None


_OLD_SCOPES = "instrumentationLibrarySpans"


def _old_scopes(loc: Location, where: str, rs: dict[str, Any]) -> Unread:
    """Spans under `instrumentationLibrarySpans`, the name of `scopeSpans` before OTLP 1.0
    (old exporters and Collectors write it): weave's server ignores the key and stores
    none of them, answering 200, so they would be lost without a word. An error naming
    the key; the request goes to the rejected file, to be renamed and sent again."""
    n = sum(len(_list(x, "spans", "spans") or []) for x in _list(rs, _OLD_SCOPES, "") or [])
    message = (
        f"holds {n} span{'s' if n != 1 else ''} under the name scopeSpans had before OTLP 1.0, "
        "which weave's server ignores (it stores none of them): rename the key to scopeSpans"
    )
    return _fail(loc, f"{where}.{_OLD_SCOPES}", message, n, SHAPE)


def read_spans(sources: Iterable[Source]) -> Iterator[SpanAt | Unread]:
    """Every span of every source, streaming; unreadable lines and spans as `Unread`. A
    line that is no JSON is a line read all the same: counted in its source's records."""
    for source in sources:
        for item in source:
            if isinstance(item, Diagnostic):
                source.records += item.line > 0  # (not a read error before any line)
                yield Unread(item, 0)
                continue
            loc, value = item
            yield from spans_of_request(loc, value)
