"""What tail shows and how --follow decides what is news, over a real embedded store."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.servers import end_half, make_call, start_half
from tracecli.readback.rows import format_duration, row_of, status_of, tokens_of
from tracecli.readback.sources import StoreSource
from tracecli.readback.tail import PAGE, Follower, TailRequest
from tracecli.store.db import Store

P = "team/follow"


@pytest.fixture
def source(tmp_path: Path):
    Store(tmp_path / "t.db").close()
    src = StoreSource(str(tmp_path / "t.db"))
    yield src
    src.close()


def test_follow_reports_every_new_call_once_beyond_one_page(source: StoreSource) -> None:
    store = source.store
    store.calls_complete([make_call(P, at=i) for i in range(10)])
    follower = Follower(source, TailRequest(P, limit=3))
    assert [c["started_at"][17:19] for c in follower.snapshot()] == ["07", "08", "09"]
    assert follower.poll() == []
    burst = [make_call(P, at=100 + i) for i in range(PAGE + 50)]  # more than a page
    store.calls_complete(burst)
    events = follower.poll()
    assert [e.call["id"] for e in events] == [c["id"] for c in burst]
    assert {e.kind for e in events} == {"end"}  # first seen finished: reported once
    store.calls_complete(burst[:5])  # re-sent: not news
    assert follower.poll() == []


def test_follow_reports_start_then_end_even_outside_the_snapshot(source: StoreSource) -> None:
    store = source.store
    hidden = make_call(P, at=0, duration=None)  # running, older than the 2 shown
    shown = [make_call(P, at=i) for i in (1, 2)]
    store.call_start(start_half(hidden))
    store.calls_complete(shown)
    follower = Follower(source, TailRequest(P, limit=2))
    assert [c["id"] for c in follower.snapshot()] == [c["id"] for c in shown]
    fresh = make_call(P, at=5, duration=1.0)
    store.call_start(start_half(fresh))
    (event,) = follower.poll()
    assert (event.kind, event.call["id"]) == ("start", fresh["id"])
    store.call_end(end_half(fresh))
    store.call_end(end_half(make_call(P, at=0, call_id=hidden["id"])))
    events = follower.poll()
    assert [(e.kind, e.call["id"]) for e in events] == [
        ("end", hidden["id"]),  # ended at 10:00:01.5, before fresh's end at 10:00:06
        ("end", fresh["id"]),
    ]
    assert follower.poll() == []


def test_follow_with_no_snapshot_and_filters(source: StoreSource) -> None:
    store = source.store
    store.calls_complete([make_call(P, at=0, op="a")])
    follower = Follower(source, TailRequest(P, limit=0, op="b"))
    assert follower.snapshot() == []
    store.calls_complete([make_call(P, at=1, op="a"), make_call(P, at=2, op="b")])
    assert [e.call["op_name"] for e in follower.poll()] == ["b"]


def test_row_cells() -> None:
    call = make_call(P, at=0, duration=75.0, tokens=(1200, 34), exception="E: x\nmore")
    call["summary"]["weave"] = {"status": "error"}
    started, op, status, duration, tokens, short, exc = row_of(call)
    assert (started, op, status, duration, tokens, short, exc) == (
        "2026-01-01 10:00:00",
        "llm.chat",
        "error",
        "1m15s",
        "1,234",
        call["id"][-8:],
        "E: x",
    )
    ref = make_call(P, op="weave:///team/follow/op/planner:abc", duration=None)
    assert row_of(ref)[1:4] == ("planner", "running", "")
    assert row_of(dict(ref, display_name="Plan"))[1] == "Plan"


@pytest.mark.parametrize(
    ("exception", "shown"),
    [
        (None, ""),
        ("KeyError: 'x'\nTraceback ...", "KeyError: 'x'"),
        (
            '{"type": "ValueError", "message": "boom 7", "traceback": [{"line_number": 1}]}',
            "ValueError: boom 7",
        ),  # the weave SDK's form
        ('{"type": "StopIteration", "message": ""}', "StopIteration"),
        ('{"not": "an sdk exception"}', '{"not": "an sdk exception"}'),
        ("{broken json", "{broken json"),
    ],
)
def test_exception_cell(exception: str | None, shown: str) -> None:
    assert row_of(make_call(P, exception=exception))[-1] == shown


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, ""),
        (0.0004, "0ms"),
        (0.25, "250ms"),
        (1.5, "1.50s"),
        (3725, "1h02m"),
        (-0.25, "-250ms"),
        (-3600.5, "-1h00m"),  # a call that ends before it starts
    ],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_tokens_and_status_from_what_servers_send() -> None:
    usage = {"m1": {"input_tokens": 3, "output_tokens": 4}, "m2": {"total_tokens": 10}}
    assert tokens_of({"summary": {"usage": usage}}) == 17
    assert tokens_of({"summary": {}}) is None and tokens_of({}) is None
    assert status_of({"ended_at": None}) == "running"
    assert status_of({"ended_at": "x", "exception": "boom"}) == "error"
    assert status_of({"ended_at": "x"}) == "success"
    assert status_of({"summary": {"weave": {"status": "descendant_error"}}}) == "descendant_error"
