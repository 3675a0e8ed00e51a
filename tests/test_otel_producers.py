"""OpenTelemetry files as other producers write them, against weave's own server.

Hand-made spans of the shapes and values real producers (OpenInference, OpenLLMetry,
Logfire, the Vercel AI SDK, the Collector's file exporter, protobuf's JSON mapping) write
that the committed fixtures do not hold. Where weave's server is the judge, the same lines
are posted to weave-ref's `/otel/v1/traces` and what it stores is compared with what
tracecli stores or refuses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support import otel_kit
from tests.support.otel_kit import read_lines, same_calls_stored
from tests.support.otel_spans import bare_span
from tests.support.uploadkit import read_back, run_cli

pytestmark = pytest.mark.slow  # weave-ref servers: out of the fast loop

refs = otel_kit.refs  # the fixture: two weave-ref servers


def kv(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


def request(*spans: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [kv("service.name", {"stringValue": "app"})]},
                "scopeSpans": [{"scope": {"name": "producer"}, "spans": list(spans)}],
            }
        ]
    }


def with_attrs(span_id: str, *attrs: dict[str, Any]) -> dict[str, Any]:
    return {**bare_span(span_id), "attributes": list(attrs)}


# Attribute values weave's server fails on (a 500 for the whole request): not strings
# where it takes a string's length or concatenates one, not integers where it wants one,
# bytes it cannot write as JSON.
WEAVE_FAILS_ON = {
    "display_name": kv("wandb.display_name", {"intValue": "5"}),
    "thread_id": kv("wandb.thread_id", {"intValue": "3"}),
    "conversation": kv("gen_ai.conversation.id", {"intValue": "3"}),
    "run_id": kv("wandb.wb_run_id", {"intValue": "3"}),
    "run_step": kv("wandb.wb_run_step", {"stringValue": "x"}),
    "bytes_input": kv("input.value", {"bytesValue": "aGVsbG8="}),
    "double_output": kv("output", {"doubleValue": 1.5}),
}


def test_mode_otel_refuses_the_spans_weave_fails_on(refs: Any, tmp_path: Path) -> None:
    """`--mode otel` sends spans as read: one weave fails on made weave answer 500 for its
    whole chunk, retried until --max-retry-time, and every span of the chunk was left
    unsent (exit 1, "run again to resume", which fails again). It is refused instead, with
    the reason the other modes give, and the others are stored."""
    a, b = refs
    spans, bad = [], {}
    for n, (name, attr) in enumerate(WEAVE_FAILS_ON.items()):
        good, wrong = f"7a00{n:02x}0000000001", f"7a00{n:02x}0000000002"
        spans += [with_attrs(good), with_attrs(wrong, attr)]
        bad[wrong] = name
    src = tmp_path / "spans.jsonl"
    src.write_bytes(orjson.dumps(request(*spans)) + b"\n")
    project = "acme/otel-weave-fails"
    direct = run_cli("validate", str(src), cwd=tmp_path)
    up = run_cli("upload", str(src), "--server", b.url, "--api-key", "x", "-p", project,
                 "--mode", "otel", "--max-retry-time", "5", "-f", "json", cwd=tmp_path)  # fmt: skip
    report = orjson.loads(up.stdout)
    assert up.returncode == 1 and report["uploaded"] == len(bad), (report, up.stderr)
    assert report["rejected"] == len(bad) and report.get("unsent", 0) == 0, report
    stored = {c["id"] for c in read_back(b.url, project)}
    assert stored == {s["spanId"] for s in spans} - bad.keys()
    # the same lines and reasons as validate (and upload's other modes) give
    said = [x for x in up.stderr.splitlines() if ": error:" in x]
    assert said == [x for x in direct.stdout.splitlines() + direct.stderr.splitlines()
                    if ": error:" in x], up.stderr  # fmt: skip
    assert len(said) == len(bad) and all("weave fails" in x for x in said), said
    # (the other server: weave's SQLite server keys calls by id alone)
    plain = run_cli("upload", str(src), "--server", a.url, "--api-key", "x", "-p", project,
                    "--rejected", str(tmp_path / "r2.jsonl"), cwd=tmp_path)  # fmt: skip
    assert [x for x in plain.stderr.splitlines() if ": error:" in x] == said, plain.stderr
    kept = [orjson.loads(x) for x in (tmp_path / "tracecli-rejected.jsonl").read_bytes()
            .splitlines()]  # fmt: skip
    assert {r["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"] for r in kept} == set(bad)


def test_weave_fails_on_those_spans(refs: Any) -> None:
    """The judge: each of those spans, posted alone, makes weave's server answer 500."""
    a, _ = refs
    with httpx.Client(base_url=a.url, timeout=60, trust_env=False) as c:
        for n, attr in enumerate(WEAVE_FAILS_ON.values()):
            body = orjson.dumps(request(with_attrs(f"7b00{n:02x}0000000002", attr)))
            headers = {"content-type": "application/json", "project_id": "acme/j"}
            r = c.post("/otel/v1/traces", content=body, headers=headers)
            assert r.status_code == 500, (attr, r.text)


def snake_case_request() -> dict[str, Any]:
    """A request with protobuf's own field names (`resource_spans`, `span_id`,
    `string_value`: `MessageToJson(preserving_proto_field_name=True)`), which protobuf's
    JSON parser, and so weave's route, reads as it reads camelCase."""

    def span(i: int, **more: Any) -> dict[str, Any]:
        return {
            "trace_id": "7e000000000000000000000000000001",
            "span_id": f"7e0000000000000{i}",
            "name": f"step {i}",
            "kind": "SPAN_KIND_CLIENT",
            "start_time_unix_nano": "1772445245123456789",
            "end_time_unix_nano": "1772445246987654321",
            "status": {"code": "STATUS_CODE_ERROR", "message": "failed"},
            "events": [
                {
                    "time_unix_nano": "1772445245500000000",
                    "name": "ev",
                    "attributes": [{"key": "k", "value": {"int_value": "3"}}],
                }
            ],
            **more,
        }

    attrs = [
        {"key": "gen_ai.request.model", "value": {"string_value": "gpt-4o"}},
        {"key": "gen_ai.usage.input_tokens", "value": {"int_value": "5"}},
        {"key": "input.value", "value": {"string_value": '{"q": 1}'}},
        {"key": "a", "value": {"array_value": {"values": [{"bool_value": True}]}}},
        {"key": "kv", "value": {"kvlist_value": {"values": [
            {"key": "x", "value": {"double_value": 1.5}}]}}},
    ]  # fmt: skip
    return {"resource_spans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"string_value": "a"}}]},
        "scope_spans": [{"scope": {"name": "s"}, "spans": [
            span(1, attributes=attrs), span(2, parent_span_id="7e00000000000001")]}],
    }]}  # fmt: skip


def test_protobuf_field_names_are_read_as_weave_reads_them(refs: Any, tmp_path: Path) -> None:
    """A file of requests with protobuf's field names was "record fits no known shape" on
    every line: only `resourceSpans` told an OTLP file, though its spans were read with
    either spelling. Now: the calls weave stores for the same lines."""
    a, b = refs
    src = tmp_path / "snake.jsonl"
    src.write_bytes(orjson.dumps(snake_case_request()) + b"\n")
    project = "acme/otel-snake"
    check = run_cli("validate", str(src), cwd=tmp_path)
    assert check.returncode == 0 and "2 records, 2 calls" in check.stdout, check.stdout
    assert otel_kit.post_otel(a, read_lines(src), project) == 0
    up = run_cli("upload", str(src), "--server", b.url, "--api-key", "x", "-p", project,
                 cwd=tmp_path)  # fmt: skip
    assert up.returncode == 0, up.stdout + up.stderr
    assert same_calls_stored(a.url, b.url, {project}) == 2
