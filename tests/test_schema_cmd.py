"""`tracecli schema`: valid JSON Schema whose verdicts agree with `validate` on the records
JSON Schema can judge (the samples, hand-made records of every shape, common mistakes)."""

from __future__ import annotations

import copy
import functools
import json
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from tests.conftest import SAMPLES
from tracecli.check.records import parse_record
from tracecli.cli import app
from tracecli.diagnostics import Location
from tracecli.inputs.reader import expand_paths, read_items
from tracecli.schema.json_schema import SHAPES, record_schema

CID, TID = "5f0c7e3a-1b2c-4d5e-8f90-a1b2c3d4e5f6", "0af7651916cd43dd8448eb211c80319c"
START = {
    "project_id": "team/app",
    "id": CID,
    "trace_id": TID,
    "op_name": "openai.chat.completions.create",
    "started_at": "2026-01-01T12:00:00.000Z",
    "attributes": {},
    "inputs": {"messages": [{"role": "user", "content": "hi"}]},
}
END = {
    "project_id": "team/app",
    "id": CID,
    "ended_at": "2026-01-01T12:00:01.500Z",
    "output": {"choices": []},
    "summary": {"usage": {"gpt-4o": {"prompt_tokens": 5}}, "status_counts": {"success": 1}},
}
COMPLETE = {**START, **END}
FP_COMPLETION = {
    "session_id": "0b7e6c2a-5d4f-4e8a-9c1b-2f3a4d5e6f70",
    "project_id": "4a6c1f1e-8f0b-4a7e-9a51-3b1d2c9e7f10",
    "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    "call_info": {"start_time": 1767268800.125, "end_time": 1767268801.875, "model": "gpt-4o"},
}
FP_TRACE = {
    "session_id": "0b7e6c2a-5d4f-4e8a-9c1b-2f3a4d5e6f70",
    "trace_id": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
    "input": "q",
    "output": "a",
}

VALID: dict[str, list[dict[str, Any]]] = {
    "flat": [{"type": "start", **START}, {"type": "end", **END}, {"type": "call", **COMPLETE}],
    "batch": [{"mode": "start", "req": {"start": START}}, {"mode": "end", "req": {"end": END}}],
    "request": [{"start": START}, {"end": END}, {"start": START, "_tracecli": {"line": 3}}],
    "complete": [COMPLETE],
    "freeplay": [FP_COMPLETION, FP_TRACE],
}


def with_(record: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(record)
    *parents, last = path.split(".")
    node = out
    for p in parents:
        node = node[p]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return out


_DELETE = object()

INVALID = [
    with_({"type": "start", **START}, "id", "5F0C7E3A-1B2C-4D5E-8F90-A1B2C3D4E5F6"),
    with_({"type": "start", **START}, "trace_id", _DELETE),
    with_({"type": "start", **START}, "started_at", _DELETE),
    with_({"type": "start", **START}, "op_name", "x" * 129),
    with_({"type": "end", **END}, "summary.status_counts", {"done": 1}),
    with_({"type": "end", **END}, "project_id", "team"),
    with_({"type": "call", **COMPLETE}, "wb_run_step", -1),
    {"type": "begin", **START},
    {"mode": "start", "req": {"start": START, "end": END}},
    {"mode": "finish", "req": {"start": START}},
    {"start": START, "extra": 1},
    with_({"start": START}, "start.inputs", "not an object"),
    with_(COMPLETE, "ended_at", _DELETE) | {"type": "call"},
    with_(FP_COMPLETION, "session_id", "not-a-uuid"),
    with_(FP_COMPLETION, "messages", []),
    with_(FP_COMPLETION, "eval_results", {"quality": "good"}),
    with_(FP_COMPLETION, "call_info.usage", {"prompt_tokens": 1}),
    FP_COMPLETION | {"temperature": 0.2},
    with_(FP_TRACE, "input", _DELETE),
    {"whatever": 1},
]


@functools.cache
def validator(shape: str = "any", allow_list: bool = False) -> jsonschema.Validator:
    schema = record_schema(shape, allow_list=allow_list)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def ok_for_validate(record: dict[str, Any]) -> bool:
    return parse_record(Location("-", 1), record).record is not None


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_prints_a_valid_schema(shape: str) -> None:
    result = CliRunner().invoke(app, ["schema", "--shape", shape])
    assert result.exit_code == 0, result.stderr
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema == record_schema(shape)


def test_default_is_any_shape_and_list_accepts_a_yaml_file() -> None:
    result = CliRunner().invoke(app, ["schema", "--list"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema == record_schema("any", allow_list=True)
    check = jsonschema.Draft202012Validator(schema)
    every = [r for records in VALID.values() for r in records]
    assert check.is_valid(every)
    assert not check.is_valid([*every, INVALID[0]])
    assert not validator("any").is_valid(every)  # without --list, one record only


def test_unknown_shape_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["schema", "--shape", "nope"])
    assert result.exit_code == 2


@pytest.mark.parametrize(
    ("shape", "record"), [(s, r) for s, records in VALID.items() for r in records]
)
def test_valid_records_validate_for_their_shape_and_any(shape: str, record: dict[str, Any]) -> None:
    assert ok_for_validate(record), "fixture must be valid for tracecli validate too"
    for which in (shape, "any"):
        errors = [e.message for e in validator(which).iter_errors(record)]
        assert errors == [], (which, errors)


@pytest.mark.parametrize("record", INVALID, ids=range(len(INVALID)))
def test_what_validate_refuses_the_schema_refuses(record: dict[str, Any]) -> None:
    assert not ok_for_validate(record), "fixture must be invalid for tracecli validate too"
    assert not validator("any").is_valid(record)


def test_a_start_without_ids_is_refused_as_validate_does() -> None:
    record = with_(with_({"type": "start", **START}, "id", _DELETE), "trace_id", _DELETE)
    errors = list(validator("flat").iter_errors(record))
    assert errors and not ok_for_validate(record)


def test_random_ids_round_trip() -> None:
    check = validator("flat")
    for _ in range(50):
        rec = {"type": "start", **START, "id": str(uuid.uuid4()), "trace_id": uuid.uuid4().hex}
        assert check.is_valid(rec) and ok_for_validate(rec)


def sample_records() -> list[tuple[str, dict[str, Any]]]:
    files = [
        f
        for f in expand_paths([str(SAMPLES)])
        if "invalid" not in Path(f).relative_to(SAMPLES).parts
    ]
    out = []
    for src, item in read_items(files) if files else []:
        if isinstance(item, tuple):
            loc, value = item
            out.append((f"{Path(src.path).relative_to(SAMPLES)}:{loc.line}", value))
    return out


def test_the_samples_validate_against_the_schema() -> None:
    records = sample_records()
    assert len(records) > 20, "samples/ should hold trace files of every shape"
    check = validator("any")
    shape_checks = {s: validator(s) for s in SHAPES}
    shapes: set[str] = set()
    for where, value in records:
        parsed = parse_record(Location(where, 1), value)
        assert parsed.record is not None, f"{where}: sample is invalid for validate"
        errors = [e.message for e in check.iter_errors(value)]
        assert errors == [], f"{where}: {errors}"
        assert shape_checks[parsed.record.shape].is_valid(value), where
        shapes.add(parsed.record.shape)
    assert shapes == set(SHAPES) - {"any"}, f"samples cover only {sorted(shapes)}"


@pytest.mark.parametrize(
    "when",
    [
        "2026-01-01T12:00:00Z",
        "2026-01-01T12:00:00.123456+01:00",
        "2026-01-01 12:00:00",
        "2026-01-01T12:00",
        "2026-01-01",
        1767268800,
        1767268800.5,
        "1767268800",
        "yesterday",
        "20260101T120000Z",
        "2026-01-01T12:00:00 UTC",
        True,
        None,
    ],
)
def test_times_are_judged_as_validate_judges_them(when: Any) -> None:
    record = {"type": "start", **START, "started_at": when}
    assert validator("any").is_valid(record) is ok_for_validate(record)


# Rules over every value of a record (strings the server reads as references), which a
# schema for editors does not walk: validate's job alone.
VALIDATE_ONLY = {"ref"}


def test_invalid_samples_refused_on_their_own_are_refused_by_the_schema() -> None:
    check = validator("any")
    files = expand_paths([str(SAMPLES / "invalid")])
    refused = 0
    for src, item in read_items(files):
        if not isinstance(item, tuple):
            continue  # not JSON at all: no schema to apply
        loc, value = item
        parsed = parse_record(loc, value)
        if parsed.record is None:
            if {d.code for d in parsed.diagnostics} <= VALIDATE_ONLY:
                continue
            refused += 1
            assert not check.is_valid(value), f"{src.path}:{loc.line}: the schema accepts it"
    assert refused >= 5
