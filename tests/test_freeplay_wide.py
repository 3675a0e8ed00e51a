"""Integers beyond 64 bits, and numbers that are not JSON, on the way to Freeplay.

The weave SDK writes a Python int as it is (`10**400` included), `validate` passes such a
record, and Freeplay's reference server stores it: `convert --to freeplay` and `upload
--target freeplay` keep its digits exactly, as a Weave upload does (orjson alone would
refuse the line, or read `2**70` as a float). `NaN`, `Infinity` and `1e400` are read, sent
as null and said as a warning naming the file, line and field, as a Weave upload does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tests.support import freeplay_fixtures
from tests.support.freeplay_fixtures import RefServer, fp_upload
from tracecli.cli import app
from tracecli.diagnostics import Diagnostic
from tracecli.freeplay.ids import completion_id_for
from tracecli.upload.convert import convert

refserver_module = freeplay_fixtures.refserver_module
refserver = freeplay_fixtures.refserver

HUGE, BIG = 10**400, 2**70  # beyond a double; beyond 64 bits (orjson: a float)
SESSION = "0b7e6c2a-5d4f-4e8a-9c1b-2f3a4d5e6f70"
LLM_ID = "0b7e6c2a-5d4f-4e8a-9c1b-2f3a4d5e6f71"
TOOL_ID = "0b7e6c2a-5d4f-4e8a-9c1b-2f3a4d5e6f72"


def _call(call_id: str, op: str, inputs: Any, output: Any) -> list[dict[str, Any]]:
    start = {
        "type": "start", "project_id": "a/b", "id": call_id, "trace_id": "a" * 32,
        "op_name": op, "started_at": "2026-01-01T00:00:00Z", "attributes": {},
        "inputs": inputs,
    }  # fmt: skip
    end = {
        "type": "end", "project_id": "a/b", "id": call_id, "ended_at": "2026-01-01T00:00:01Z",
        "summary": {}, "output": output,
    }  # fmt: skip
    return [start, end]


def wide_rows() -> list[dict[str, Any]]:
    """An LLM call with wide parameters, a tool with wide input and output, and a Freeplay
    record with wide template inputs."""
    llm = _call(
        LLM_ID,
        "openai.chat.completions.create",
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "q"}], "seed": HUGE, "n": BIG},
        {"choices": [{"message": {"role": "assistant", "content": "a"}}]},
    )
    tool = _call(TOOL_ID, "lookup_tool", {"x": HUGE, "y": [BIG, -BIG]}, {"big": BIG, "huge": HUGE})
    native = {
        "session_id": SESSION,
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        "call_info": {"start_time": 1767268800.125, "end_time": 1767268801.875},
        "inputs": {"w": HUGE, "b": BIG},
    }
    return [*llm, *tool, native]


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Python's json, as the weave SDK writes: integers with all their digits."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def by_kind(records: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    llm = next(r for r in records if r.get("completion_id") == LLM_ID)
    tool = next(r for r in records if r.get("trace_id") == TOOL_ID)
    native = next(r for r in records if "inputs" in r)
    return llm, tool, native


def assert_exact(llm: dict[str, Any], tool: dict[str, Any], native: dict[str, Any]) -> None:
    params = llm["call_info"]["llm_parameters"]
    assert params["seed"] == HUGE and params["n"] == BIG
    assert tool["input"] == {"x": HUGE, "y": [BIG, -BIG]}
    assert tool["output"] == {"big": BIG, "huge": HUGE}
    assert native["inputs"] == {"w": HUGE, "b": BIG}
    for value in (params["seed"], params["n"], tool["output"]["big"], native["inputs"]["w"]):
        assert type(value) is int  # never a float


def test_convert_keeps_wide_integers_exact(tmp_path: Path) -> None:
    src = write_rows(tmp_path / "wide.jsonl", wide_rows())
    out = tmp_path / "out.jsonl"
    res = CliRunner().invoke(app, ["convert", str(src), "--to", "freeplay", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "invalid JSON" not in res.output
    text = out.read_text()
    assert str(HUGE) in text and str(BIG) in text and "e+" not in text
    records = [json.loads(line) for line in text.splitlines()]
    assert len(records) == 3
    assert_exact(*by_kind(records))


def test_convert_keeps_them_through_a_spill_and_in_a_json_array(tmp_path: Path) -> None:
    rows = wide_rows()
    ends = write_rows(tmp_path / "a-ends.jsonl", [r for r in rows if r.get("type") == "end"])
    starts = tmp_path / "b-starts.json"  # a JSON array: its elements read exactly too
    starts.write_text(json.dumps([r for r in rows if r.get("type") != "end"]))
    chunks: list[bytes] = []
    report = convert([str(ends), str(starts)], chunks.append, memory_budget=256)
    assert report.errors == 0 and report.not_converted == 0 and report.written == 3
    assert_exact(*by_kind([json.loads(c) for c in chunks]))


def test_a_wide_completion_gets_a_stable_id() -> None:
    record = wide_rows()[-1]
    first = completion_id_for(record, "4A6C1F1E-8F0B-4A7E-9A51-3B1D2C9E7F10")
    assert first == completion_id_for(
        json.loads(json.dumps(record)), "4a6c1f1e-8f0b-4a7e-9a51-3b1d2c9e7f10"
    )
    other = {**record, "inputs": {"w": HUGE + 1, "b": BIG}}
    assert completion_id_for(other, "4a6c1f1e-8f0b-4a7e-9a51-3b1d2c9e7f10") != first


def test_upload_sends_the_exact_digits(refserver: RefServer, tmp_path: Path) -> None:
    src = write_rows(tmp_path / "wide.jsonl", wide_rows())
    report = fp_upload([src], tmp_path, refserver)
    assert report.exit_code == 0, report.diagnostics
    assert report.uploaded == 3 and report.rejected == 0
    got = refserver.records()  # read back with Python's json: exact integers
    bodies = [r["body"] for r in got["completions"] + got["traces"]]
    llm = next(b for b in bodies if b.get("completion_id") == LLM_ID)
    tool = next(b for b in bodies if "input" in b)
    native = next(b for b in bodies if "inputs" in b)
    assert_exact(llm, tool, native)


def test_non_finite_numbers_are_warnings_naming_file_line_and_field(tmp_path: Path) -> None:
    src = tmp_path / "nan.jsonl"
    lines = [json.dumps(r) for r in _call(TOOL_ID, "lookup_tool", {"x": 1, "y": 2}, {"v": 3})]
    lines[0] = lines[0].replace('"x": 1', '"x": NaN').replace('"y": 2', '"y": 1e400')
    lines[1] = lines[1].replace('"v": 3', '"v": -Infinity')
    src.write_text("\n".join(lines) + "\n")
    seen: list[Diagnostic] = []
    chunks: list[bytes] = []
    report = convert([str(src)], chunks.append, on_diagnostic=seen.append)
    assert report.errors == 0 and report.written == 1
    assert [(d.path, d.line, d.field, d.is_error) for d in seen] == [
        (str(src), 1, "inputs.x", False),
        (str(src), 1, "inputs.y", False),
        (str(src), 2, "output.v", False),
    ]
    assert "1e400 is not a JSON number" in seen[1].message
    (record,) = [json.loads(c) for c in chunks]
    assert record["input"] == {"x": None, "y": None} and record["output"] == {"v": None}
    strict = convert([str(src)], chunks.append, strict=True)
    assert strict.errors == 3 and strict.written == 0 and strict.not_converted == 2


def test_yaml_keeps_wide_integers_and_warns_of_nan(tmp_path: Path) -> None:
    src = tmp_path / "call.yaml"
    start, end = _call(TOOL_ID, "lookup_tool", {"x": HUGE}, BIG)
    start["attributes"] = {"ratio": "NAN_HERE"}
    src.write_text(
        json.dumps(start).replace('"NAN_HERE"', ".nan") + "\n---\n" + json.dumps(end) + "\n"
    )
    seen: list[Diagnostic] = []
    chunks: list[bytes] = []
    report = convert([str(src)], chunks.append, on_diagnostic=seen.append)
    assert report.errors == 0 and report.written == 1
    assert [(d.line, d.field, d.code) for d in seen] == [(1, "attributes.ratio", "non-finite")]
    (record,) = [json.loads(c) for c in chunks]
    assert record["input"] == {"x": HUGE} and record["output"] == BIG
    assert "custom_metadata" not in record  # (Freeplay takes no null there: left out)


def test_wide_integers_in_json_text_keep_their_digits(tmp_path: Path) -> None:
    """An LLM response tracecli does not recognise is recorded as JSON text, and a list in
    the attributes as metadata text: the digits go in that text, exactly."""
    start, end = _call(
        LLM_ID,
        "openai.chat.completions.create",
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "q"}]},
        {"score": HUGE},
    )
    tool = _call(TOOL_ID, "lookup_tool", {"x": 1}, 2)
    tool[0]["attributes"] = {"ids": [BIG, 1]}
    src = write_rows(tmp_path / "text.jsonl", [start, end, *tool])
    chunks: list[bytes] = []
    report = convert([str(src)], chunks.append)
    assert report.errors == 0 and report.written == 2
    completion, trace = [json.loads(c) for c in chunks]
    assert completion["messages"][-1]["content"] == json.dumps(
        {"score": HUGE}, separators=(",", ":")
    )
    assert trace["custom_metadata"] == {"ids": f"[{BIG},1]"}
