"""Write conventions.jsonl and wb_run_id.jsonl: hand-made OTLP/JSON spans, per convention.

    python3 tests/otel_fixtures/make_conventions.py   # rewrites conventions.jsonl beside it

Every line is an ExportTraceServiceRequest as the OpenTelemetry file exporter writes it.
The spans cover what weave's OTel mapping reads (GenAI `gen_ai.input.messages`, the older
`gen_ai.prompt.N.*`, OpenInference, usage, status and exceptions, long names, `a` with
`a.b`, wandb.* attributes, langfuse time overrides) and the times whose float-seconds
rounding differs from truncation. Deterministic: fixed ids and times.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

T0 = 1_772_445_245_000_000_000  # 2026-03-02T09:54:05Z
TRACE = "5eed0000000000000000000000000001"
ROOT = "a000000000000001"
_next = [0]


def sid() -> str:
    _next[0] += 1
    return f"b{_next[0]:015x}"


def av(value: Any) -> dict[str, Any]:
    """A Python value as an OTLP/JSON AnyValue."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, bytes):
        import base64

        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, list):
        return {"arrayValue": {"values": [av(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": attrs(value)}}
    return {"stringValue": value}


def attrs(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": av(v)} for k, v in d.items()]


def span(name: str, a: dict[str, Any], *, start: int, dur: int, parent: str | None = ROOT,
         span_id: str | None = None, status: dict[str, Any] | None = None, kind: Any = 1,
         **extra: Any) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {"traceId": TRACE, "spanId": span_id or sid()}
    if parent:
        out["parentSpanId"] = parent
    out.update(
        flags=256, name=name, kind=kind, startTimeUnixNano=str(T0 + start),
        endTimeUnixNano=str(T0 + start + dur), attributes=attrs(a), status=status or {},
    )  # fmt: skip
    out.update(extra)
    return out


def line(spans: list[dict[str, Any]], resource: dict[str, Any] | None = None) -> str:
    res = {"service.name": "conventions", "telemetry.sdk.language": "python", **(resource or {})}
    scope = {"scope": {"name": "hand-made", "version": "1"}, "spans": spans}
    body = {"resourceSpans": [{"resource": {"attributes": attrs(res)}, "scopeSpans": [scope]}]}
    return json.dumps(body, separators=(",", ":"))


MSGS_IN = [{"role": "user", "parts": [{"type": "text", "content": "Where is order A-1?"}]}]
MSGS_OUT = [{"role": "assistant", "parts": [{"type": "text", "content": "In transit."}],
             "finish_reason": "stop"}]  # fmt: skip


def genai() -> list[dict[str, Any]]:
    return [
        span("chat gpt-4o-mini", {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024",
            "gen_ai.request.temperature": 0.2, "gen_ai.request.max_tokens": 300,
            "gen_ai.response.finish_reasons": ["stop"], "gen_ai.response.id": "chatcmpl-1",
            "gen_ai.usage.input_tokens": 31, "gen_ai.usage.output_tokens": 7,
            "gen_ai.usage.cache_read.input_tokens": 5,
            "gen_ai.input.messages": json.dumps(MSGS_IN),
            "gen_ai.output.messages": json.dumps(MSGS_OUT),
            "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}]),
        }, start=1_000_123, dur=250_000_499, kind=3),
        span("embeddings text-embedding-3-small", {
            "gen_ai.operation.name": "embeddings", "gen_ai.request.model": "text-embedding-3-small",
            "gen_ai.usage.input_tokens": 0, "gen_ai.usage.output_tokens": "12",
        }, start=300_000_500, dur=20_000_001, kind="SPAN_KIND_CLIENT"),
    ]  # fmt: skip


def older_genai() -> list[dict[str, Any]]:
    return [
        span("openai.chat", {
            "gen_ai.system": "openai", "gen_ai.request.model": "gpt-3.5-turbo",
            "gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "You help.",
            "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": "Hi {there}",
            "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "Hello!",
            "gen_ai.completion.0.finish_reason": "tool_calls",
            "gen_ai.completion.0.tool_calls.0.name": "lookup",
            "gen_ai.completion.0.tool_calls.0.arguments": '{"id": 1}',
            "gen_ai.usage.prompt_tokens": 12, "gen_ai.usage.completion_tokens": 3,
            "llm.usage.total_tokens": 15, "traceloop.span.kind": "llm",
        }, start=400_000_000, dur=99_999_999),
        span("openai.completion", {
            "gen_ai.prompt.0.content": "Say hi", "gen_ai.completion.0.content": "hi",
            "gen_ai.usage.prompt_tokens": 2, "gen_ai.usage.completion_tokens": 1,
        }, start=510_000_000, dur=1_000),
    ]  # fmt: skip


def openinference() -> list[dict[str, Any]]:
    return [
        span("ChatCompletion", {
            "openinference.span.kind": "LLM", "llm.model_name": "claude-3-5-sonnet",
            "llm.provider": "anthropic", "llm.system": "anthropic",
            "input.value": json.dumps({"messages": [{"role": "user", "content": "2+2?"}]}),
            "input.mime_type": "application/json",
            "output.value": "4", "output.mime_type": "text/plain",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": "2+2?",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "4",
            "llm.invocation_parameters": json.dumps({"temperature": 0, "max_tokens": 5}),
            "llm.token_count.prompt": 9, "llm.token_count.completion": 1,
            "llm.token_count.total": 10,
        }, start=600_000_001, dur=7_654_321),
        span("retrieve", {
            "openinference.span.kind": "RETRIEVER", "input.value": "shipping policy",
            "retrieval.documents.0.document.content": "Ships in 2 days",
            "retrieval.documents.0.document.score": 0.91,
            "retrieval.documents.1.document.content": "Returns in 30 days",
        }, start=610_000_000, dur=3_000_000),
        span("tool call", {"input": json.dumps({"order_id": "A-1", "verbose": True}),
                           "output": json.dumps({"status": "shipped"})},
             start=620_000_000, dur=1_500_000),
        span("generic", {"inputs": {"a": 1, "b": [1, 2]}, "outputs": [1, 2, 3]},
             start=630_000_000, dur=1_000),
        span("scalar out", {"input": "plain text", "output": "done"}, start=640_000_000, dur=1),
    ]  # fmt: skip


def status_and_errors() -> list[dict[str, Any]]:
    exc_event = {"timeUnixNano": str(T0 + 700_500_000), "name": "exception", "attributes": attrs({
        "exception.type": "KeyError", "exception.message": "'A-9'",
        "exception.stacktrace": "Traceback (most recent call last):\n  ...\nKeyError: 'A-9'",
        "exception.escaped": False})}  # fmt: skip
    return [
        span("execute_tool lookup_order", {"gen_ai.tool.name": "lookup_order"},
             start=700_000_000, dur=1_000_000, status={"code": 2, "message": "KeyError: 'A-9'"},
             events=[exc_event]),
        span("failed no message", {"x": 1}, start=710_000_000, dur=10,
             status={"code": "STATUS_CODE_ERROR"}),
        span("ok with message", {"x": 2}, start=720_000_000, dur=10,
             status={"code": 1, "message": "fine"}),
        span("server", {"http.route": "/x"}, start=730_000_000, dur=10, kind="SPAN_KIND_SERVER",
             traceState="vendor=1", links=[{"traceId": "AB" * 16, "spanId": "CD" * 8,
             "attributes": attrs({"link.kind": "follows"})}]),
    ]  # fmt: skip


def names() -> list[dict[str, Any]]:
    words = " ".join(f"step{i}.phase/{i}" for i in range(20))
    return [
        span("n" * 127, {"k": 1}, start=800_000_000, dur=5),
        span("n" * 128, {"k": 2}, start=800_000_010, dur=5),
        span("m" * 300, {"k": 3}, start=800_000_020, dur=5),
        span(words, {"k": 4}, start=800_000_030, dur=5),
        span("display", {"wandb.display_name": "D " * 600, "input": "x"},
             start=800_000_040, dur=5),
    ]  # fmt: skip


def conflicts() -> list[dict[str, Any]]:
    return [
        span("a then a.b", {"a": 1, "a.b": 2}, start=900_000_000, dur=5),
        span("a.b then a", {"a.b": 2, "a": 1}, start=900_000_010, dur=5),
        span("a as json then a.b", {"a": '{"c": 1}', "a.b": 2}, start=900_000_020, dur=5),
        span("event conflict", {"k": 1}, start=900_000_030, dur=5, events=[
            {"timeUnixNano": str(T0 + 900_000_031), "name": "e",
             "attributes": attrs({"x": 1, "x.y": 2})}]),
    ]  # fmt: skip


def wandb_spans() -> list[dict[str, Any]]:
    return [
        span("turn", {"gen_ai.conversation.id": "conv-7", "input": "hello",
                      "wandb.wb_run_step": 3,
                      "wandb.wb_run_step_end": 4,
                      "wandb.attributes": json.dumps({"env": "prod", "tier": 2})},
             start=1_000_000_000, dur=1_000_000, parent=None, span_id="c000000000000001"),
        span("thread only", {"wandb.thread_id": "th-1", "wandb.is_turn": True,
                             "wandb.display_name": "Nice name", "output": "ok"},
             start=1_001_000_000, dur=1_000, parent="c000000000000001"),
        span("run id with slash", {"wandb.wb_run_id": "e/p/r", "input": "x"},
             start=1_002_000_000, dur=1_000, parent="c000000000000001"),
        span("custom attributes only", {"wandb.attributes": json.dumps({"team": "a"})},
             start=1_003_000_000, dur=1_000, parent="c000000000000001"),
    ]  # fmt: skip


def odd_values() -> list[dict[str, Any]]:
    return [
        span("all types", {"s": "x", "b": True, "i": -5, "d": 1.5, "nan": "NaN",
                           "bytes": b"\x00\xff", "arr": [1, "two", 3.0], "kv": {"k.1": "v"},
                           "json.looking": "[not json", "big": 2**62},
             start=1_100_000_000, dur=1_000),
        span("langfuse times", {"langfuse.startTime": "2026-03-02T10:00:00.123456",
                                "langfuse.endTime": T0 + 10**12 + 7, "input": "x"},
             start=1_101_000_000, dur=1_000),
        span("missing parent", {"input": "x"}, start=1_102_000_000, dur=1_000,
             parent="dead00000000beef"),
        span("rounding", {"input": "x"}, start=1_103_999_500, dur=999_999_999),
        {"traceId": TRACE.upper(), "spanId": "E000000000000001", "parentSpanId": ROOT,
         "name": "uppercase ids and defaults", "startTimeUnixNano": str(T0 + 1_104_000_000),
         "endTimeUnixNano": str(T0 + 1_104_000_001)},
    ]  # fmt: skip


def main() -> None:
    root = span("invoke_agent conventions", {"gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "conv", "gen_ai.agent.id": "agt-1"},
                start=0, dur=2_000_000_000, parent=None, span_id=ROOT)  # fmt: skip
    odd = odd_values()
    odd[0]["attributes"][4]["value"] = {"doubleValue": "NaN"}
    lines = [
        line(genai() + older_genai()),
        line(openinference() + status_and_errors()),
        line(names() + conflicts()),
        line(wandb_spans(), {"wandb.entity": "acme", "wandb.project": "otel-wandb"}),
        line(odd),
        line([root]),
    ]
    out = Path(__file__).with_name("conventions.jsonl")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} lines to {out}")
    # a W&B run id, apart: tracecli's call checks still want the internal `entity:run` form
    run = span("in a run", {"wandb.wb_run_id": "run-7", "input": "x"}, start=1_200_000_000,
               dur=1_000, parent=None, span_id="d000000000000001")  # fmt: skip
    run_line = line([run], {"wandb.entity": "acme", "wandb.project": "otel-run"})
    Path(__file__).with_name("wb_run_id.jsonl").write_text(run_line + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
