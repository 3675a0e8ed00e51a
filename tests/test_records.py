"""parse_record: shape detection, field paths in messages, and the fast path's promise."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.validate_kit import body, complete, end, new_id, start
from tracecli.check.records import parse_record, wrap
from tracecli.diagnostics import Location, Severity
from tracecli.schema.fastcheck import fast_ok
from tracecli.schema.rules import META_KEY

LOC = Location("r.jsonl", 4)


def problems(value: Any) -> list[tuple[str, str, str]]:
    return [(d.field, d.code, d.severity.value) for d in parse_record(LOC, value).diagnostics]


@pytest.mark.parametrize(
    ("value", "shape", "kind"),
    [
        (start(new_id(), new_id()), "flat", "start"),
        (end(new_id()), "flat", "end"),
        ({**complete(new_id(), new_id()), "type": "call"}, "flat", "complete"),
        ({"mode": "start", "req": {"start": body(start(new_id(), new_id()))}}, "batch", "start"),
        ({"mode": "end", "req": {"end": body(end(new_id()))}}, "batch", "end"),
        ({"start": body(start(new_id(), new_id()))}, "request", "start"),
        ({"end": body(end(new_id()))}, "request", "end"),
        (complete(new_id(), new_id()), "complete", "complete"),
    ],
)
def test_shapes_and_original(value: dict[str, Any], shape: str, kind: str) -> None:
    parsed = parse_record(LOC, value)
    assert parsed.diagnostics == []
    rec = parsed.record
    assert rec is not None
    assert (rec.shape, rec.kind, rec.loc) == (shape, kind, LOC)
    assert rec.original() == value
    assert wrap(rec.shape, rec.kind, rec.data) == value
    assert "type" not in rec.data and "req" not in rec.data
    assert rec.call_id == rec.data["id"]


def test_field_paths_name_the_nested_field() -> None:
    e = end(new_id())
    e["summary"]["usage"]["gpt-4o"] = {"prompt_tokens": "lots", "completion_tokens": 1.5}
    assert problems(e) == [
        ("summary.usage.gpt-4o.prompt_tokens", "schema.int_parsing", "error"),
        ("summary.usage.gpt-4o.completion_tokens", "schema.int_from_float", "error"),
    ]
    wrapped = {"mode": "end", "req": {"end": body(e)}}
    assert [f for f, _, _ in problems(wrapped)] == [
        "req.end.summary.usage.gpt-4o.prompt_tokens",
        "req.end.summary.usage.gpt-4o.completion_tokens",
    ]


def test_missing_and_wrong_types() -> None:
    s = start(new_id(), new_id(), attributes=None)
    del s["op_name"]
    assert problems(s) == [
        ("op_name", "schema.missing", "error"),
        ("attributes", "schema.dict_type", "error"),
    ]
    msgs = [d.message for d in parse_record(LOC, s).diagnostics]
    assert msgs == ["required field is missing", "Input should be a valid dictionary, got null"]


def test_server_rules() -> None:
    cid = new_id()
    assert problems(start(cid.upper(), new_id())) == [("id", "id-format", "error")]
    assert problems(start(cid + "\n", new_id())) == [("id", "id-format", "error")]
    assert problems(start(cid, "abc")) == [("trace_id", "id-format", "error")]
    assert problems(start(cid, new_id(), project_id="a/b/c")) == [
        ("project_id", "project-id", "error")
    ]
    assert problems(start(cid, new_id(), op_name="x" * 129)) == [
        ("op_name", "op-name-length", "error")
    ]
    ref = "weave:///acme/agents/op/" + "x" * 200 + ":abc123"
    assert problems(start(cid, new_id(), op_name=ref)) == []
    assert problems(start(cid, new_id(), op_name="weave:///nope")) == [
        ("op_name", "op-ref", "error")
    ]
    assert not fast_ok("start", body(start(cid, new_id(), op_name="weave:///nope")))
    assert problems(start(cid, new_id(), display_name="d" * 1025)) == [
        ("display_name", "display-name-length", "error")
    ]
    # weave's SQLite server stores any run id; the SDK's form passes, others are a warning
    assert problems(start(cid, new_id(), wb_run_id="acme/agents/run-1")) == []
    assert fast_ok("start", body(start(cid, new_id(), wb_run_id="acme/agents/run-1")))
    for odd in ("run-1", "agents:run-1", "a/b", "a//c"):
        assert problems(start(cid, new_id(), wb_run_id=odd)) == [
            ("wb_run_id", "wb-run-id", "warning")
        ]
        assert not fast_ok("start", body(start(cid, new_id(), wb_run_id=odd)))
    assert problems(start(cid, new_id(), wb_run_step=2**63)) == [
        ("wb_run_step", "wb-run-step", "error")
    ]
    assert problems(end(cid, wb_run_step_end=-1)) == [
        ("wb_run_step_end", "wb-run-step-end", "warning")
    ]
    assert problems(start(cid, new_id(), op_name="")) == [("op_name", "op-name-empty", "warning")]
    assert problems(start(cid, new_id(), display_name="")) == [
        ("display_name", "display-name-empty", "warning")
    ]
    assert problems(end(cid, summary={"status_counts": {"done": 1}})) == [
        ("summary.status_counts.done", "schema.enum", "error")
    ]
    span = "0123456789abcdef"
    trace32 = "0123456789abcdef0123456789abcdef"
    assert problems(start(span, trace32, parent_id=span)) == []


def test_a_start_needs_its_ids() -> None:
    s = start(new_id(), new_id())
    del s["id"], s["trace_id"]
    assert problems(s) == [("id", "missing-id", "error"), ("trace_id", "missing-id", "error")]


def test_unknown_keys() -> None:
    assert problems({**end(new_id()), "ouptut": 1}) == [("ouptut", "unknown-field", "warning")]
    # what the weave SDK writes on an end, and the read-only fields of a stream_query dump
    sdk_end = {**end(new_id()), "trace_id": new_id(), "is_eval": False}
    assert problems(sdk_end) == []
    assert fast_ok("end", body(sdk_end))
    dumped = {
        **body(complete(new_id(), new_id())),
        "wb_user_id": "u",
        "deleted_at": None,
        "expire_at": None,
        "storage_size_bytes": 35,
        "total_storage_size_bytes": 35,
        "wb_username": "someone",
        "summary": {"weave": {"status": "success", "latency_ms": 1000}},
    }
    assert problems(dumped) == []
    assert problems({**sdk_end, "deleted_at": None}) == [("deleted_at", "unknown-field", "warning")]
    item = {"mode": "end", "req": {"end": body(end(new_id()))}, "note": 1}
    assert problems(item) == [("note", "unknown-field", "warning")]
    req = {"mode": "start", "req": {"start": body(start(new_id(), new_id())), "x": 1}}
    assert problems(req) == [("req.x", "schema.extra_forbidden", "error")]
    assert problems({"start": {}, "end": {}})[0][1] == "shape"


def test_what_fits_no_shape() -> None:
    assert problems([1]) == [("(record)", "shape", "error")]
    assert problems({"hello": "world"}) == [("(record)", "shape", "error")]
    assert problems({"type": "begin"}) == [("type", "shape", "error")]
    assert problems({"mode": "stop", "req": {}}) == [("mode", "shape", "error")]
    assert problems({"mode": "start", "req": []}) == [("req", "schema.dict_type", "error")]
    assert problems({"end": "x"}) == [("end", "schema.dict_type", "error")]


def test_rejected_file_metadata_is_ignored() -> None:
    value = {**end(new_id()), META_KEY: {"reason": "500 from server"}}
    assert problems(value) == []


def test_freeplay_records_go_to_the_freeplay_check() -> None:
    ok = {
        "session_id": "0b7e6c2a-5d4f-4e8a-9c1b-2f3a4d5e6f70",
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
    }
    parsed = parse_record(LOC, ok)
    assert parsed.record is not None and parsed.record.kind == "freeplay"
    assert any(f == "session_id" for f, _, _ in problems({"messages": ok["messages"]}))


@pytest.mark.parametrize(
    "change",
    [
        {"wb_run_step": True},  # pydantic takes a bool for an int; the fast path must not
        {"wb_run_step": 1.0},
        {"started_at": "2026-02-30T00:00:00Z"},
        {"started_at": "2026-03-02T09:14:05"},  # no zone: valid, but not the fast form
        {"started_at": "2026-03-02T24:00:00Z"},
        {"started_at": "\uff12\uff10\uff12\uff16-03-02T09:14:05Z"},  # fullwidth digits
        {"id": "AB" * 8},
        {"parent_id": ""},
        {"attributes": {1: "x"}},
        {"display_name": "d" * 1025},
        {"op_name": ""},
        {"extra": 1},
        {"wb_run_id": "a:b:c"},
    ],
)
def test_fast_path_declines_what_it_cannot_vouch_for(change: dict[str, Any]) -> None:
    s = body(start(new_id(), new_id(), **change))
    assert not fast_ok("start", s)


def test_fast_path_takes_the_happy_path() -> None:
    assert fast_ok("start", body(start(new_id(), new_id())))
    assert fast_ok("end", body(end(new_id(), started_at="2026-03-02T09:14:05.123+02:00")))
    assert fast_ok("complete", complete(new_id(), new_id(), new_id()))
    assert not fast_ok("end", body(end(new_id(), summary={"usage": None})))
    assert not fast_ok("end", body(end(new_id(), summary={"status_counts": {"ok": 1}})))
    assert not fast_ok("freeplay", {})
    assert not fast_ok("start", [])


def test_severity_of_warnings_leaves_the_record_valid() -> None:
    parsed = parse_record(LOC, {**start(new_id(), new_id()), "colour": "red"})
    assert parsed.record is not None
    assert [d.severity for d in parsed.diagnostics] == [Severity.WARNING]


def test_strings_the_server_reads_as_references() -> None:
    """Weave's server rewrites every weave:/// string of a request (at any depth, in
    values, not keys) and answers 400 "Invalid URI" for one that does not go on as
    entity/project/...; its internal form is refused outright (both seen on weave-ref)."""
    cid, trace = new_id(), new_id()
    good = "weave:///acme/agents/object/doc:abc"
    assert problems(start(cid, trace, inputs={"doc": good, "weave:///k": 1})) == []
    assert problems(start(cid, trace, inputs={"a": "weave://x", "b": "see weave:///x"})) == []
    bad = start(cid, trace, attributes={"a": "weave:///e/p"}, inputs={"x": [1, "weave:///n"]})
    assert problems(bad) == [("attributes.a", "ref", "error"), ("inputs.x.1", "ref", "error")]
    internal = "weave-trace-internal:///UHJvamVjdA==/object/doc:abc"
    assert problems(end(cid, output={"r": internal})) == [("output.r", "ref", "error")]
    assert problems(start(cid, trace, display_name="weave:///x")) == [
        ("display_name", "ref", "error")
    ]
    # the fast path does not look inside values: the full check still finds the ref
    assert fast_ok("end", body(end(cid, output="weave:///bad")))
    msgs = parse_record(Location("t.jsonl", 1), {"end": body(end(cid, output="weave:///bad"))})
    assert [(d.field, d.code, d.message) for d in msgs.diagnostics] == [
        (
            "end.output",
            "ref",
            "'weave:///bad': the server reads a weave:/// string as a reference, and refuses "
            "one that is not weave:///entity/project/...",
        )
    ]
