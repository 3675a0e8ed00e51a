#!/usr/bin/env python3
"""Write samples/invalid/: one small trace file per kind of problem validate reports.

    python samples/make_invalid.py
    UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py   # then review the .expected.txt

Each file holds a few valid records around the broken one, so the problem is not on line
1 and the follow-on rules (pairing, parents) get exercised. The expected output of
`tracecli validate samples/invalid/<file>` sits beside it as `<stem>.expected.txt` and is
checked by tests/test_golden.py.
"""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "invalid"

P = "acme/agents"
ROOT = "1b7c3f1e-4a8e-4c2d-9f3a-5e6b7c8d9e01"
CHILD = "2c8d4a2f-5b9f-4d3e-8a4b-6f7c8d9e0f12"
OTHER = "3d9e5b3a-6c0a-4e4f-9b5c-7a8d9e0f1a23"
TRACE = "4e0f6c4b-7d1b-4f5a-8c6d-8b9e0f1a2b34"
TRACE2 = "5f1a7d5c-8e2c-4a6b-9d7e-9c0f1a2b3c45"


def start(cid: str = ROOT, parent: str | None = None, **kw: Any) -> dict[str, Any]:
    rec = {
        "type": "start",
        "project_id": P,
        "id": cid,
        "op_name": "support_agent.run" if parent is None else "openai.chat.completions.create",
        "trace_id": TRACE,
        "parent_id": parent,
        "started_at": "2026-03-02T09:14:05.000000Z",
        "attributes": {"env": "production"},
        "inputs": {"question": "Where is my order A-1042?"},
    }
    rec.update(kw)
    return rec


def end(cid: str = ROOT, **kw: Any) -> dict[str, Any]:
    rec = {
        "type": "end",
        "project_id": P,
        "id": cid,
        "ended_at": "2026-03-02T09:14:07.250000Z",
        "exception": None,
        "output": {"answer": "It is on its way."},
        "summary": {},
    }
    rec.update(kw)
    return rec


def llm_end(cid: str = CHILD, **kw: Any) -> dict[str, Any]:
    usage = {"prompt_tokens": 412, "completion_tokens": 38, "total_tokens": 450, "requests": 1}
    return end(
        cid,
        ended_at="2026-03-02T09:14:06.100000Z",
        output={"choices": [{"message": {"role": "assistant", "content": "On its way."}}]},
        summary={"usage": {"gpt-4o-mini": usage}},
        **kw,
    )


def line(rec: Any) -> bytes:
    return json.dumps(rec).encode() + b"\n"


def jsonl(*recs: Any) -> bytes:
    return b"".join(r if isinstance(r, bytes) else line(r) for r in recs)


def call(cid: str = ROOT, **kw: Any) -> bytes:
    return jsonl(start(cid, **kw), end(cid))


def files() -> dict[str, bytes]:
    broken_end = line(end())[:-40] + b"\n"  # a record cut off mid-way
    deep = line(start(OTHER, inputs={"x": "DEEP"})).replace(
        b'"DEEP"', b"[" * 1200 + b'"bottom"' + b"]" * 1200
    )
    usage_bad = llm_end()
    usage_bad["summary"]["usage"]["gpt-4o-mini"]["prompt_tokens"] = "many"
    mismatch_child = start(CHILD, ROOT, trace_id=TRACE2, started_at="2026-03-02T09:14:05.2Z")
    ids = [f"{i:08x}-4a8e-4c2d-9f3a-5e6b7c8d9e01" for i in range(1, 41)]
    gz = gzip.compress(b"".join(call(i) for i in ids), mtime=0)
    batch_item = {"mode": "start", "req": {"start": _body(start()), "priority": "high"}}
    return {
        "bad_json.jsonl": jsonl(start(), broken_end, call(OTHER)),
        "trailing_comma.jsonl": jsonl(call(), b'{"type": "start", "project_id": "acme/agents",}\n'),
        "invalid_utf8.jsonl": jsonl(
            call(),
            line(start(OTHER, inputs={"question": "caf\u00e9"})).replace(b"caf\\u00e9", b"caf\xe9"),
            end(OTHER),
        ),
        "binary.jsonl": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)),
        "bad_id_format.jsonl": jsonl(
            start(ROOT.upper()), end(ROOT.upper()), call(OTHER, trace_id="trace-1")
        ),
        "missing_field.jsonl": jsonl(
            call(),
            {k: v for k, v in start(OTHER).items() if k not in ("op_name", "started_at")},
            end(OTHER),
        ),
        "wrong_type.jsonl": jsonl(
            start(),
            start(CHILD, ROOT, attributes=["env", "production"]),
            usage_bad,
            end(),
        ),
        "duplicate_id.jsonl": jsonl(call(), call()),
        "ended_before_started.jsonl": jsonl(start(), end(ended_at="2026-03-02T09:14:04.5Z")),
        "trace_mismatch.jsonl": jsonl(start(), mismatch_child, llm_end(), end()),
        "end_without_start.jsonl": jsonl(call(), end(OTHER)),
        "running_call.jsonl": jsonl(start(), start(CHILD, ROOT), llm_end()),
        "missing_parent.jsonl": jsonl(start(CHILD, OTHER), llm_end()),
        "unknown_shape.jsonl": jsonl(
            call(),
            {"event": "llm_call", "model": "gpt-4o-mini", "latency_ms": 840},
            [start(OTHER)],
            "just a string",
            {"type": "finish", "id": OTHER},
        ),
        "unknown_field.jsonl": jsonl(start(), end(ouptut={"answer": "It is on its way."})),
        "bad_project_id.jsonl": jsonl(start(project_id="acme-agents"), end()),
        "op_name_too_long.jsonl": jsonl(start(op_name="agent." + "very_long_step_" * 10), end()),
        "status_counts_key.jsonl": jsonl(start(), end(summary={"status_counts": {"ok": 3}})),
        "refused_no_followon.jsonl": jsonl(start(started_at="yesterday"), end()),
        "bad_reference.jsonl": jsonl(start(inputs={"doc": "weave:///policy-doc"}), end()),
        "wide_integer.jsonl": jsonl(start(inputs={"seed": 2**70}), end()),
        "batch_extra_key.jsonl": jsonl(batch_item, {"mode": "end", "req": {"end": _body(end())}}),
        "deeply_nested.jsonl": jsonl(call(), deep, end(OTHER)),
        # weave's server stores these, but not as written or not so it can read them back
        "odd_numbers.jsonl": jsonl(
            start(inputs={"nan": float("nan"), "inf": float("inf"), "big": "BIG", "z": -0.0}),
            end(),
            start(OTHER, wb_run_step=float("nan")),
            end(OTHER),
        ).replace(b'"BIG"', b"1e400"),
        "lone_surrogate.jsonl": jsonl(start(inputs={"question": "\ud800?"}), end()),
        "no_time_zone.jsonl": jsonl(
            start(started_at="2026-03-02T09:14:05"),
            end(),
            start(OTHER, started_at="2026-03-02"),
            end(OTHER, ended_at="2026-03-02T09:14:07.5"),
        ),
        "nested_past_read_back.jsonl": jsonl(
            line(start(inputs={"x": "DEEP"})).replace(b'"DEEP"', b"[" * 300 + b"1" + b"]" * 300),
            end(),
            line(start(OTHER, inputs={"x": "DEEP"})).replace(
                b'"DEEP"', b"[" * 600 + b"1" + b"]" * 600
            ),
            end(OTHER),
        ),
        "sdk_fields.jsonl": jsonl(
            start(wb_run_id="acme/agents/1mzq0k2x", wb_run_step=0),
            end(trace_id=TRACE, is_eval=False, wb_run_step_end=-1),
            start(OTHER, op_name="", display_name="", wb_run_id="agents:1mzq0k2x"),
            end(OTHER),
        ),
        "truncated.jsonl.gz": gz[: len(gz) - 30],
        "yaml_syntax.yaml": _yaml_ok()
        + b"- type: end\n  id: [unclosed\n  project_id: acme/agents\n",
        "yaml_python_tag.yaml": _yaml_ok() + b"- !!python/object/apply:os.system [echo pwned]\n",
    }


def _body(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in copy.deepcopy(rec).items() if k != "type"}


def _yaml_ok() -> bytes:
    return (
        b"# a valid call, then the problem\n"
        b"- type: start\n"
        b"  project_id: acme/agents\n"
        b"  id: " + ROOT.encode() + b"\n"
        b"  op_name: support_agent.run\n"
        b"  trace_id: " + TRACE.encode() + b"\n"
        b'  started_at: "2026-03-02T09:14:05Z"\n'
        b"  attributes: {}\n"
        b'  inputs: {question: "Where is my order?"}\n'
        b"- type: end\n"
        b"  project_id: acme/agents\n"
        b"  id: " + ROOT.encode() + b"\n"
        b'  ended_at: "2026-03-02T09:14:07Z"\n'
        b"  summary: {}\n"
    )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in files().items():
        (OUT / name).write_bytes(data)


if __name__ == "__main__":
    main()
