"""A converted call's upload entry, as `prepare` makes it (`tracecli.upload.blocks`), made
the short way for the calls `span_to_call` makes (see `_built_entry`), for `otlp_map`."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, cast

from tracecli.otel.calls import span_original
from tracecli.schema.fastcheck import COMPLETE_KEYS, Facts, complete_facts
from tracecli.upload.blocks import Bad, Entry, Ok, prepare
from tracecli.upload.otlp_facts import typed_call_facts
from tracecli.upload.otlp_lines import on_span
from tracecli.wire.encode import dumps

_ok = cast(Callable[[tuple[Any, ...]], Ok], partial(tuple.__new__, Ok))


class _Untyped(Exception):
    """A typed line's span needs the line as orjson reads it (to show a refused span as
    read, or `prepare`'s entry): the line is read the usual way instead."""


def _entry(call: dict[str, Any], line: int, path: str, where: str, value: Any, fast: bool) -> Entry:
    """The upload entry of a span's call (see `tracecli.upload.blocks`), named on the span."""
    # summary.weave holds only what the server computes (status, latency_ms, trace_name),
    # which `prepare` leaves out of what it sends (`without_computed`): left out here
    call["summary"] = {"usage": call["summary"]["usage"]}
    if fast:
        ok = _built_entry(call, line)
        if ok is not None:
            return ok
    return _prepared_entry(call, line, path, where, value, fast)


def _typed_entry(call: dict[str, Any], line: int, fast: bool) -> Entry:
    """`_entry` of a typed line's call where `_built_entry` makes it; else `_Untyped`."""
    call["summary"] = {"usage": call["summary"]["usage"]}
    ok = _built_entry(call, line, typed_call_facts) if fast else None
    if ok is None:
        raise _Untyped
    return ok


def _prepared_entry(
    call: dict[str, Any], line: int, path: str, where: str, value: Any, fast: bool
) -> Entry:
    """`_entry` as `prepare` makes it, for any call (its summary stripped already)."""
    out: list[Entry] = []
    prepare(call, line, path, None, out, fast)
    e = out[-1]
    if type(e) is Ok:  # parents are the OTLP checks' (a field path, across files)
        warnings = tuple((on_span(f, where), c, m) for f, c, m in e.warnings)
        return Ok._make((*e[:6], None, *e[7:13], warnings))  # (`_replace`, quicker)
    if type(e) is Bad:
        diags = tuple((on_span(f, where), c, s, m) for f, c, s, m in e.diags)
        return e._replace(original=span_original(value, call["id"]), diags=diags)
    return e


def _complete_facts(call: dict[str, Any], line: int) -> Facts | None:
    return complete_facts(call, COMPLETE_KEYS, True, line)


def _built_entry(
    call: dict[str, Any],
    line: int,
    facts_of: Callable[[dict[str, Any], int], Facts | None] = _complete_facts,
) -> Ok | None:
    """`prepare`'s entry for a converted call it finds valid on its fast path, made
    without its steps that a converted call does not need; None for any other (then
    `prepare` gives the answer).

    A converted call is a bare completed call (`span_to_call`'s keys, none of them "type",
    "req" or alone), so `prepare`'s fast path checks it with `complete_facts` and nothing
    else; here too. What is left out: finding the shape, the summary's computed keys (gone
    already), the replaced project (none: the call holds its own), and building the entry
    twice (the OTLP checks then drop its parent: `on_span`). The same entry, held by a
    contract test. `facts_of`: `complete_facts`, or the same answer the short way for a
    typed span's call (`tracecli.upload.otlp_facts`)."""
    try:
        facts = facts_of(call, line)
        if facts is None:
            return None
        body = dumps(call)
    except Exception:  # an encoding error or a bug: `prepare` tells which
        return None
    _, _, cid, tid, _, started, ended = facts  # by name, in Facts' order
    project = call["project_id"]
    return _ok((
        line, "complete", "complete", cid, project, tid, None, started, ended, body, b"",
        False, None, (),
    ))  # fmt: skip
