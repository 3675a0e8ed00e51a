"""The calls the serve conformance tests store in both servers (serve and weave-ref), shared
with the export round-trip tests: completed calls and a running one covering what the
queries ask about (JSON fields of each type, a 65-bit integer, an op reference, a run,
threads and turns, an OpenTelemetry dump)."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

P = "conf/queries"
T0 = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)
WIDE = 2**64


def ts(seconds: float) -> str:
    return (T0 + datetime.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def make_call(n: int, op: str, *, latency_ms: float | None = 10.0, **fields: Any) -> dict[str, Any]:
    start = float(n)
    call: dict[str, Any] = {
        "project_id": P,
        "id": str(uuid.UUID(int=0x0190_0000_0000_7000_8000_0000_0000_0000 + n)),
        "trace_id": str(uuid.UUID(int=0x0190_0000_0000_7000_9000_0000_0000_0000 + n)),
        "op_name": op,
        "started_at": ts(start),
        "attributes": {},
        "inputs": {},
        "output": None,
        "summary": {},
    }
    if latency_ms is not None:
        call["ended_at"] = ts(start + latency_ms / 1000)
    call.update(fields)
    return call


def usage(total: int) -> dict[str, Any]:
    return {
        "usage": {"gpt-4o": {"requests": 1, "prompt_tokens": total - 20, "total_tokens": total}}
    }


def dataset() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(completed calls, starts of running calls) covering what the queries ask about."""
    root = make_call(
        0,
        "llm.chat",
        latency_ms=4.5,
        inputs={"x": 3, "q": "hello"},
        output={"correct": True, "text": "Hi"},
        summary=usage(150) | {"status_counts": {"success": 1, "error": 1}},
    )
    calls = [
        root,
        make_call(
            1,
            "llm.chat",
            latency_ms=5.2,
            inputs={"x": "3", "q": "Hello World"},
            output={"correct": False},
            summary=usage(80),
        ),
        make_call(
            2,
            "tool.search",
            latency_ms=5.0,
            inputs={"x": 10, "q": "World"},
            output={"correct": "true"},
        ),
        make_call(
            3,
            "tool.search",
            latency_ms=6.0,
            inputs={"x": 2.5},
            exception="ValueError: boom",
            parent_id=root["id"],
            trace_id=root["trace_id"],
        ),
        make_call(
            4,
            "agent.run",
            latency_ms=120.0,
            inputs={"x": True, "nested": {"list": [1, 2, 3]}},
            output="done",
            display_name="Named",
            wb_run_id=f"{P}/run-1",
            wb_run_step=2,
            thread_id="t1",
        ),
        make_call(
            5,
            "weave:///conf/queries/op/planner:abc123",
            inputs={"x": WIDE, "q": "a.b"},
            output=WIDE,
            thread_id="t1",
            turn_id=str(uuid.UUID(int=0x0190_0000_0000_7000_8000_0000_0000_0005)),
        ),
        make_call(
            6,
            "eval.score",
            latency_ms=0.4,
            inputs={"x": -1},
            output={"score": 0.75},
            display_name="",
        ),
        make_call(
            7,
            "otel.span",
            inputs={"x": "abc"},
            attributes={"env": "prod"},
            otel_dump={"name": "span", "attributes": {"k": 1}},
        ),
        make_call(8, "llm.chat", latency_ms=5.0000004, inputs={"x": 1e3}, output={"correct": True}),
    ]
    running = make_call(9, "agent.run", latency_ms=None, inputs={"x": 7})
    for key in ("ended_at", "output", "summary"):
        running.pop(key, None)
    return calls, [running]
