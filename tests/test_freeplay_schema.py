"""Freeplay models and rules: against SCHEMA.md's tables, the reference server's own models,
and the mistakes people make (each message must say how to fix the record)."""

from __future__ import annotations

import importlib.util
import re
import sys
import uuid
from types import ModuleType
from typing import Any

import orjson
import pytest
from pydantic import BaseModel, ValidationError

from tests.conftest import require_shared
from tracecli.check.records import parse_record
from tracecli.diagnostics import Location
from tracecli.freeplay.ids import as_uuid4, completion_id_for, uuid4_from
from tracecli.schema import freeplay as fp
from tracecli.schema.freeplay import check_completion
from tracecli.wire.wideints import exact_loads

SESSION = "0b7e6c2a-5d4f-4e8a-9c1b-2f3a4d5e6f70"
TRACE = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
MSGS = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]


def problems(record: dict[str, Any]) -> dict[str, str]:
    return {f: m for f, _c, m in check_completion(record)}


def completion(**body: Any) -> dict[str, Any]:
    return {"session_id": SESSION, "messages": MSGS, **body}


# --------------------------------------------------------------------------- the rules
def test_valid_completion_and_trace_pass() -> None:
    assert (
        problems(completion(call_info={"start_time": 1767268800, "end_time": 1767268801.5})) == {}
    )
    trace = {"session_id": SESSION, "trace_id": TRACE, "input": "q", "output": None}
    assert problems(trace) == {}
    assert parse_record(Location("f", 1), trace).record is not None


def test_call_info_ending_before_it_starts_is_a_warning() -> None:
    reversed_times = {"start_time": 1767268801.5, "end_time": 1767268800}
    parsed = parse_record(Location("f", 1), completion(call_info=reversed_times))
    assert parsed.record is not None
    got = [(d.field, d.code, d.severity.value) for d in parsed.diagnostics]
    assert got == [("call_info.end_time", "time-order", "warning")]
    # not said beside a time that is wrong already (milliseconds)
    ms = {"start_time": 1767268801500, "end_time": 1767268800}
    assert [
        d.code for d in parse_record(Location("f", 1), completion(call_info=ms)).diagnostics
    ] == ["freeplay.epoch_time"]


def test_iso_time_in_call_info_says_the_epoch_value() -> None:
    got = problems(completion(call_info={"start_time": "2026-01-01T12:00:00.125Z"}))
    assert got == {
        "call_info.start_time": "must be epoch seconds (a number), not an ISO date: "
        "use 1767268800.125"
    }


def test_milliseconds_and_numeric_strings_say_the_seconds() -> None:
    got = problems(completion(call_info={"start_time": 1767268800125, "end_time": "1767268801.5"}))
    assert "use 1767268800.125" in got["call_info.start_time"]
    assert got["call_info.end_time"] == "a number, not a string: use 1767268801.5"


def test_session_id_must_be_uuid4() -> None:
    assert "not a UUID" in problems({**completion(), "session_id": "456"})["session_id"]
    v1 = "11111111-2222-1333-8444-555555555555"
    assert "not version 4" in problems({**completion(), "session_id": v1})["session_id"]
    missing = completion()
    del missing["session_id"]
    assert "required" in problems(missing)["session_id"]


def test_messages_rules() -> None:
    assert "at least one" in problems(completion(messages=[]))["messages"]
    got = problems(completion(messages=[{"role": "robot", "content": "x"}]))
    assert "role='robot'" in got["messages[0]"]
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}
    bad_args = [{"role": "assistant", "content": None, "tool_calls": [call]}]
    assert (
        "tool_calls[0].function.arguments" in problems(completion(messages=bad_args))["messages[0]"]
    )
    no_msgs = completion()
    del no_msgs["messages"]
    assert "required" in problems(no_msgs)["messages"]


def test_eval_results_inputs_llm_parameters() -> None:
    got = problems(
        completion(
            eval_results={"quality": "good", "score": 0.5, "ok": True},
            inputs={"a": None, "b": [1, None], "c": {"d": "x"}},
            call_info={"llm_parameters": {"stop": ["\n"], "t": None, "temperature": 0.2}},
        )
    )
    assert set(got) == {
        "eval_results.quality",
        "inputs.a",
        "inputs.b[1]",
        "call_info.llm_parameters.stop",
        "call_info.llm_parameters.t",
    }
    assert "Freeplay refuses strings" in got["eval_results.quality"]
    assert "lists are not allowed" in got["call_info.llm_parameters.stop"]


def test_project_id_per_record() -> None:
    assert problems(completion(project_id="4a6c1f1e-8f0b-4a7e-9a51-3b1d2c9e7f10")) == {}
    assert "project UUID" in problems(completion(project_id="acme/proj"))["project_id"]


def test_unknown_keys_and_trace_id_on_completion() -> None:
    got = problems(completion(callinfo={}, trace_id=TRACE))
    assert "typo" in got["callinfo"]
    assert "parent_id" in got["trace_id"]


def test_trace_rules() -> None:
    got = problems(
        {
            "session_id": SESSION,
            "trace_id": "not-a-uuid",
            "input": None,
            "start_time": 1767268800.0,
            "end_time": "2026-01-01T12:00:00",
            "kind": "robot",
        }
    )
    assert set(got) == {"trace_id", "input", "output", "start_time", "end_time", "kind"}
    assert "'2026-01-01T12:00:00+00:00'" in got["start_time"]
    assert "UTC offset" in got["end_time"]  # a warning (see below)


TIME = "2026-01-01T12:00:00"


@pytest.mark.parametrize(
    ("times", "want"),
    [
        # Freeplay's reference server stores a time without an offset (with a warning)
        ({"start_time": TIME, "end_time": TIME + ".5"},
         {("start_time", "time-no-zone", "warning"), ("end_time", "time-no-zone", "warning")}),
        ({"start_time": "2026-01-01 12:00"}, {("start_time", "time-no-zone", "warning")}),
        ({"end_time": TIME + ".123456789"}, {("end_time", "time-no-zone", "warning")}),
        # ... but fails (500) when the other time has one: refused, saying why
        ({"start_time": TIME, "end_time": TIME + "Z"},
         {("start_time", "freeplay.iso_time", "error")}),
        # ... and refuses (400) what pydantic's strict datetime does not read
        ({"start_time": "2026-01-01"}, {("start_time", "freeplay.iso_time", "error")}),
        ({"start_time": TIME + "+00"}, {("start_time", "freeplay.iso_time", "error")}),
        ({"start_time": " " + TIME + "Z"}, {("start_time", "freeplay.iso_time", "error")}),
        ({"start_time": TIME + "Z", "end_time": TIME + "-05:30"}, set()),
        # a trace that ends before it starts: stored (with a warning), as weave's calls
        ({"start_time": TIME + ".5Z", "end_time": TIME + "Z"},
         {("end_time", "time-order", "warning")}),
        ({"start_time": TIME + ".5", "end_time": TIME},
         {("start_time", "time-no-zone", "warning"), ("end_time", "time-no-zone", "warning"),
          ("end_time", "time-order", "warning")}),
    ],
)  # fmt: skip
def test_trace_times(times: dict[str, str], want: set[tuple[str, str, str]]) -> None:
    record = {"session_id": SESSION, "trace_id": TRACE, "input": "q", "output": "a", **times}
    parsed = parse_record(Location("f.jsonl", 3), record)
    got = {(d.field, d.code, d.severity.value) for d in parsed.diagnostics}
    assert got == want
    assert (parsed.record is None) == any(s == "error" for _, _, s in want)
    for d in parsed.diagnostics:
        assert (d.path, d.line) == ("f.jsonl", 3)
        if d.code == "time-no-zone":
            assert d.message.startswith(repr(times[d.field]) + " has no UTC offset")
            assert "stores it as written" in d.message and "+00:00" in d.message
        elif d.code == "time-order":
            assert d.message.startswith(repr(times["end_time"]) + " is before start_time")
        elif "Z" in times.get("end_time", ""):
            assert "end_time has one" in d.message and "500" in d.message


def test_tool_schema_needs_description() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {}}}
    assert "description" in problems(completion(tool_schema=[tool]))["tool_schema[0]"]
    tool["function"]["description"] = ""
    assert problems(completion(tool_schema=[tool])) == {}


def test_nan_is_not_json() -> None:
    got = problems(completion(eval_results={"x": float("nan")}))
    assert "not a JSON number" in got["eval_results.x"]


def test_a_number_that_is_not_json_is_said_as_written() -> None:
    """`NaN`, `1e400`, `-Infinity` as the line holds them, not Python's `nan`/`inf`."""
    line = (
        b'{"session_id": "' + SESSION.encode() + b'", "messages": ' + orjson.dumps(MSGS)
        + b', "eval_results": {"a": NaN, "b": 1e400, "c": -Infinity}}'
    )  # fmt: skip
    got = problems(exact_loads(line))
    assert [got[f"eval_results.{k}"] for k in "abc"] == [
        "NaN is not a JSON number",
        "1e400 is not a JSON number",
        "-Infinity is not a JSON number",
    ]
    # a YAML `.nan` has no text of its own: Python's spelling is what there is
    assert problems(completion(eval_results={"x": float("nan")}))["eval_results.x"] == (
        "nan is not a JSON number"
    )


# --------------------------------------------------------------------------- ids
def test_derived_ids_are_v4_and_deterministic() -> None:
    a = uuid4_from("x", "y")
    assert a == uuid4_from("x", "y") != uuid4_from("x", "z")
    assert uuid.UUID(a).version == 4 and uuid.UUID(a).variant == uuid.RFC_4122
    assert as_uuid4(TRACE.upper()) == TRACE
    assert (
        as_uuid4("0198f7a2-3c4d-7e5f-8a6b-1c2d3e4f5a6b") != "0198f7a2-3c4d-7e5f-8a6b-1c2d3e4f5a6b"
    )
    assert fp.uuid4_problem(as_uuid4("a1b2c3d4e5f60718"), "x") is None
    rec = completion()
    p = "4a6c1f1e-8f0b-4a7e-9a51-3b1d2c9e7f10"
    assert completion_id_for(rec, p) == completion_id_for(dict(reversed(list(rec.items()))), p)
    assert completion_id_for(rec, p) != completion_id_for(completion(eval_results={"a": 1}), p)


# --------------------------------------------------------------------------- vs SCHEMA.md
def _table_fields(section: str) -> dict[str, str]:
    """`field` → its `req.` column (or "" when the table has none), from one SCHEMA.md table."""
    out: dict[str, str] = {}
    for line in section.splitlines():
        m = re.match(r"^\| `([a-z_]+)`(?:, `([a-z_]+)`)? \| [^|]+\|(?: ([^|]+)\|)?", line)
        if m:
            for name in filter(None, (m.group(1), m.group(2))):
                out[name] = (m.group(3) or "").strip()
    return out


def _schema_md() -> str:
    return require_shared("tools", "freeplay-ref", "SCHEMA.md").read_text(encoding="utf-8")


def _section(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end, text.index(start))]


def test_record_payload_matches_schema_md_table() -> None:
    table = _table_fields(_section(_schema_md(), "## 2. Request body", "### 2.1"))
    assert set(fp.RecordPayload.model_fields) == set(table)
    required = {n for n, f in fp.RecordPayload.model_fields.items() if f.is_required()}
    assert required == {n for n, req in table.items() if req.startswith("**yes")} == {"messages"}


def test_call_info_matches_schema_md_table() -> None:
    table = _table_fields(_section(_schema_md(), "### 2.1", "### 2.2"))
    assert set(fp.CallInfo.model_fields) == set(table)


def test_trace_payload_matches_schema_md_table() -> None:
    table = _table_fields(_section(_schema_md(), "## 5. Traces", "## 6."))
    assert set(fp.TracePayload.model_fields) == set(table)
    required = {n for n, f in fp.TracePayload.model_fields.items() if f.is_required()}
    assert (
        required
        == {n for n, req in table.items() if req.startswith("**yes")}
        == {
            "input",
            "output",
        }
    )


# --------------------------------------------------------------------------- vs refserver
@pytest.fixture(scope="module")
def ref() -> ModuleType:
    path = require_shared("tools", "freeplay-ref", "refserver.py")
    pytest.importorskip("fastapi")
    spec = importlib.util.spec_from_file_location("freeplay_refserver_models", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


MODEL_PAIRS = [
    ("RecordPayload", "RecordPayload"),
    ("TracePayload", "TracePayload"),
    ("CallInfo", "CallInfo"),
    ("UsageInfo", "UsageInfo"),
    ("PromptInfo", "PromptInfo"),
    ("SessionInfo", "SessionInfo"),
    ("TraceInfo", "TraceInfo"),
    ("TestRunInfo", "TestRunInfo"),
    ("ResponseInfo", "ResponseInfo"),
    ("FunctionCall", "FunctionCall"),
    ("MediaInputUrl", "MediaInputUrl"),
    ("MediaInputBase64", "MediaInputBase64"),
]


@pytest.mark.parametrize(("ours", "theirs"), MODEL_PAIRS)
def test_models_have_the_refservers_fields(ref: ModuleType, ours: str, theirs: str) -> None:
    a: type[BaseModel] = getattr(fp, ours)
    b: type[BaseModel] = getattr(ref, theirs)
    assert set(a.model_fields) == set(b.model_fields)
    assert {n for n, f in a.model_fields.items() if f.is_required()} == {
        n for n, f in b.model_fields.items() if f.is_required()
    }


# Bodies both sides must judge the same (ours: no error; a warning is fine). Our rules are
# stricter in documented places, kept out of this list: milliseconds in call_info times, and
# trace times that are epoch seconds as text or use `_` between date and time (not ISO
# 8601). One zoneless trace time beside a zoned one passes the models but fails the
# reference server's handler (500): test_trace_times.
CORPUS: list[dict[str, Any]] = [
    {"messages": MSGS},
    {"messages": []},
    {"messages": [{"role": "robot", "content": "x"}]},
    {"messages": MSGS, "call_info": {"start_time": "2026-01-01T12:00:00Z"}},
    {"messages": MSGS, "call_info": {"start_time": 1767268800, "usage": {"prompt_tokens": 1}}},
    {"messages": MSGS, "call_info": {"llm_parameters": {"stop": ["\n"]}}},
    {"messages": MSGS, "call_info": {"llm_parameters": {"t": 0.2, "o": {"a": [1]}}}},
    {"messages": MSGS, "call_info": {"api_style": "fast"}},
    {"messages": MSGS, "eval_results": {"quality": "good"}},
    {"messages": MSGS, "eval_results": {"a": 1, "b": True, "c": 0.5}},
    {"messages": MSGS, "inputs": {"a": None}},
    {"messages": MSGS, "inputs": {"a": [1, {"b": "c"}]}},
    {"messages": MSGS, "completion_id": "nope"},
    {"messages": MSGS, "parent_id": TRACE, "completion_id": TRACE},
    {"messages": MSGS, "response_info": {"latency_ms": 5}},
    {"messages": MSGS, "prompt_info": {"environment": "prod"}},
    {"messages": MSGS, "session_info": {"custom_metadata": {"a": [1]}}},
    {"messages": MSGS, "session_info": {"custom_metadata": {"a": 1, "b": "x", "c": False}}},
    {"messages": MSGS, "tool_schema": [{"type": "function", "function": {"name": "f"}}]},
    {"messages": MSGS, "media_inputs": {"img": {"type": "url", "url": "http://x/y.png"}}},
    {"messages": MSGS, "media_inputs": {"img": {"type": "file"}}},
    {"messages": MSGS, "test_run_info": {"test_run_id": TRACE}},
    {"messages": MSGS, "custom_metadata": {"tier": "pro"}},
    {"messages": MSGS, "trace_info": {"trace_id": TRACE}},
    {"messages": [{"role": "model", "parts": [{"text": "hi"}]}]},
    {
        "messages": [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "n"}]}
        ]
    },
    {
        "messages": [
            {"role": "user", "content": [{"toolResult": {"toolUseId": "a", "content": []}}]}
        ]
    },
    {"messages": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}]},
    {"input": "q", "output": "a", "kind": "agent", "start_time": "2026-01-01T12:00:00+00:00"},
    {"input": "q", "output": "a", "start_time": 1767268800.0},
    {"input": "q", "output": "a", "start_time": "2026-01-01T12:00:00", "end_time": "2026-01-02"},
    {"input": "q", "output": "a", "start_time": "2026-01-01T12:00:00", "end_time": None},
    {"input": "q", "output": "a", "start_time": "2026-01-01 12:00:00.5"},
    {"input": "q", "output": "a", "start_time": "2026-01-01T12:00:00+00"},
    {"input": "q", "output": "a", "start_time": "2026-01-01T12"},
    {"input": "q", "output": "a", "start_time": "20260101T120000Z"},
    {"input": "q", "output": "a", "start_time": "2026-W01-1T12:00:00Z"},
    {"input": "q"},
    {"input": "q", "output": None, "name": 5},
    {"input": "q", "output": 1, "eval_results": {"x": "y"}, "custom_metadata": {"v": 1}},
]


@pytest.mark.parametrize("body", CORPUS, ids=lambda b: orjson.dumps(b).decode()[:60])
def test_rules_agree_with_the_refserver(ref: ModuleType, body: dict[str, Any]) -> None:
    is_trace = "messages" not in body
    model = ref.TracePayload if is_trace else ref.RecordPayload
    try:
        model.model_validate_json(orjson.dumps(body))
        theirs = True
    except ValidationError:
        theirs = False
    record = {"session_id": SESSION, **({"trace_id": TRACE} if is_trace else {}), **body}
    found = list(check_completion(record))
    ours = all(code in fp.WARNING_CODES for _, code, _ in found)
    assert ours == theirs, found


def test_trace_record_without_session_is_named_as_freeplay() -> None:
    parsed = parse_record(Location("f", 1), {"trace_id": TRACE, "input": "q", "output": "a"})
    assert parsed.record is None
    got = [(d.field, d.code) for d in parsed.diagnostics]
    assert got == [("session_id", "freeplay.session_id")]
