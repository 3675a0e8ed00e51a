"""`tracecli convert --to freeplay`: golden files, the official SDK's bodies, pairing, errors.

Golden inputs live in tests/golden/freeplay/*.jsonl with the expected output beside each
(`NAME.freeplay.jsonl`); `weave_sdk_examples.jsonl` holds the Weave calls that correspond to
SCHEMA.md §6's examples, whose bodies (captured from the real SDK) are in golden/freeplay/sdk.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from tests.support.freeplay_golden import GOLDEN, SESSION, sdk, sdk_view
from tracecli.check.records import parse_record
from tracecli.cli import app
from tracecli.diagnostics import Location
from tracecli.upload.convert import convert

INPUTS = sorted(p for p in GOLDEN.glob("*.jsonl") if not p.name.endswith(".freeplay.jsonl"))


def run_convert(*paths: Path | str, **kw: Any) -> tuple[list[dict[str, Any]], Any]:
    chunks: list[bytes] = []
    report = convert([str(p) for p in paths], chunks.append, **kw)
    return [orjson.loads(c) for c in chunks], report


@pytest.mark.parametrize("src", INPUTS, ids=lambda p: p.name)
def test_golden(src: Path) -> None:
    chunks: list[bytes] = []
    report = convert([str(src)], chunks.append)
    expected = src.with_name(src.name.replace(".jsonl", ".freeplay.jsonl")).read_bytes()
    assert b"".join(chunks) == expected
    assert report.errors == 0 and report.not_converted == 0
    for line in expected.splitlines():  # what convert writes, upload accepts back
        parsed = parse_record(Location("out", 1), orjson.loads(line))
        assert parsed.record is not None and parsed.record.kind == "freeplay", parsed.diagnostics


# --------------------------------------------------------------------------- vs the SDK


def test_converted_calls_match_the_sdk_bodies() -> None:
    records, _ = run_convert(GOLDEN / "weave_sdk_examples.jsonl")
    by_kind = [("trace" if "trace_id" in r else "completion", r) for r in records]
    completions = [r for k, r in by_kind if k == "completion"]
    traces = [r for k, r in by_kind if k == "trace"]
    assert all(r["session_id"] == SESSION for r in records)  # the SDK's session URL

    def body(r: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in r.items() if k not in ("session_id", "trace_id")}

    c61, c62, c63 = completions
    expected61 = sdk_view(sdk("6_1_completion"))
    assert {k: v for k, v in body(c61).items() if k != "completion_id"} == expected61
    assert body(c62) == sdk_view(sdk("6_2_completion"))  # its completion_id included
    assert {k: v for k, v in body(c63).items() if k != "completion_id"} == sdk_view(
        sdk("6_3_completion")
    )
    agent = next(t for t in traces if t.get("agent_name"))
    assert agent["trace_id"] == "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
    assert body(agent) == sdk_view(sdk("6_3_trace"))


# --------------------------------------------------------------------------- pairing
def _weave_pair(call_id: str, **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    start = {
        "type": "start", "project_id": "a/b", "id": call_id, "trace_id": "a" * 32,
        "op_name": "openai.chat.completions.create", "started_at": "2026-01-01T00:00:00Z",
        "attributes": {},
        "inputs": {"model": "gpt-4o", "messages": [{"role": "user", "content": "q"}]},
        **extra,
    }  # fmt: skip
    end = {
        "type": "end", "project_id": "a/b", "id": call_id, "ended_at": "2026-01-01T00:00:01Z",
        "output": "a", "summary": {},
    }  # fmt: skip
    return start, end


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def test_pairs_across_files_in_any_order(tmp_path: Path) -> None:
    pairs = [_weave_pair(f"{i:016x}") for i in range(1, 40)]
    ends = write_jsonl(tmp_path / "a-ends.jsonl", [e for _, e in pairs])
    starts = write_jsonl(tmp_path / "b-starts.jsonl", [s for s, _ in pairs])
    records, report = run_convert(ends, starts, memory_budget=2048)  # forces a spill to disk
    assert report.completions == 39 and report.not_converted == 0 and report.errors == 0
    assert {r["messages"][-1]["content"] for r in records} == {"a"}
    assert len({r["completion_id"] for r in records}) == 39


def test_unpaired_and_duplicate_halves_are_errors(tmp_path: Path) -> None:
    s1, e1 = _weave_pair("0000000000000001")
    s2, _ = _weave_pair("0000000000000002")
    _, e3 = _weave_pair("0000000000000003")
    f = write_jsonl(tmp_path / "t.jsonl", [s1, s1, e1, s2, e3])
    records, report = run_convert(f)
    assert len(records) == 1
    assert report.not_converted == 3 and report.exit_code == 1
    lines = {(d.line, d.code) for d in report.diagnostics}
    assert lines == {(2, "duplicate"), (4, "unpaired"), (5, "unpaired")}
    msg = next(d.message for d in report.diagnostics if d.line == 4)
    assert "has no end in the inputs" in msg


def test_freeplay_records_pass_through_and_bad_ones_are_named(tmp_path: Path) -> None:
    good = {"session_id": SESSION, "messages": [{"role": "user", "content": "x"}]}
    bad = {
        "session_id": SESSION,
        "messages": [],
        "call_info": {"start_time": "2026-01-01T00:00:00Z"},
    }
    f = write_jsonl(tmp_path / "fp.jsonl", [good, bad])
    records, report = run_convert(f)
    assert records == [good]
    assert report.passed_through == 1 and report.not_converted == 1
    fields = sorted(d.field for d in report.diagnostics)
    assert fields == ["call_info.start_time", "messages"]


def test_llm_call_recognised_by_messages_and_model(tmp_path: Path) -> None:
    start, end = _weave_pair("0000000000000004", op_name="my_wrapper")
    records, _ = run_convert(write_jsonl(tmp_path / "w.jsonl", [start, end]))
    assert "messages" in records[0] and records[0]["call_info"]["provider"] == "openai"
    start["inputs"] = {"question": "q"}  # no messages/model: an ordinary op → a trace
    records, _ = run_convert(write_jsonl(tmp_path / "w.jsonl", [start, end]))
    assert records[0]["input"] == "q" and records[0]["agent_name"] == "my_wrapper"


def test_strict_makes_conversion_warnings_errors(tmp_path: Path) -> None:
    start, end = _weave_pair("0000000000000005")
    end = {**end, "output": None, "exception": "boom"}
    f = write_jsonl(tmp_path / "e.jsonl", [start, end])
    records, report = run_convert(f)
    assert len(records) == 1 and records[0]["custom_metadata"] == {"exception": "boom"}
    assert report.warnings == 1 and report.exit_code == 0
    records, report = run_convert(f, strict=True)
    assert records == [] and report.exit_code == 1


# --------------------------------------------------------------------------- the command
def test_cli_writes_file_and_summary(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    src = GOLDEN / "weave_sdk_examples.jsonl"
    res = CliRunner().invoke(app, ["convert", str(src), "--to", "freeplay", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_bytes() == (GOLDEN / "weave_sdk_examples.freeplay.jsonl").read_bytes()
    assert "into 5 freeplay records (3 completions, 2 traces)" in res.stderr


def test_cli_stdout_json_report_and_errors(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "bad.jsonl", [{"session_id": "456", "messages": []}])
    res = CliRunner().invoke(app, ["convert", str(f), "--to", "freeplay"])
    assert res.exit_code == 1
    assert res.stdout == ""
    assert f"{f}:1: error: session_id: '456' is not a UUID" in res.stderr
    res = CliRunner().invoke(app, ["convert", str(f), "--to", "freeplay", "-f", "json"])
    assert res.exit_code == 2 and "-o FILE" in res.stderr
    out = tmp_path / "o.jsonl"
    args = ["convert", str(f), "--to", "freeplay", "-f", "json", "-o", str(out)]
    res = CliRunner().invoke(app, args)
    assert json.loads(res.stdout)["not_converted"] == 1 and res.exit_code == 1


def test_cli_usage_errors(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["convert", str(tmp_path / "nope.jsonl"), "--to", "freeplay"])
    assert res.exit_code == 2 and "no such file" in res.stderr
    res = CliRunner().invoke(app, ["convert", str(tmp_path), "--to", "weave"])
    assert res.exit_code == 2


def test_tools_declared_by_an_llm_call_are_tool_traces(tmp_path: Path) -> None:
    tools = [{"type": "function", "function": {"name": "lookup_order", "parameters": {}}}]
    llm_s, llm_e = _weave_pair("0000000000000006", parent_id="00000000000000aa")
    llm_s["inputs"]["tools"] = tools
    tool_s, tool_e = _weave_pair(
        "0000000000000007", op_name="lookup_order", parent_id="00000000000000aa"
    )
    tool_s["inputs"] = {"order_id": "A-1"}
    agent_s, agent_e = _weave_pair(
        "00000000000000aa", op_name="support_agent.run", display_name="Support: A-1?"
    )
    agent_s["inputs"] = {"question": "A-1?"}
    rows = [agent_s, llm_s, llm_e, tool_s, tool_e, agent_e]
    records, _ = run_convert(write_jsonl(tmp_path / "a.jsonl", rows))
    completion, tool, agent = records
    assert completion["tool_schema"][0]["function"]["description"] == ""
    assert tool["kind"] == "tool" and tool["name"] == "lookup_order"
    assert tool["input"] == {"order_id": "A-1"} and tool["parent_id"] == agent["trace_id"]
    assert completion["parent_id"] == agent["trace_id"]
    assert (agent["agent_name"], agent["name"], agent["input"]) == (
        "support_agent.run",
        "Support: A-1?",
        "A-1?",
    )
    assert "kind" not in agent


def test_a_directory_does_not_bring_in_last_uploads_rejected_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """convert reads what upload reads: not ./tracecli-rejected.jsonl, whose records are
    in the inputs already (named explicitly, it is read: the fix-and-replay workflow)."""
    monkeypatch.chdir(tmp_path)
    s1, e1 = _weave_pair("0000000000000001")
    write_jsonl(tmp_path / "t.jsonl", [s1, e1])
    write_jsonl(tmp_path / "tracecli-rejected.jsonl", [s1])
    records, report = run_convert(tmp_path)
    assert (len(records), report.files, report.exit_code) == (1, 1, 0)
    records, report = run_convert(tmp_path / "t.jsonl", tmp_path / "tracecli-rejected.jsonl")
    assert report.files == 2 and report.exit_code == 1  # named: read, and its start is a twin
