"""OTLP lines → upload entries in two steps, so that worker processes can do the costly one.

Mapping a span to its call and encoding it is most of an OTLP upload's work, and needs
nothing but the line: `map_lines` does it for a block of lines (in a forked worker of the
upload's pool, or here when there is none) and sends back, per span, its ids, the call's
entry and any refusal it could tell alone. What needs the whole run (span ids seen before,
files told they lack a project) is `entries_of`'s, in the reading process, in input order:
the same entries, in the same order, as converting each line here would give.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from tracecli.diagnostics import Diagnostic, Location
from tracecli.otel.calls import SpanCalls, original_at, span_original
from tracecli.otel.checks import REFUSED, end_before_start
from tracecli.otel.read import Unread, spans_of_request
from tracecli.otel.to_weave import MappingError, span_to_call
from tracecli.upload.blocks import Entry, prepare
from tracecli.upload.otlp_lines import on_span, parse_line
from tracecli.upload.validate_blocks import find_ref


class SpanIds(NamedTuple):
    """What the id ledger reads of a span."""

    span_id: str
    parent_id: str | None
    trace_id: str


class SpanPart(NamedTuple):
    """One span of a line (or a part of it that could not be read), mapped without the
    run's state."""

    where: str  # its field path in the line
    ids: SpanIds | None  # None: no span could be read here (`refused` says why)
    project: str | None  # the project of its call; None: neither its resource nor --project
    refused: Diagnostic | None  # what the line alone tells: unreadable, backwards, weave fails
    entry: Entry | None  # the call's upload entry (when not refused and a project is known)
    original: Any  # the span as read (a one-span request), when refused


class LineParts(NamedTuple):
    """One line: its spans' parts, or why it holds none (not JSON, not readable)."""

    line: int
    raw: bytes
    spans: list[SpanPart]
    error: Diagnostic | None = None


def map_lines(lines: list[tuple[int, bytes]], path: str, project: str | None) -> list[LineParts]:
    """A block of lines (number, bytes) parsed and mapped (runs in a worker: a top-level
    function, its arguments and answer plain data)."""
    out: list[LineParts] = []
    for lineno, raw in lines:
        got = parse_line(path, lineno, raw)
        if got is None:
            continue
        if isinstance(got, Diagnostic):
            out.append(LineParts(lineno, raw, [], got))
            continue
        out.append(LineParts(lineno, raw, map_line(path, lineno, raw, got.value, project)))
    return out


def map_line(path: str, line: int, raw: bytes, value: Any, project: str | None) -> list[SpanPart]:
    """The parts of one parsed line's spans, in order."""
    loc = Location(path, line)
    fast = find_ref(raw) is None
    parts: list[SpanPart] = []
    for item in spans_of_request(loc, value):
        if isinstance(item, Unread):
            d = item.diagnostic
            parts.append(SpanPart(d.field, None, None, d, None, original_at(value, d.field)))
            continue
        where, span = item.where, item.span
        ids = SpanIds(span.span_id, span.parent_id, span.trace_id)
        to = item.project_id or project
        refused = end_before_start(loc, where, span)
        entry = None
        if refused is None and to is not None:
            try:
                call = span_to_call(span, to)
            except MappingError as exc:
                refused = Diagnostic.at(loc, REFUSED, str(exc), where)
            else:
                entry = _entry(call, line, path, where, value, fast)
        original = original_at(value, where) if refused is not None else None
        parts.append(SpanPart(where, ids, to, refused, entry, original))
    return parts


def _entry(call: dict[str, Any], line: int, path: str, where: str, value: Any, fast: bool) -> Entry:
    """The upload entry of a span's call (see `tracecli.upload.blocks`), named on the span."""
    out: list[Entry] = []
    prepare(call, line, path, None, out, fast)
    e = out[-1]
    if e[1] == "ok":  # parents are the OTLP checks' (a field path, across files)
        warnings = tuple((on_span(f, where), c, m) for f, c, m in e[14])
        return (*e[:7], None, *e[8:14], warnings)
    if e[1] == "bad":
        diags = tuple((on_span(f, where), c, s, m) for f, c, s, m in e[3])
        return (e[0], "bad", span_original(value, call["id"]), diags, e[4])
    return e


def entries_of(calls: SpanCalls, path: str, parts: LineParts) -> list[Entry]:
    """A line's entries, its spans' parts checked against the run's state, in order: a span
    id read before, or no project, refuses a span the line alone did not."""
    out: list[Entry] = []
    loc = Location(path, parts.line)
    value: Any = None  # the line, parsed again only for a span refused here (rare)
    for p in parts.spans:
        refused = p.refused
        if p.ids is not None:
            refused = calls.ledger.add(loc, p.where, p.ids) or refused
            if refused is None:
                if p.project is not None:
                    out.append(p.entry)
                    continue
                refused = calls.no_project(loc, p.where)
        original = p.original
        if original is None:
            if value is None:
                value = orjson.loads(parts.raw)
            original = original_at(value, p.where)
        diag = (refused.field, refused.code, refused.severity, refused.message)
        out.append((parts.line, "bad", original, (diag,), None))
    return out
