"""validate's block loop for completed calls (`upload.validate_calls`) against the general one.

`bulk_calls` checks a block of completed calls (one record a call, no "type") with the
regexes of ids and times run once per block; it gives the general loop's answer or none
(the caller then runs the general loop). Each test checks a block both ways and wants the
same `Checked`, and that the bulk loop answered where it should and gave up where it must.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.bulk_kit import ENDED_FIRST, same_both_ways
from tests.support.validate_kit import complete, end, new_id, start
from tracecli.upload import validate_blocks as vb
from tracecli.upload import validate_calls
from tracecli.upload.typed_lines import LONG_LINE, block_bytes
from tracecli.upload.validate_calls import bulk_calls
from tracecli.wire.wideints import DEEP_BRACKETS

TID = new_id()
T0 = "2026-03-02T09:14:05.123456Z"
T1 = "2026-03-02T09:14:07.5Z"


def _same(data: bytes) -> bool:
    """The block both ways: equal outcomes; whether the bulk loop answered."""
    return same_both_ways(data, "bulk_calls", bulk_calls(data, block_bytes(data), True) is not None)


def _line(rec: dict[str, Any], style: str) -> bytes:
    if style == "dumps":
        return json.dumps(rec).encode()
    return json.dumps(rec, separators=(",", ":"), sort_keys=style == "sorted").encode()


def _block(recs: list[dict[str, Any]], style: str = "compact") -> bytes:
    return b"".join(_line(r, style) + b"\n" for r in recs)


def _call(cid: str, parent: str | None = None, **kw: Any) -> dict[str, Any]:
    return complete(cid, TID, parent, **{"started_at": T0, "ended_at": T1, **kw})


def _calls(n: int) -> list[dict[str, Any]]:
    """n completed calls, nested, children first (as a producer writes them on return)."""
    ids = [new_id() for _ in range(n)]
    return [_call(c, ids[i - 1] if i else None) for i, c in reversed(list(enumerate(ids)))]


@pytest.mark.parametrize("style", ["compact", "dumps", "sorted"])
def test_a_plain_block_takes_the_bulk_loop(style: str) -> None:
    data = _block(_calls(5), style)
    assert _same(data)
    assert _same(b"\xef\xbb\xbf" + data)


@pytest.mark.parametrize(
    "recs",
    [
        pytest.param(lambda c: [_call(c), _call(c)], id="id-twice"),
        pytest.param(lambda c: [_call(c, ended_at="2020-01-01T00:00:00Z")], id="ended-first"),
        pytest.param(
            lambda c: [_call(c, ended_at="2026-03-02T09:14:04.999999+00:00")], id="ended-first-tz"
        ),
        pytest.param(lambda c: [_call(c, started_at="2026-03-02T09:14:60Z")], id="second-60"),
        pytest.param(lambda c: [_call(c, started_at="2026-03-02 09:14:05Z")], id="space"),
        pytest.param(lambda c: [_call(c.upper())], id="upper-id"),
        pytest.param(lambda c: [_call(c, parent_id="f" * 16)], id="hex16-parent"),
        pytest.param(lambda c: [_call(c, parent_id="x")], id="bad-parent"),
        pytest.param(lambda c: [_call(c, exception=3)], id="bad-exception"),
        pytest.param(lambda c: [_call(c, summary={"usage": 3})], id="bad-summary"),
        pytest.param(lambda c: [start(c, TID), end(c)], id="start-end"),
        pytest.param(lambda c: [{**_call(c), "type": "call"}], id="flat-call"),
        pytest.param(lambda c: [_call(c, inputs={"r": "weave:///x"})], id="ref"),
        pytest.param(lambda c: [_call(c, inputs={"n": 10**30})], id="wide-int"),
        pytest.param(lambda c: [_call(c, inputs={"n": 1e300})], id="exponent"),
        pytest.param(lambda c: [_call(c, inputs={"t": "\u00e9"})], id="not-ascii"),
        pytest.param(lambda c: [{"op_name": "x"}], id="no-id"),
    ],
)
def test_odd_blocks_read_as_the_general_loop_reads_them(recs: Any) -> None:
    cid = new_id()
    for style in ("compact", "dumps", "sorted"):
        _same(_block(_calls(2) + recs(cid) + _calls(2), style))


def test_the_bulk_loop_gives_up_where_it_must() -> None:
    cid = new_id()
    assert not _same(_block([_call(cid, ended_at="2020-01-01T00:00:00Z")]))
    assert not _same(_block([_call(cid.upper())]))
    assert not _same(_block([_call(cid)]) + b"\n")  # a blank line
    assert not _same(_block([start(cid, TID), end(cid)]))
    assert not _same(_block([_call(cid, started_at="2026-03-02T09:14:60Z")]))
    assert _same(_block([_call(cid), _call(cid)]))  # a duplicate: the cross checks say so


@pytest.mark.parametrize("extra", [-1, 0, 1])
def test_long_lines_are_counted_from_where_they_start(extra: int) -> None:
    line = _line(_call(new_id(), inputs={"x": 0}), "compact")
    depth = DEEP_BRACKETS - line.count(b"{") - line.count(b"[") + extra
    deep = line.replace(b'"x":0', b'"x":' + b"[" * depth + b"]" * depth)
    assert len(deep) > LONG_LINE
    for bom in (b"", b"\xef\xbb\xbf"):
        data = bom + _block(_calls(3)) + deep + b"\n" + _block(_calls(1))
        assert _same(data) == (extra < 0)


ids = st.sampled_from(["0123456789abcdef", "0123456789ABCDEF", "x", "", "0" * 36]) | (
    st.uuids().map(str)
)
times = st.builds(
    lambda m, s, frac, zone, sep: f"2026-03-02{sep}09:{m}:{s}{frac}{zone}",
    st.sampled_from(["14", "15", "60"]),
    st.sampled_from(["05", "59", "60", "5", "5a"]),
    st.sampled_from(["", ".1", ".123456", ".1234567", "."]),
    st.sampled_from(["Z", "+00:00", "-05:30", "+24:00", "+19:60", "+05:61"]),
    st.sampled_from(["T", " "]),
)


# (each half of the draws plain: a block is plain only if all its strings are)
good_ids = st.uuids().map(str)
good_times = st.sampled_from([T0, T1, "2026-03-02T09:15:00Z", "2026-03-02T09:14:06+00:00"])


def test_any_block_of_completed_calls_reads_the_same_both_ways() -> None:
    took = 0

    # the whole sweep always: its check that the strategy reaches the bulk loop (below)
    # needs it (12-29 of 300 reach it; a third of the sweep could fall under 3)
    @settings(max_examples=300, deadline=None)
    @given(
        calls=st.lists(
            st.tuples(good_ids | ids, good_ids | ids, good_times | times, good_times | times),
            min_size=1,
            max_size=6,
        ),
        style=st.sampled_from(["compact", "dumps", "sorted"]),
    )
    def check(calls: list[tuple[str, str, str, str]], style: str) -> None:
        nonlocal took
        recs = [
            complete(cid, TID, parent or None, started_at=started, ended_at=ended)
            for cid, parent, started, ended in calls
        ]
        took += _same(_block(recs, style))

    check()
    assert took >= 3, "the strategy must reach the bulk loop now and then"


@pytest.mark.parametrize(
    ("started", "ended", "first"),
    ENDED_FIRST,
)
def test_a_call_that_ended_first_is_found_in_any_zone(
    started: str, ended: str, first: bool
) -> None:
    """The bulk loop compares a block's times as strings only when they share one layout
    and one zone; a call that ended first makes it give up (the general loop reports it)."""
    cid = new_id()
    recs = [_call(new_id(), started_at=started, ended_at=started)]
    recs.append(_call(cid, started_at=started, ended_at=ended))
    for style in ("compact", "dumps", "sorted"):
        assert _same(_block(recs, style)) is not first


def test_the_bulk_loop_is_what_validate_runs() -> None:
    assert vb.bulk_calls is validate_calls.bulk_calls


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_line_ends_read_as_the_general_loop_reads_them(bom: bytes) -> None:
    data = bom + _block(_calls(3))
    assert _same(data[:-1])  # no newline after the last line
    _same(data.replace(b"\n", b"\r\n"))
    _same(data.replace(b"\n", b"\n\n", 1))  # a blank line
    _same(data.replace(b"\n", b"\n \n", 1))
