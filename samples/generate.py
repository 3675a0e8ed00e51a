#!/usr/bin/env python3
"""Write the sample trace files in samples/ (deterministic: same bytes on every run).

    python samples/generate.py            # rewrites samples/weave/* and samples/freeplay/*

The samples are what a support agent would log: a root call per question, OpenAI chat
completions (tool calls, usage in the summary) and the tools they call, in each record
shape tracecli reads. Every file has its own call and trace ids (seeded per file), because
`tracecli upload samples/weave` sends them all together. samples/invalid/ is written by
hand (and by `invalid.py` beside this script), not here.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
PROJECT = "acme/agents"
MODEL = "gpt-4o-mini"
MODEL_SNAPSHOT = "gpt-4o-mini-2024-07-18"
ATTRIBUTES = {
    "weave": {
        "client_version": "0.52.42",
        "source": "python-sdk",
        "os_name": "Linux",
        "sys_version": "3.11.7",
    },
    "env": "production",
    "app_version": "2.4.1",
}
SYSTEM = (
    "You are Acme's support agent. Answer briefly. Use the tools to look up orders and "
    "the help center; never guess an order's status."
)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Status and shipping details of an order",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search_help_center",
            "description": "Search the help center articles",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}, "k": {"type": "integer"}},
                "required": ["query"],
            },
        },
    },
]
QUESTIONS = [
    (
        "Where is my order A-1042? It was due yesterday.",
        "lookup_order",
        {"order_id": "A-1042"},
        {"order_id": "A-1042", "status": "in_transit", "carrier": "UPS", "eta": "2026-03-04"},
        "Your order A-1042 is on its way with UPS and should arrive on March 4.",
    ),
    (
        "How do I return a pair of shoes that don't fit?",
        "search_help_center",
        {"query": "return shoes wrong size", "k": 3},
        {
            "results": [
                {"title": "Returns and exchanges", "url": "https://help.acme.test/returns"},
                {"title": "Size guide", "url": "https://help.acme.test/sizes"},
            ]
        },
        "You can return unworn shoes within 30 days: start a return from Orders, print the "
        "label and drop the parcel at any UPS point. Exchanges for another size are free.",
    ),
    (
        "Can I change the delivery address of order B-2210?",
        "lookup_order",
        {"order_id": "B-2210"},
        {"order_id": "B-2210", "status": "processing", "address_change_allowed": True},
        "Yes: order B-2210 has not shipped yet, so you can change the address under "
        "Orders > B-2210 > Edit address until it ships.",
    ),
    (
        "Is the Trailblazer jacket waterproof?",
        "search_help_center",
        {"query": "Trailblazer jacket waterproof rating", "k": 3},
        {"results": [{"title": "Trailblazer jacket", "url": "https://help.acme.test/trailblazer"}]},
        "Yes, the Trailblazer is waterproof to 10,000 mm with taped seams.",
    ),
]


class _PlainDumper(yaml.SafeDumper):
    """No &anchors / *aliases for the objects the records share: write each out."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def iso(t: float, zulu: bool = True) -> str:
    text = dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="microseconds")
    return text.replace("+00:00", "Z") if zulu else text


class Run:
    """One agent run: a root call, two chat completions and a tool call in between."""

    def __init__(self, rng: random.Random, t0: float, q: int, project: str = PROJECT) -> None:
        self.rng = rng
        self.t = t0
        self.project = project
        self.trace_id = uid(rng)
        self.thread_id = f"support-{uid(rng)[:8]}"
        self.events: list[tuple[str, dict[str, Any]]] = []  # in the order a logger writes
        self.llm_calls: list[dict[str, Any]] = []  # for the Freeplay file
        self.question = QUESTIONS[q % len(QUESTIONS)]

    def tick(self, lo: float, hi: float) -> float:
        self.t += self.rng.uniform(lo, hi)
        return self.t

    def start(
        self, op: str, parent: str | None, inputs: dict[str, Any], display: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "project_id": self.project,
            "id": uid(self.rng),
            "op_name": op,
            "display_name": display,
            "trace_id": self.trace_id,
            "parent_id": parent,
            "thread_id": self.thread_id,
            "turn_id": None,
            "started_at": iso(self.tick(0.002, 0.02)),
            "attributes": ATTRIBUTES,
            "inputs": inputs,
        }
        self.events.append(("start", body))
        return body

    def end(
        self,
        start: dict[str, Any],
        output: Any,
        summary: dict[str, Any],
        exception: str | None = None,
        took: tuple[float, float] = (0.05, 0.3),
    ) -> dict[str, Any]:
        body = {
            "project_id": self.project,
            "id": start["id"],
            "ended_at": iso(self.tick(*took)),
            "exception": exception,
            "output": output,
            "summary": summary,
        }
        self.events.append(("end", body))
        return body

    def chat(self, parent: str, messages: list[dict[str, Any]], reply: dict[str, Any]) -> int:
        inputs = {"model": MODEL, "messages": messages, "tools": TOOLS, "temperature": 0.2}
        s = self.start("openai.chat.completions.create", parent, inputs)
        t_start = self.t
        prompt = 40 * len(messages) + self.rng.randint(150, 400)
        completion = self.rng.randint(12, 90)
        usage = {"prompt_tokens": prompt, "completion_tokens": completion}
        output = {
            "id": "chatcmpl-" + uid(self.rng).replace("-", "")[:24],
            "object": "chat.completion",
            "created": int(self.t),
            "model": MODEL_SNAPSHOT,
            "choices": [
                {
                    "index": 0,
                    "message": reply,
                    "finish_reason": "tool_calls" if reply.get("tool_calls") else "stop",
                }
            ],
            "usage": {**usage, "total_tokens": prompt + completion},
            "system_fingerprint": "fp_0ba0d124f1",
        }
        summary = {
            "usage": {MODEL_SNAPSHOT: {**usage, "total_tokens": prompt + completion, "requests": 1}}
        }
        self.end(s, output, summary, took=(0.4, 1.6))
        self.llm_calls.append(
            {
                "messages": [*messages, reply],
                "start": t_start,
                "end": self.t,
                "usage": usage,
                "trace_id": self.trace_id,
            }
        )
        return prompt + completion

    def play(self, finish: bool = True, tool_error: bool = False) -> None:
        question, tool, args, result, answer = self.question
        root = self.start(
            "support_agent.run",
            None,
            {"question": question, "customer_id": f"cus_{self.rng.randint(10000, 99999)}"},
            display=f"Support: {question}",
        )
        root["turn_id"] = root["id"]
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
        call_id = "call_" + uid(self.rng).replace("-", "")[:24]
        tool_call = {
            "id": call_id,
            "type": "function",
            "function": {"name": tool, "arguments": json.dumps(args)},
        }
        tokens = self.chat(
            root["id"], messages, {"role": "assistant", "content": None, "tool_calls": [tool_call]}
        )
        messages = [*messages, {"role": "assistant", "content": None, "tool_calls": [tool_call]}]
        t = self.start(tool, root["id"], args)
        if tool_error:
            self.end(t, None, {}, exception="TimeoutError: order service did not answer in 5s")
            result = {"error": "order service unavailable"}
        else:
            self.end(t, result, {})
        messages.append({"role": "tool", "tool_call_id": call_id, "content": json.dumps(result)})
        if tool_error:
            answer = "Sorry, I can't reach the order system right now. Please try again shortly."
        tokens += self.chat(root["id"], messages, {"role": "assistant", "content": answer})
        if finish:
            summary = {"usage": {MODEL_SNAPSHOT: {"total_tokens": tokens, "requests": 2}}}
            self.end(root, {"answer": answer}, summary, took=(0.01, 0.05))


def runs(seed: int, n: int, t0: float, **kw: Any) -> list[Run]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        r = Run(rng, t0 + i * 97.3, seed + i, **kw)
        out.append(r)
    return out


def dump_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def completed(run: Run) -> list[dict[str, Any]]:
    """The run's calls as CompletedCallSchemaForInsert, in the order they finished."""
    starts = {b["id"]: b for k, b in run.events if k == "start"}
    out = []
    for kind, body in run.events:
        if kind == "end":
            s = starts[body["id"]]
            out.append({**s, **{k: v for k, v in body.items() if k not in ("project_id", "id")}})
    return out


def main() -> None:
    t0 = dt.datetime(2026, 3, 2, 9, 14, 5, tzinfo=dt.UTC).timestamp()

    # flat {"type": "start"|"end"}: two finished runs, one with a failing tool, and a
    # third still running (its root has no end yet: validate warns "running call")
    flat = runs(101, 3, t0)
    flat[0].play()
    flat[1].play(tool_error=True)
    flat[2].play(finish=False)
    dump_jsonl(
        HERE / "weave/agent_flat.jsonl",
        [{"type": k, **b} for r in flat for k, b in r.events],
    )

    # upsert_batch items {"mode", "req": {"start"|"end": ...}}
    batch = runs(202, 2, t0 + 600)
    for r in batch:
        r.play()
    dump_jsonl(
        HERE / "weave/agent_batch.jsonl",
        [{"mode": k, "req": {k: b}} for r in batch for k, b in r.events],
    )

    # request bodies {"start": ...} / {"end": ...}, times with +00:00 as the SDK writes them
    req = runs(303, 2, t0 + 1200)
    for r in req:
        r.play()
        for _, b in r.events:
            for key in ("started_at", "ended_at"):
                if key in b:
                    b[key] = b[key].replace("Z", "+00:00")
    dump_jsonl(HERE / "weave/agent_requests.jsonl", [{k: b} for r in req for k, b in r.events])

    # completed calls, children first (as a buffering logger writes them); one run in a
    # second project, as an eval job would log it
    done = runs(404, 2, t0 + 1800)
    done.append(Run(random.Random(405), t0 + 2000, 3, project="acme/evals"))
    for r in done:
        r.play()
    dump_jsonl(HERE / "weave/agent_complete.jsonl", [c for r in done for c in completed(r)])

    # YAML: a list of flat records, as someone would write them by hand
    yml = runs(505, 1, t0 + 2400)
    yml[0].play()
    text = yaml.dump(
        [{"type": k, **b} for k, b in yml[0].events],
        Dumper=_PlainDumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )
    (HERE / "weave/agent.yaml").write_text(
        "# One support-agent run in the flat shape ({type: start|end, ...}).\n" + text,
        encoding="utf-8",
    )

    # Freeplay: the chat completions of two more runs, as the SDK would record them
    fp = runs(606, 2, t0 + 3000)
    rng = random.Random(607)
    records = []
    for r in fp:
        r.play()
        session_id = uid(rng)
        for call in r.llm_calls:
            records.append(
                {
                    "session_id": session_id,
                    "messages": call["messages"],
                    "inputs": {"question": call["messages"][1]["content"]},
                    "tool_schema": TOOLS,
                    "output_schema": None,
                    "session_info": {"custom_metadata": {"channel": "chat", "tier": "pro"}},
                    "parent_id": None,
                    "call_info": {
                        "start_time": round(call["start"], 3),
                        "end_time": round(call["end"], 3),
                        "model": MODEL,
                        "provider": "openai",
                        "provider_info": None,
                        "llm_parameters": {"temperature": 0.2},
                        "api_style": None,
                        "usage": call["usage"],
                    },
                    "completion_id": uid(rng),
                }
            )
    dump_jsonl(HERE / "freeplay/completions.jsonl", records)


if __name__ == "__main__":
    main()
