"""`validate`'s block of flat records in one loop, with the regexes run once per block.

Nearly every block of a real file is flat Weave records (starts and ends, "type" given)
that the typed decoder vouches for, each start ended in the same block. For such a block
`validate_blocks._check_lines`' general loop does more than it needs: a check function
and a named tuple per record, a regex per new call id and per time. Here the start and
end checks of `schema.typed` are written out in the loop and the two regexes that every
record needs (a start's new call id, the seconds and zone of each time, past a minute
already known) are deferred: the strings are collected and matched once, joined, at the
block's end. The caches (`fastcheck`'s) take a deferred id only once it matched. The
lines keep their newline: a file object finds each with `memchr`, where `bytes.split`
looks at every byte (~5 instructions a byte); msgspec reads the newline as the
whitespace it is, and a line's length counts it (so a line is measured, or left to the
general loop, one byte sooner, never later).

The answer is the general loop's, or none: anything this loop does not vouch for (a line
msgspec refuses, a check that says "don't know", a record of another kind or shape, a
line the block search flagged, a duplicate id, a deferred string that does not match)
makes it give up (None), and the caller runs the general loop on the block. A test holds
the two to the same `Checked` on every block it tries (`tests/test_validate_bulk.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from operator import itemgetter, lt
from typing import Any

from msgspec import UNSET

from tracecli.check.facts import ended_before
from tracecli.check.pairpack import Packed, pack_columns
from tracecli.inputs.streams import BOM
from tracecli.schema.fastcheck import (
    _CACHE_MAX,
    Facts,
    _call_id_re,
    _minutes,
    _new_op,
    _new_project,
    _new_run,
    _new_trace_id,
    _ok_call_ids,
    _ok_ops,
    _ok_projects,
    _ok_runs,
    _ok_trace_ids,
    _tail,
    _when,
    _when_slow,
    new_facts,
    same_layout,
)
from tracecli.schema.typed import (
    _UNTAGGED,
    SHAPES,
    TYPE_KEY,
    UNTAGGED,
    EndBody,
    FlatEnd,
    FlatStart,
    StartBody,
)
from tracecli.upload.typed_lines import (
    LONG_LINE,
    NEAR_LIMIT,
    OPENER,
    BlockBytes,
    line_clear,
)
from tracecli.wire.wideints import DEEP_BRACKETS

__all__ = [
    "BODIES",
    "BulkBlock",
    "bulk_lines",
    "deferred_check",
    "deferred_ok",
    "ended_first",
    "lines_of",
    "one_zone",
]

# the deferred ids of a block share one layout, nearly always (UUIDs, or 16 hex digits):
# with their hex digits read "0" the ids read alike
_HEX_AS_ZERO = bytes(0x30 if i in b"0123456789abcdef" else i for i in range(256))
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= i <= 0x39 else i for i in range(256))
_LOW_SIX = b"012345"  # a tens digit of seconds or minutes


def _ids_valid(ids: list[str]) -> bool:
    """Whether every id passes `fastcheck._call_id_re` (a lowercase hex UUID, or 16
    lowercase hex digits): if the first one does, and the others joined read as it does
    with hex digits as "0" (one translate and compare), they all do; else one by one."""
    first = ids[0]
    if _call_id_re(first) is None:
        return False
    joined = "\n".join(ids)
    size = len(first) + 1
    if joined.isascii() and len(joined) + 1 == size * len(ids):  # (isascii: a flag, no scan)
        t = joined.encode().translate(_HEX_AS_ZERO)
        if t + b"\n" == (t[: size - 1] + b"\n") * len(ids):
            return True
    return all(_call_id_re(v) is not None for v in ids)


def _times_valid(times: list[str]) -> bool:
    """Whether every time passes `fastcheck._tail` past its 17th character (the caller
    has seen its minute in `_minutes`): see `_times_check`."""
    return _times_check(times) > 0


def _times_check(times: list[str]) -> int:
    """`_times_valid` as 0 (one fails), 1 (all pass) or 2 (all pass and share one layout:
    with digits as "0" they read alike). Times of a block share one layout, nearly always:
    if the first one passes and every other reads the same with digits as "0", only the
    digits that `_tail` bounds are left to look at (the tens of the seconds, and of the
    zone's hours and minutes), each a column of the joined bytes, one slice apart. Any
    other block: one by one."""
    joined = "\n".join(times)
    first = times[0]
    size = len(first) + 1
    if joined.isascii() and len(joined) + 1 == size * len(times) and _tail(first, 17):
        data = joined.encode()
        t = data.translate(_DIGITS_AS_ZERO)
        layout = t[: size - 1] + b"\n"
        if (
            t + b"\n" == layout * len(times)
            and not data[17::size].translate(None, _LOW_SIX)
            and (
                first[-1] == "Z"
                or not (
                    data[size - 6 :: size].translate(None, b"01")
                    or data[size - 3 :: size].translate(None, _LOW_SIX)
                )
            )
        ):
            return 2
    return 1 if all(_tail(v, 17) is not None for v in times) else 0


_START, _END = 0, 1
_UNSTART, _UNEND, _ = _UNTAGGED
_KIND: dict[type, int] = {
    **dict.fromkeys((FlatStart, _UNSTART, StartBody), _START),
    **dict.fromkeys((FlatEnd, _UNEND, EndBody), _END),
}
_FLAT = SHAPES["flat"]


def _batch_body(decode: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """A decoder of batch items to their call body, raising for an item that is not one
    body of its mode (`schema.typed._batch` says "don't know" to those)."""

    def body(raw: bytes) -> Any:
        s = decode(raw)
        req = s.req
        if s.mode == "start":
            if req.end is UNSET and req.start is not UNSET:
                return req.start
        elif req.start is UNSET and req.end is not UNSET:
            return req.end
        raise ValueError(raw[:40])

    return body


def _request_body(decode: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """A decoder of requests ({"start": body} or {"end": body}) to their call body, raising
    for a request that is not exactly one (`schema.typed._request`'s "don't know")."""

    def body(raw: bytes) -> Any:
        s = decode(raw)
        start, end = s.start, s.end
        if (start is UNSET) is not (end is UNSET):
            return end if start is UNSET else start
        raise ValueError(raw[:40])

    return body


# the shapes of starts and ends besides the flat one: a line's first key (`{"mode"`, ...)
# -> the decoder of its call body, for `bulk_lines`
BODIES: dict[bytes, Callable[[bytes], Any]] = {
    b'{"mode"': _batch_body(SHAPES["batch"]),
    b'{"start': _request_body(SHAPES["request"]),
    b'{"end":': _request_body(SHAPES["request"]),
}

BulkBlock = tuple[int, list[Any], Packed | None]


def bulk_lines(
    data: bytes,
    seen: BlockBytes,
    at_start: bool,
    near_limit: int = NEAR_LIMIT,
    decode: Callable[[bytes], Any] = _FLAT,
) -> BulkBlock | None:
    """(lines, entries with None for the starts now in a pair, pairs packed) of a block of starts
    and ends the typed path vouches for, else None. `seen`: the block's search; `at_start`:
    it begins its input; lines over `near_limit` are measured (by the general loop); `decode`:
    `SHAPES["flat"]` or from `BODIES`. Starts: tuples of `Facts`' fields, for the caller."""
    lines, at = lines_of(data, at_start)  # (at: where the line starts in data)
    out: list[Any] = []
    append = out.append
    pairs: list[tuple[Any, str, int]] = []
    add_pair = pairs.append
    opened: dict[str, int] = {}  # id -> index in out of its start, still unpaired
    ids: list[str] = []  # deferred regexes: call ids not in the cache, and times past a
    times: list[str] = []  # known minute
    count = None if seen.translated is None else seen.translated.count
    deep = seen.deep  # (the compiled search's: then `count` is None)
    clear = not (seen.refs or seen.text or seen.numbers)
    untagged = UNTAGGED.get
    flat = decode is _FLAT  # (whose lines may hold their "type" late)
    every: list[str] = []  # every record's id: each once, bar the pairs' twice
    note = every.append
    n = 0
    for raw in lines:
        n += 1
        size = len(raw)
        if size > LONG_LINE and (  # `typed_lines.too_deep`, inline: no call a line
            size > near_limit
            or (n in deep if count is None else count(OPENER, at, at + size) >= DEEP_BRACKETS)
        ):
            return None
        at += size
        if not clear and not line_clear(raw, n, seen):
            return None
        try:  # (a first key not "t...": "type" comes late, its value read in the bytes)
            t = raw.rfind(TYPE_KEY) + 7 if flat and raw[2] != 0x74 else 0
            s = untagged(raw[t : t + 3], decode)(raw) if t else decode(raw)
        except Exception:  # msgspec's refusal: the general loop decides
            return None
        kind = _KIND.get(type(s))
        v = s.project_id
        if v not in _ok_projects and not _new_project(v):
            return None
        cid = s.id
        note(cid)
        if kind == _START:
            start = _start(s, n, opened, ids, times)
            if start is None:
                return None
            opened[cid] = len(out)
            append(start)
            continue
        if kind != _END:
            return None
        # `schema.typed._end`, its regexes deferred
        v = s.trace_id
        if v is not None and v not in _ok_trace_ids and not _new_trace_id(v):
            return None
        ended = s.ended_at  # (to `times` even when checked in full: see `_packed`)
        if ended[:17] not in _minutes and _when_slow(ended) is None:
            return None
        times.append(ended)
        started = s.started_at  # (an end that carries its start's time is not paired)
        i = opened.pop(cid, None) if started is None else None
        if i is None:
            e = _lone_end(n, cid, started, ended, opened, ids)
            if e is None:
                return None
            append(e)
            continue
        add_pair((out[i], ended, n))
        out[i] = None
    vouched = _vouched(every, len(pairs), ids, times)
    return (n, out, _packed(pairs, vouched == 2 and one_zone(times))) if vouched else None


def _start(
    s: Any, n: int, opened: dict[str, int], ids: list[str], times: list[str]
) -> tuple[Any, ...] | None:
    """A start's fields as `schema.typed._start` checks them, its regexes deferred (its id
    and parent's to `ids`, its time past a known minute to `times`), else None."""
    cid = s.id
    if cid in opened:
        return None  # (a duplicate: the general loop unpairs)
    if cid not in _ok_call_ids:
        ids.append(cid)
    tid = s.trace_id
    if tid not in _ok_trace_ids and not _new_trace_id(tid):
        return None
    v = s.op_name
    if v not in _ok_ops and not _new_op(v):
        return None
    pid = s.parent_id
    if pid is not None and pid not in opened and pid not in _ok_call_ids:
        ids.append(pid)
    v = s.wb_run_id
    if v is not None and v not in _ok_runs and not _new_run(v):
        return None
    v = s.started_at  # (to `times` even when checked in full: see `_packed`)
    if v[:17] not in _minutes and _when_slow(v) is None:
        return None
    times.append(v)
    return (n, "start", cid, tid, pid, v, None)


def lines_of(data: bytes, at_start: bool) -> tuple[list[bytes], int]:
    """The block's lines, each with its newline, and where the first starts (after a
    byte-order mark that opens the input)."""
    lines = BytesIO(data).readlines()
    if at_start and data.startswith(BOM):
        lines[0] = lines[0][3:]
        return lines, 3
    return lines, 0


def _lone_end(
    n: int, cid: str, started: str | None, ended: str, opened: dict[str, int], ids: list[str]
) -> Facts | None:
    """The facts of an end not paired in the block (its start elsewhere, or its start's
    time carried, as `schema.typed._end` gives them), its id's regex deferred."""
    if started is not None and _when(started) is None:
        return None
    if cid not in _ok_call_ids and cid not in opened:
        ids.append(cid)
    return new_facts(Facts, (n, "end", cid, None, None, started, ended))


def _vouched(every: list[str], pairs: int, ids: list[str], times: list[str]) -> int:
    """Whether the block's ids are each once (bar a pair's twice: else the general loop
    unpairs) and its deferred ids and times pass (`deferred_check`'s 0, 1 or 2)."""
    return deferred_check(ids, times) if len(set(every)) == len(every) - pairs else 0


def _packed(pairs: list[tuple[Any, str, int]], alike: bool) -> Packed | None:
    """The pairs (start's tuple, end's time, end's line) packed (`pack_halves`), with
    whether each ended first. `alike`: every time of the block, the pairs' among them,
    shares one layout and one zone (`_times_check`, `one_zone`): then the strings compare
    as the instants do (`same_layout`), compared in one C loop; else pair by pair."""
    if not pairs:
        return None
    starts, ends, lines = zip(*pairs, strict=True)
    columns = tuple(zip(*starts, strict=True))
    firsts = columns[5]  # the starts' times (`_start`'s tuple)
    bad = map(lt, ends, firsts) if alike else map(ended_first, firsts, ends)
    return pack_columns(columns, ends, lines, bad)


_ZONE = itemgetter(slice(-6, None))  # "+HH:MM" of a time in a layout with an offset


def one_zone(times: list[str]) -> bool:
    """Whether times that share one layout (`_times_check` said 2) share one zone too: "Z"
    (the layout has it), or one offset (the layout reads every "+HH:MM" alike)."""
    return times[0][-1] == "Z" or len(set(map(_ZONE, times))) == 1


def ended_first(st: str, en: str) -> bool:
    """Whether the end's time is before the start's (strings when they share a layout)."""
    usual = len(st) == len(en) and st[-1] == "Z" == en[-1] and st[10] == en[10]
    return en < st if usual or same_layout(st, en) else ended_before(en, st)


def deferred_ok(ids: list[str], times: list[str]) -> bool:
    """Whether a block's deferred ids and times pass; the ids then join the cache."""
    return deferred_check(ids, times) > 0


def deferred_check(ids: list[str], times: list[str]) -> int:
    """`deferred_ok` as 0 (no), 1 (yes) or 2 (yes, and the times, if any, share one
    layout: `_times_check`)."""
    if ids and not _ids_valid(ids):
        return 0
    answer = _times_check(times) if times else 1
    if answer and ids:
        if len(_ok_call_ids) + len(ids) >= _CACHE_MAX:
            _ok_call_ids.clear()
        _ok_call_ids.update(ids)
    return answer
