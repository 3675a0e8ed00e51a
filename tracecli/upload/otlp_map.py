"""OTLP lines → upload entries in two steps, so that worker processes can do the costly one.

Mapping a span to its call and encoding it is most of an OTLP upload's work, and needs
nothing but the line: `map_lines` does it for a block of lines (in a forked worker of the
upload's pool, or here when there is none) and sends back, per span, its ids, the call's
entry and any refusal it could tell alone. What needs the whole run (span ids seen before,
files told they lack a project) is `entries_of`'s, in the reading process, in input order:
the same entries, in the same order, as converting each line here would give.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from functools import partial
from itertools import islice, repeat
from operator import add, call, itemgetter
from typing import Any, NamedTuple, cast

import orjson

from tracecli.check.entries import Diag, diag_entry, from_rows, to_rows
from tracecli.check.entries import Entry as VEntry
from tracecli.diagnostics import Diagnostic, Location
from tracecli.otel.calls import SpanCalls, original_at
from tracecli.otel.checks import REFUSED
from tracecli.otel.convert import Converted, converted, encode_call
from tracecli.otel.deep_text import deep_warning
from tracecli.otel.read import SpanAt, Unread, spans_of_request
from tracecli.otel.spans import Span
from tracecli.otel.to_weave import MappingError, plain_call, span_to_call
from tracecli.otel.typed import TypedRow, row_of, typed_rows
from tracecli.upload.blocks import Bad, Entry, Ok
from tracecli.upload.lines import find_ref
from tracecli.upload.otlp_entry import _entry, _typed_entry, _Untyped
from tracecli.upload.otlp_lines import checked, no_ref, parse_line


class SpanPart(NamedTuple):
    """One span of a line (or a part of it that could not be read), mapped without the
    run's state. Its ids are what the id ledger reads (`tracecli.otel.checks.SpanIds`),
    flat rather than a record of their own: one object less per span to pickle."""

    spans: int  # spans it stands for (an unreadable resource: all of its spans)
    where: str  # its field path in the line
    span_id: str | None  # None: no span could be read here (`refused` says why)
    parent_id: str | None
    trace_id: str | None
    project: str | None  # the project of its call; None: neither its resource nor --project
    refused: Diagnostic | None  # what the line alone tells: unreadable, weave fails
    original: Any  # the span as read (a one-span request), when refused
    entry: Any  # the call's upload entry, validate's entries or convert's `Converted` (when
    # not refused and a project is known); last: unpickling adds it to the other fields' row


class LineParts(NamedTuple):
    """One line: its spans' parts, or why it holds none (not JSON, not readable)."""

    line: int
    raw: bytes  # as read (put back by the reading process: workers send b"")
    spans: list[SpanPart]
    error: Diagnostic | None = None


# How a span's entry travels: a plain tuple of its fields and a code for its type, rebuilt
# at C speed (as `tracecli.upload.blocks.Prepared` does for JSONL blocks); validate's list
# as its length, its entries with all the block's others (`check.entries.to_rows`);
# anything else (None) as itself, in a one-item tuple
_FLAT: dict[type, int] = {Ok: 1, Bad: 2, list: 3, Converted: 4}
_AS_IS = itemgetter(0)
_new_ok = partial(tuple.__new__, Ok)
_new_bad = partial(tuple.__new__, Bad)
_new_converted = partial(tuple.__new__, Converted)
_head = itemgetter(slice(None, -1))  # a part's fields but its entry, as a plain tuple
_entry_of = itemgetter(-1)
_new_part = cast(Callable[[tuple[Any, ...]], SpanPart], partial(tuple.__new__, SpanPart))
_new_line = cast(Callable[[tuple[Any, ...]], LineParts], partial(tuple.__new__, LineParts))


class Mapped:
    """A block's lines mapped (`map_lines`' answer).

    Pickled (from a worker back to the reading process) as plain rows, a type code per
    entry, rebuilt at C speed: each named tuple pickled as itself costs Python calls both
    ways (upload: 8.0 µs per span to pickle and unpickle, measured, against 3.7 µs)."""

    __slots__ = ("lines",)

    def __init__(self, lines: list[LineParts]) -> None:
        self.lines = lines

    def __reduce__(self) -> tuple[Any, ...]:
        lines = self.lines
        heads = [(p.line, p.error, len(p.spans)) for p in lines]
        parts = [s for p in lines for s in p.spans]
        entries = list(map(_entry_of, parts))
        codes = bytes(map(_FLAT.get, map(type, entries), repeat(0)))
        rows = [
            tuple(e) if c == 1 or c == 2 or c == 4 else (len(e),) if c == 3 else (e,)
            for c, e in zip(codes, entries, strict=True)
        ]
        listed = to_rows([x for e in entries if type(e) is list for x in e])
        return (_rebuild, (heads, list(map(_head, parts)), codes, rows, *listed))


def _rebuild(
    heads: list[tuple[int, Diagnostic | None, int]],
    parts: list[tuple[Any, ...]],
    codes: bytes,
    rows: list[tuple[Any, ...]],
    list_codes: bytes,
    list_rows: list[tuple[Any, ...]],
) -> Mapped:
    listed = iter(from_rows(list_codes, list_rows))

    def take(row: tuple[int]) -> list[VEntry]:
        return list(islice(listed, row[0]))

    make = (_AS_IS, _new_ok, _new_bad, take, _new_converted)
    entries = map(call, map(make.__getitem__, codes), rows)
    spans = iter(map(_new_part, map(add, parts, zip(entries))))
    return Mapped([_new_line((n, b"", list(islice(spans, k)), e)) for n, e, k in heads])


def map_lines(
    lines: list[tuple[int, bytes]],
    path: str,
    project: str | None,
    validate: bool = False,
    convert: bool = False,
) -> Mapped:
    """A block of lines (number, bytes) parsed and mapped, for upload, for `validate` or for
    `convert` (each span's `Converted`) (runs in a worker: a top-level function, its
    arguments and answer plain data).

    The cyclic garbage collector is paused meanwhile, as for a block of Weave lines
    (`check_lines`): decoded spans and their calls hold no cycles, and its passes (over
    the reading process's live objects too, when it maps a block) cost for nothing."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return Mapped(_map_lines(lines, path, project, validate, convert))
    finally:
        if paused:
            gc.enable()


def _map_lines(
    lines: list[tuple[int, bytes]], path: str, project: str | None, validate: bool, convert: bool
) -> list[LineParts]:
    out: list[LineParts] = []
    for lineno, raw in lines:
        fast = no_ref(raw)
        # the usual line decoded by type (`tracecli.otel.typed`); any other, and any whose
        # spans are not all mapped on the fast path, read again the usual way
        typed = typed_rows(raw)
        if typed is not None:
            try:
                loc = Location(path, lineno)
                spans = _parts(loc, typed, _TYPED, project, validate, fast, convert)
            except _Untyped:
                pass
            else:
                out.append(LineParts(lineno, b"", spans))
                continue
        got = parse_line(path, lineno, raw)
        if got is None:
            continue
        if isinstance(got, Diagnostic):
            out.append(LineParts(lineno, b"", [], got))
            continue
        spans = map_line(path, lineno, raw, got.value, project, validate, fast, convert)
        out.append(LineParts(lineno, b"", spans))  # the bytes: the caller has them
    return out


_TYPED: Any = object()  # `_parts`' value of a typed line: not at hand


def with_raw(mapped: Mapped, lines: list[tuple[int, bytes]]) -> list[LineParts]:
    """A block's answer with each line's bytes put back (not sent back by the worker)."""
    raw = dict(lines)
    return [_new_line((n, raw[n], spans, e)) for n, _, spans, e in mapped.lines]


def map_line(
    path: str,
    line: int,
    raw: bytes,
    value: Any,
    project: str | None,
    validate: bool = False,
    fast: bool | None = None,
    convert: bool = False,
) -> list[SpanPart]:
    """The parts of one parsed line's spans, in order. `fast`: the line surely names no
    reference (None: search it)."""
    loc = Location(path, line)
    if fast is None:
        fast = find_ref(raw) is None
    return _parts(loc, spans_of_request(loc, value), value, project, validate, fast, convert)


def _parts(
    loc: Location,
    items: Iterable[SpanAt | Unread] | list[TypedRow],
    value: Any,
    project: str | None,
    validate: bool,
    fast: bool,
    convert: bool = False,
) -> list[SpanPart]:
    """`map_line`'s parts of a line's spans as read; `value` the line as orjson reads it,
    or `_TYPED` (then `_Untyped` where it is needed)."""
    line, path = loc.line, loc.path
    parts: list[SpanPart] = []
    for item in items:
        if isinstance(item, Unread):
            d = item.diagnostic
            original = original_at(value, d.field)
            parts.append(SpanPart(item.spans, d.field, None, None, None, None, d, original, None))
            continue
        where, span, pid = item if type(item) is TypedRow else row_of(item)  # (typed: a row)
        to = pid or project
        refused: Diagnostic | None = None  # (an end before the start: the call checks warn)
        entry: Any = None
        if refused is None and to is not None:
            try:
                call = span_to_call(span, to)
                if convert:  # (encoding too may refuse it)
                    entry = converted(loc, where, span, call)
                elif not plain_call(span):  # a value JSON cannot carry (bytes): refused
                    encode_call(call)  # as convert and `--mode otel` refuse it
            except MappingError as exc:
                refused = Diagnostic.at(loc, REFUSED, str(exc), exc.field(where))
            if refused is None and not convert:
                if validate:
                    entry = checked(call, line, path, where, fast and plain_call(span))
                elif value is _TYPED:
                    entry = _typed_entry(call, line, fast)
                else:
                    entry = _entry(call, line, path, where, value, fast)
                if span.deep:  # (JSON text that may nest deep: never a typed line's)
                    entry = with_deep_warning(entry, loc, where, span, call)
        if refused is not None and value is _TYPED:
            raise _Untyped
        original = original_at(value, where) if refused is not None else None
        # (built from a tuple at C speed: the named tuple's own constructor is Python's)
        part = (1, where, span.span_id, span.parent_id, span.trace_id, to, refused, original)
        parts.append(_new_part((*part, entry)))
    return parts


def with_deep_warning(
    entry: Any, loc: Location, where: str, span: Span, call: dict[str, Any]
) -> Any:
    """A span's entry (validate's list, upload's `Ok` or `Bad`) with the warning for a call
    weave's server stores but cannot read back, if it is one."""
    d = deep_warning(loc, where, span, call)
    if d is None:
        return entry
    if type(entry) is list:
        return [*entry, Diag(loc.line, "diag", d.field, d.code, d.severity, d.message)]
    if type(entry) is Ok:
        return entry._replace(warnings=(*entry.warnings, (d.field, d.code, d.message)))
    if type(entry) is Bad:
        return entry._replace(diags=(*entry.diags, (d.field, d.code, d.severity, d.message)))
    return entry


def _settled(calls: SpanCalls, loc: Location, p: SpanPart) -> Diagnostic | None:
    """Why the run refuses a span the line alone did not refuse (None: it goes)."""
    refused = p.refused
    if p.span_id is not None:
        assert p.trace_id is not None  # read with its span id
        added = calls.ledger.add_ids(loc, p.where, p.span_id, p.parent_id, p.trace_id)
        refused = added or refused
        if refused is None and p.project is None:
            refused = calls.no_project(loc, p.where)
    return refused


def entries_of(calls: SpanCalls, path: str, parts: LineParts) -> list[Entry]:
    """A line's upload entries, its spans' parts checked against the run's state, in
    order: a span id read before, or no project, refuses a span the line alone did not."""
    out: list[Entry] = []
    loc = Location(path, parts.line)
    value: Any = None  # the line, parsed again only for a span refused here (rare)
    add_ids = calls.ledger.add_ids
    for p in parts.spans:
        # unpacked by name in SpanPart's order: one step, cheaper than six attributes
        _, where, span_id, parent_id, trace_id, project, refused, _, entry = p
        if refused is None and span_id is not None and project is not None:
            # the usual span (`_settled`'s first case, inline): only the ledger may refuse it
            assert trace_id is not None  # read with its span id
            refused = add_ids(loc, where, span_id, parent_id, trace_id)
        else:
            refused = _settled(calls, loc, p)
        if refused is None:
            out.append(entry)
            continue
        original = p.original
        if original is None:
            if value is None:
                value = orjson.loads(parts.raw)
            original = original_at(value, p.where)
        diag = (refused.field, refused.code, refused.severity, refused.message)
        out.append(Bad(parts.line, original, (diag,), None))
    return out


def part_records(p: SpanPart) -> int:
    """The records a part of a line counts for, the same in `validate`, `upload` and its
    `--mode otel`: a span is one (refused or not), a part refused whole its spans (a
    resource: all of them), or one when it holds none (a resource or scope without spans,
    a line that is no request). A line that is no JSON is one record too."""
    return p.spans or 1


def validate_entries(calls: SpanCalls, path: str, parts: LineParts) -> tuple[int, list[VEntry]]:
    """(the spans of a line, `validate`'s entries for them: see
    `tracecli.check.entries`), as `entries_of` for upload."""
    out: list[VEntry] = []
    spans = 0
    loc = Location(path, parts.line)
    for p in parts.spans:
        spans += p.spans or 1  # (`part_records`, inline)
        refused = _settled(calls, loc, p)
        if refused is None:
            out.extend(p.entry)
            continue
        d = refused
        out.append(diag_entry(parts.line, d.field, d.code, d.severity, d.message))
    return spans, out
