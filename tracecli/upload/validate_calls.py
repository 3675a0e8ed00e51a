"""`validate`'s block of completed calls in one loop, with the regexes run once per block.

A file of completed calls (one record a call, no "type": what `convert` and many
producers write, `--format complete`) went through the general loop of
`validate_blocks`: a check function, a `Facts` and a regex per id and per time for each
record, and then `_settle_times` with a second `Facts` and a time comparison each. Here,
as `validate_bulk.bulk_lines` does for starts and ends, `schema.typed`'s checks of a
completed call are written out in one loop and its regexes (new call and parent ids,
the seconds and zone of each time past a known minute) are deferred to the block's end,
run once over the joined strings. The entries come out settled, as `_settle_times`
leaves a completed call that ended after it started: its facts without times.

The answer is the general loop's, or none: a line msgspec refuses (any other shape
among them), a check that says "don't know", a line the block search flagged, a
deferred string that does not match, or a call that ended before it started (the
general loop reports it) make it give up (None), and the caller runs the general loop.
A test holds the two to the same `Checked` (`tests/test_validate_calls.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import lt
from typing import Any

from tracecli.check.entries import Entry
from tracecli.schema.fastcheck import (
    Facts,
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
    _when_slow,
    new_facts,
)
from tracecli.schema.typed import SHAPES
from tracecli.upload.typed_lines import (
    LONG_LINE,
    NEAR_LIMIT,
    OPENER,
    BlockBytes,
    line_clear,
)
from tracecli.upload.validate_bulk import deferred_check, ended_first, lines_of, one_zone
from tracecli.wire.wideints import DEEP_BRACKETS

__all__ = ["bulk_calls"]

_COMPLETE = "complete"


def bulk_calls(
    data: bytes,
    seen: BlockBytes,
    at_start: bool,
    near_limit: int = NEAR_LIMIT,
    decode: Callable[[bytes], Any] = SHAPES["complete"],
) -> tuple[int, list[Entry]] | None:
    """(lines, settled entries) of a block of completed calls the typed path vouches
    for, else None. `seen`: the block's search; `at_start`: the block begins its input;
    lines over `near_limit` are measured (by the general loop); `decode`:
    `schema.typed.SHAPES`' decoder of completed calls."""
    lines, at = lines_of(data, at_start)  # (at: where the line starts in data)
    out: list[Entry] = []
    append = out.append
    ids: list[str] = []  # deferred regexes: call ids not in the cache, and times past a
    times: list[str] = []  # known minute
    count = None if seen.translated is None else seen.translated.count
    deep = seen.deep  # (the compiled search's: then `count` is None)
    clear = not (seen.refs or seen.text or seen.numbers)
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
        try:
            s = decode(raw)
        except Exception:  # msgspec's refusal: the general loop decides
            return None
        f = _call(s, n, ids, times)
        if f is None:
            return None
        append(f)
    vouched = deferred_check(ids, times)
    return (n, out) if vouched and _in_order(times, vouched == 2 and one_zone(times)) else None


def _in_order(times: list[str], alike: bool) -> bool:
    """Whether no call of the block ended before it started (`times`: each call's start
    and end, in turn). `alike`: every time shares one layout and one zone, so the strings
    compare as the instants do, in one C loop; else call by call."""
    ends, starts = times[1::2], times[0::2]
    return not any(map(lt, ends, starts) if alike else map(ended_first, starts, ends))


def _call(s: Any, n: int, ids: list[str], times: list[str]) -> Facts | None:
    """A completed call's facts as `schema.typed._complete` checks them and
    `validate_blocks._settle_times` leaves them (no times), its regexes deferred (its id
    and parent's to `ids`, its times to `times`, whose order the caller checks); None
    for "don't know"."""
    v = s.project_id
    if v not in _ok_projects and not _new_project(v):
        return None
    cid = s.id
    if cid not in _ok_call_ids:
        ids.append(cid)
    tid = s.trace_id
    if tid not in _ok_trace_ids and not _new_trace_id(tid):
        return None
    v = s.op_name
    if v not in _ok_ops and not _new_op(v):
        return None
    pid = s.parent_id
    if pid is not None and pid not in _ok_call_ids:
        ids.append(pid)
    v = s.wb_run_id
    if v is not None and v not in _ok_runs and not _new_run(v):
        return None
    # both times go to `times`, in turn, even when checked in full: the block's end
    # compares them (`_in_order`)
    st = s.started_at
    if st[:17] not in _minutes and _when_slow(st) is None:
        return None
    en = s.ended_at
    if en[:17] not in _minutes and _when_slow(en) is None:
        return None
    times += st, en
    return new_facts(Facts, (n, _COMPLETE, cid, tid, pid, None, None))
