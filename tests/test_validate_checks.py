"""CrossChecker: the rules across records, fed Records one by one as `upload` feeds them."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from tests.support.validate_kit import body, complete, end, new_id, start
from tracecli.check.cross import CrossChecker
from tracecli.check.facts import check_times, refused_id, timestamp
from tracecli.check.records import Record, parse_record
from tracecli.diagnostics import Diagnostic, Location, Severity


def rec(value: dict[str, Any], line: int, path: str = "t.jsonl") -> Record:
    parsed = parse_record(Location(path, line), value)
    assert parsed.record is not None, parsed.diagnostics
    return parsed.record


class Feeder:
    def __init__(self, strict: bool = False) -> None:
        self.c = CrossChecker(strict=strict)
        self.line = 0
        self.now: list[list[Diagnostic]] = []

    def __call__(self, *values: dict[str, Any]) -> list[Diagnostic]:
        out: list[Diagnostic] = []
        for v in values:
            self.line += 1
            out += self.c.feed(rec(v, self.line))
        return out

    def refused(self, value: Any) -> None:
        self.line += 1
        self.c.note_refused(Location("t.jsonl", self.line), value)

    def finish(self) -> list[tuple[int, str, str, str]]:
        return [(d.line, d.severity.value, d.field, d.code) for d in self.c.finish()]


def brief(diags: list[Diagnostic]) -> list[tuple[int, str, str, str]]:
    return [(d.line, d.severity.value, d.field, d.code) for d in diags]


def test_a_clean_tree_says_nothing_and_counts_calls() -> None:
    f = Feeder()
    root, child, trace = new_id(), new_id(), new_id()
    assert f(start(root, trace), start(child, trace, root), end(child), end(root)) == []
    assert f(complete(new_id(), trace, root)) == []
    assert f.finish() == []
    assert f.c.calls == 3


def test_duplicate_ids_are_errors_on_the_later_record() -> None:
    f = Feeder()
    cid, trace = new_id(), new_id()
    f(start(cid, trace), end(cid))
    dup = f(start(cid, trace))
    assert brief(dup) == [(3, "error", "id", "duplicate-id")]
    assert dup[0].message == f"call id {cid} is already used by the call at t.jsonl:1"
    again = f(end(cid))
    assert brief(again) == [(4, "error", "id", "duplicate-id")]
    assert again[0].message == f"call id {cid} already has an end (at t.jsonl:1)"
    assert brief(f(complete(cid, trace))) == [(5, "error", "id", "duplicate-id")]
    assert f.finish() == []
    assert f.c.calls == 1


def test_ended_before_started() -> None:
    f = Feeder()
    a, b, trace = new_id(), new_id(), new_id()
    f(start(a, trace, started_at="2026-03-02T09:14:05Z"))
    late = f(end(a, ended_at="2026-03-02T09:14:04.25Z"))
    # weave's server stores such a call (a negative latency): a warning, not an error
    assert brief(late) == [(2, "warning", "ended_at", "time-order")]
    assert late[0].message == (
        "2026-03-02T09:14:04.25Z is before the call's started_at 2026-03-02T09:14:05Z "
        "(start at t.jsonl:1): weave's server stores the call so, with a negative latency"
    )
    one = f(complete(b, trace, started_at="2026-03-02T10:00:00+01:00", ended_at=T_BEFORE))
    assert brief(one) == [(3, "warning", "ended_at", "time-order")]
    assert f.finish() == []


T_BEFORE = "2026-03-02T08:59:59Z"


def test_end_read_before_its_start() -> None:
    f = Feeder()
    cid, trace = new_id(), new_id()
    assert f(end(cid, ended_at="2026-03-02T09:00:00Z")) == []
    late_start = f(start(cid, trace, started_at="2026-03-02T09:00:01Z"))
    assert brief(late_start) == [(2, "warning", "started_at", "time-order")]
    assert late_start[0].message == (
        "2026-03-02T09:00:01Z is after the call's ended_at 2026-03-02T09:00:00Z (end at t.jsonl:1)"
        ": weave's server stores the call so, with a negative latency"
    )
    assert f.finish() == []
    assert f.c.calls == 1


def test_trace_mismatch_parent_first_and_parent_later() -> None:
    f = Feeder()
    root, child, t1, t2 = new_id(), new_id(), new_id(), new_id()
    f(start(root, t1))
    now = f(start(child, t2, root))
    assert brief(now) == [(2, "error", "trace_id", "trace-mismatch")]
    assert now[0].message == "differs from the trace_id of its parent call (at t.jsonl:1)"
    # the complete shape writes children first: known only when the parent arrives
    g = Feeder()
    kid, parent = new_id(), new_id()
    assert g(complete(kid, t2, parent)) == []
    assert g(complete(parent, t1)) == []
    assert brief(g.c.drain()) == [(1, "error", "trace_id", "trace-mismatch")]
    assert g.finish() == []


def test_unpaired_halves_and_missing_parents() -> None:
    f = Feeder()
    trace = new_id()
    orphan_end, running, child, ghost = new_id(), new_id(), new_id(), new_id()
    f(end(orphan_end), start(running, trace), complete(child, trace, ghost))
    assert f.finish() == [
        (1, "warning", "id", "end-without-start"),
        (2, "warning", "id", "running-call"),
        (3, "warning", "parent_id", "missing-parent"),
    ]
    s = Feeder(strict=True)
    s(end(orphan_end))
    assert s.finish() == [(1, "error", "id", "end-without-start")]


def test_refused_records_cause_no_follow_on_warnings() -> None:
    f = Feeder()
    a, b, c, trace = new_id(), new_id(), new_id(), new_id()
    f.refused(start(a, trace, started_at="yesterday"))  # the start failed its schema
    f(end(a))  # its end: no "end without start"
    f(start(b, trace))
    f.refused(end(b, summary=None))  # the end failed: no "running call"
    f.refused({"mode": "start", "req": {"start": body(start(c, trace)), "x": 1}})
    f(start(new_id(), trace, c))  # its child: no "parent not in the inputs"
    f.refused({"start": {"id": new_id()}})
    assert f.finish() == [(6, "warning", "id", "running-call")]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"type": "start", "id": "x"}, ("start", "x")),
        ({"type": "call", "id": "x"}, ("complete", "x")),
        ({"type": 3, "id": "x"}, (None, "x")),
        ({"mode": "end", "req": {"end": {"id": "y"}}}, ("end", "y")),
        ({"mode": "end", "req": "nope"}, ("end", None)),
        ({"end": {"id": "z"}}, ("end", "z")),
        ({"op_name": "o", "ended_at": "t", "id": 5}, ("complete", None)),
        ([1, 2], (None, None)),
    ],
)
def test_refused_id(value: Any, expected: tuple[Any, Any]) -> None:
    assert refused_id(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-02T09:14:05Z", 1772442845.0),
        ("2026-03-02T09:14:05.5+00:00", 1772442845.5),
        ("2026-03-02T10:14:05+01:00", 1772442845.0),
        ("2026-03-02T09:14:05", 1772442845.0),  # naive: UTC, as the server reads it
        ("2026-03-02 09:14:05Z", 1772442845.0),
        (1772442845, 1772442845.0),
        ("1772442845", 1772442845.0),
        ("yesterday", None),
        (None, None),
        ([], None),
    ],
)
def test_timestamp(value: Any, expected: float | None) -> None:
    assert timestamp(value) == expected


def test_check_times_for_upload() -> None:
    s = {"started_at": "2026-03-02T09:14:05Z"}
    loc = Location("f.jsonl", 9)
    assert check_times(s, {"ended_at": "2026-03-02T09:14:06Z"}, loc) is None
    assert check_times(s, {"ended_at": None}, loc) is None
    d = check_times(s, {"ended_at": "2026-03-02T09:14:04Z"}, loc)
    assert d == Diagnostic(
        "f.jsonl",
        9,
        "ended_at",
        "time-order",
        Severity.WARNING,
        "2026-03-02T09:14:04Z is before the call's started_at 2026-03-02T09:14:05Z: "
        "weave's server stores the call so, with a negative latency",
    )


def test_freeplay_records_count_as_calls() -> None:
    f = Feeder()
    fp = {
        "session_id": "0b7e6c2a-5d4f-4e8a-9c1b-2f3a4d5e6f70",
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
    }
    assert f(fp, fp) == []
    assert f.c.calls == 2


@pytest.mark.slow
def test_many_calls_stay_small_in_memory() -> None:
    """~1M calls must fit the 150 MB budget: a few dozen bytes a call, no id strings.

    Beyond the fixed 8 MB filter and the dict of the newest ids (at most ~7 MB), a call
    costs 29 bytes: its trace hash, where it was seen, its flags, its hash and ordinal."""
    import tracemalloc

    from tracecli.check.idindex import RECENT_MAX

    n = 300_000
    trace = new_id()
    c = CrossChecker()
    t = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC).timestamp()
    ids = [new_id() for _ in range(n)]
    out: list[Diagnostic] = []
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for i, cid in enumerate(ids):
        c.feed_call("big.jsonl", i + 1, "complete", cid, trace, None, t, t + 1, out)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert out == []
    assert c.calls == n
    fixed = (8 << 20) + RECENT_MAX * 110
    assert used - fixed < 36 * n, f"{(used - fixed) / n:.0f} bytes a call"


def test_only_well_formed_reference_strings_keep_a_line_on_the_fast_path():
    """The fast check does not look inside values, so a line holding anything that begins
    like a reference goes to the full check, unless each one is a reference the server
    parses (what the SDK writes: op refs, object refs in inputs)."""
    from tracecli.upload.lines import plain_refs

    assert plain_refs(b'{"op_name": "weave:///e/p/op/llm:abc", "inputs": {"x": 1}}')
    assert plain_refs(
        b'{"op_name": "weave:///e/p/op/a:1", "inputs": {"d": "weave:///e/p/object/d:2"}}'
    )
    for raw in (
        b'{"inputs": {"d": "weave:///d"}}',
        b'{"inputs": {"d": "weave:///e/p"}}',
        b'{"inputs": {"d": "weave-trace-internal:///x/y/z"}}',
        b'{"op_name": "weave:///e/p/op/a:1", "inputs": {"d": "weave:///bad"}}',
        b'{"weave_key": 1}',
    ):
        assert not plain_refs(raw), raw


def test_a_good_op_reference_is_valid_and_a_bad_one_is_named(tmp_path):
    from tracecli.upload.validate import validate_paths

    good = {
        "type": "call", "project_id": "e/p", "id": "0197a3c4-1b2c-7d3e-8f40-123456789abc",
        "trace_id": "0197a3c4-1b2c-7d3e-8f40-123456789abd", "op_name": "weave:///e/p/op/llm:v1",
        "started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T00:00:01Z",
        "attributes": {}, "inputs": {}, "summary": {},
    }  # fmt: skip
    bad = {**good, "id": "0197a3c4-1b2c-7d3e-8f40-123456789abe", "op_name": "weave:///llm"}
    f = tmp_path / "t.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in (good, bad)) + "\n")
    report = validate_paths([str(f)])
    assert [(d.line, d.field, d.code) for d in report.diagnostics] == [(2, "op_name", "op-ref")]
