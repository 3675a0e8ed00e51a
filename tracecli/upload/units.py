"""Which request a call becomes under each `--mode`: the call halves as Units for a chunk.

The choice of route and body shape (calls/complete, call/upsert_batch, or call/start then
call/end) is the one thing `--mode` changes; keeping it apart from the reading and pairing
loop (upload_run) lets that loop stay the same for every mode. A Unit's `extra` carries
what upload_originals needs to rebuild the records as read if they are refused.
"""

from __future__ import annotations

from collections.abc import Callable

from tracecli.check.pairing import Half
from tracecli.upload.blocks import Ok
from tracecli.wire.chunking import SINGLE, Unit, pack
from tracecli.wire.encode import (
    CALL_END,
    CALL_START,
    UPSERT_BATCH,
    batch_end,
    batch_start,
    complete_from,
    complete_route,
    join_objects,
    single_end,
    single_start,
    split_complete,
)

Route = Callable[[str], str]  # a project's calls/complete route


class Routes(dict[str, str]):
    """Each project's calls/complete route, made once (`routes[project]`)."""

    def __missing__(self, project: str) -> str:
        route = self[project] = complete_route(project)
        return route


def pair_unit(mode: str, s: Half, e: Half, route: Route) -> Unit:
    """A start and its end, neither sent yet, as one call."""
    recs = (pack(s.src, s.line, "start", s.shape), pack(e.src, e.line, "end", e.shape))
    extra = None
    if s.orig is not None or e.orig is not None or (e.clash and mode in ("auto", "complete")):
        extra = ((s.orig, e.orig), e.body if e.clash else None)
    if mode == "auto" or mode == "complete":
        part = complete_from(s.body, s.clash, e.tail)
        return Unit(route(s.project), (part,), recs, extra)
    if mode == "batch":
        end = batch_end(join_objects(e.body, e.tail))
        return Unit(UPSERT_BATCH, (batch_start(s.body), end), recs, extra)
    end = single_end(join_objects(e.body, e.tail))
    return Unit(SINGLE, (single_start(s.body), end), recs, extra, (CALL_START, CALL_END))


def complete_unit(mode: str, h: Half, route: Route) -> Unit:
    """A record that holds a whole call."""
    recs = (pack(h.src, h.line, "complete", h.shape),)
    extra = None if h.orig is None else ((h.orig,), None)
    if mode == "auto" or mode == "complete":
        return Unit(route(h.project), (h.body,), recs, extra)
    start, end_rest, end_tail = split_complete(h.body)
    end = join_objects(end_rest, end_tail)
    if mode == "batch":
        return Unit(UPSERT_BATCH, (batch_start(start), batch_end(end)), recs, extra)
    parts = (single_start(start), single_end(end))
    return Unit(SINGLE, parts, recs, extra, (CALL_START, CALL_END))


def lone_unit(mode: str, h: Half) -> Unit:
    """A start or an end sent without its other half (never under --mode complete)."""
    if h.kind == "start":
        body = h.body
        part = single_start(body) if mode == "single" else batch_start(body)
        step = CALL_START
    else:
        body = join_objects(h.body, h.tail)
        part = single_end(body) if mode == "single" else batch_end(body)
        step = CALL_END
    recs = (pack(h.src, h.line, h.kind, h.shape),)
    extra = None if h.orig is None else ((h.orig,), None)
    if mode == "single":
        return Unit(SINGLE, (part,), recs, extra, (step,))
    return Unit(UPSERT_BATCH, (part,), recs, extra)


def half_of(e: Ok, src: int, line: int, done: bool) -> Half:
    """The pairing's view of a valid record: its place in the inputs and whether an
    earlier run stored it. Built positionally: a keyword call of a slotted class costs
    about three times as much."""
    return Half(
        e.kind, e.call_id, e.project, e.body, e.tail, e.flag, src, line, e.shape, done, e.orig
    )
