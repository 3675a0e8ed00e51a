#!/usr/bin/env python3
"""Generate large, realistic Weave trace files for tracecli's benchmarks (deterministic).

    python bench/gen_traces.py OUT.jsonl [--calls N | --bytes 1G] [--shape flat] [--seed 7]

Each trace is an agent run: a root call with chat completions (OpenAI-shaped inputs and
outputs, token usage in the summary) and tool calls below it, two levels deep. A call's
end is written after its children's ends, so starts and ends interleave the way a
buffering logger writes them; about 3% of calls end in an exception. Shapes:

  flat      {"type": "start"|"end", ...}                    (the default)
  batch     {"mode": "start"|"end", "req": {"start"|"end": {...}}}
  requests  {"start": {...}} / {"end": {...}}
  complete  one CompletedCallSchemaForInsert per line, children before their parent

--open F leaves a fraction F of calls without an end (running calls). Modelled on
../shared/tools/gen_traces.py, written here so the benchmark needs nothing outside the repo.

--style says how the same records are written, the ways people's programs write them:

  compact   separators "," and ":", times with six-digit fractions and "Z" (orjson's way;
            the default, and what every earlier figure in bench/README.md was taken on)
  dumps     `json.dumps` defaults: ", " and ": ", whole-second times ("...T08:53:20Z")
  offsets   times with millisecond fractions and "+00:00", keys sorted (so "type" comes
            last, "attributes" first), every optional field present as null
  yaml      one YAML document per record (`---`), block style, as `yaml.safe_dump_all`
            writes them; the file's suffix should be .yaml
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import yaml

# libyaml's emitter when PyYAML has it: the same text, ten times sooner
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

_SENTENCE = (
    "the a model agent trace token latency answer question context retrieve summarize vector "
    "search document user assistant tool call plan step result error retry cache order refund "
    "shipping invoice account customer policy"
)
WORDS = _SENTENCE.split()
SIZES = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


STYLES = ("compact", "dumps", "offsets", "yaml")
# optional fields a writer may spell out as null (see --style offsets)
_START_NULLS = ("wb_user_id", "wb_run_id", "wb_run_step", "otel_dump")
_END_NULLS = ("wb_run_step_end",)


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def iso_seconds(t: float) -> str:
    return dt.datetime.fromtimestamp(int(t), dt.UTC).isoformat()[:-6] + "Z"


def iso_offset(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="milliseconds")


TIMES = {"compact": iso, "dumps": iso_seconds, "offsets": iso_offset, "yaml": iso}


class Gen:
    def __init__(
        self, seed: int, project: str, open_fraction: float, style: str = "compact"
    ) -> None:
        self.rng = random.Random(seed)
        self.iso = TIMES[style]
        self.nulls = style == "offsets"
        self.project = project
        self.open_fraction = open_fraction
        self.t = 1_772_000_000.0

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def text(self, n: int) -> str:
        choice = self.rng.choice
        return " ".join(choice(WORDS) for _ in range(n))

    def trace(self) -> list[tuple[str, dict[str, Any]]]:
        trace_id = self.uid()
        events: list[tuple[str, dict[str, Any]]] = []
        self.call("agent.run", None, trace_id, self.t, 0, events)
        self.t += self.rng.uniform(0.5, 5)
        return events

    def call(
        self,
        op: str,
        parent: str | None,
        trace_id: str,
        t: float,
        depth: int,
        events: list[tuple[str, dict[str, Any]]],
    ) -> float:
        rng = self.rng
        cid = self.uid()
        llm = op.startswith("openai")
        if llm:
            inputs: dict[str, Any] = {
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": self.text(20)},
                    {"role": "user", "content": self.text(rng.randint(10, 80))},
                ],
                "temperature": 0.2,
            }
        elif depth == 0:
            inputs = {"question": self.text(rng.randint(6, 20)), "customer_id": "cus_48213"}
        else:
            inputs = {"query": self.text(8), "k": 5}
        events.append(
            (
                "start",
                {
                    "project_id": self.project,
                    "id": cid,
                    "op_name": op,
                    "display_name": None,
                    "trace_id": trace_id,
                    "parent_id": parent,
                    "thread_id": None,
                    "turn_id": None,
                    "started_at": self.iso(t),
                    "attributes": {"env": "bench", "depth": depth},
                    "inputs": inputs,
                },
            )
        )
        t_end = t + rng.uniform(0.05, 2.0)
        if depth < 2:
            for _ in range(rng.randint(1, 3)):
                sub = rng.choice(["openai.chat.completions.create", "tool.search", "tool.fetch"])
                t_end = max(t_end, self.call(sub, cid, trace_id, t + 0.01, depth + 1, events))
                t_end += 0.01
        summary: dict[str, Any] = {}
        output: Any = {"result": self.text(rng.randint(5, 60))}
        if llm:
            p, c = rng.randint(50, 2000), rng.randint(5, 500)
            summary = {
                "usage": {
                    "gpt-4o-mini-2024-07-18": {
                        "prompt_tokens": p,
                        "completion_tokens": c,
                        "total_tokens": p + c,
                        "requests": 1,
                    }
                }
            }
            output = {
                "id": "chatcmpl-" + cid[:8],
                "object": "chat.completion",
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": self.text(c // 4 + 1)},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
            }
        exception = None
        if rng.random() < 0.03:
            exception, output = "TimeoutError: upstream took too long", None
        if rng.random() >= self.open_fraction:
            events.append(
                (
                    "end",
                    {
                        "project_id": self.project,
                        "id": cid,
                        "ended_at": self.iso(t_end),
                        "exception": exception,
                        "output": output,
                        "summary": summary,
                    },
                )
            )
        return t_end


def lines(
    shape: str, events: list[tuple[str, dict[str, Any]]], style: str = "compact"
) -> list[bytes]:
    if style == "offsets":
        events = [(k, _with_nulls(k, b)) for k, b in events]
    values = _values(shape, events)
    if style == "compact":
        dumps = orjson.dumps
        return [dumps(v) for v in values]
    if style == "dumps":
        return [json.dumps(v).encode() for v in values]
    if style == "offsets":
        sort = orjson.OPT_SORT_KEYS
        return [orjson.dumps(v, option=sort) for v in values]
    # yaml: each record its own document, ending in a newline already
    return [b"---\n" + yaml.dump(v, Dumper=_Dumper, sort_keys=False).encode() for v in values]


def _with_nulls(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    nulls = _START_NULLS if kind == "start" else _END_NULLS
    return {**body, **dict.fromkeys(nulls)}


def _values(shape: str, events: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    if shape == "flat":
        return [{"type": k, **b} for k, b in events]
    if shape == "batch":
        return [{"mode": k, "req": {k: b}} for k, b in events]
    if shape == "requests":
        return [{k: b} for k, b in events]
    starts = {b["id"]: b for k, b in events if k == "start"}
    out = []
    for k, b in events:
        if k == "end":
            out.append({**starts[b["id"]], **{f: v for f, v in b.items() if f != "id"}})
    return out


def parse_size(text: str) -> int:
    text = text.strip().lower().rstrip("b")
    factor = SIZES.get(text[-1:], 1)
    return int(float(text.rstrip("kmg")) * factor)


def generate(
    out: Path,
    calls: int | None = None,
    size: int | None = None,
    shape: str = "flat",
    seed: int = 7,
    project: str = "acme/agents",
    open_fraction: float = 0.0,
    style: str = "compact",
) -> tuple[int, int]:
    """Write the file; (records, calls) written. Stops at `calls` calls or `size` bytes."""
    gen = Gen(seed, project, open_fraction, style)
    n_calls = n_records = written = 0
    with out.open("wb") as f:
        while (calls is None or n_calls < calls) and (size is None or written < size):
            events = gen.trace()
            chunk = lines(shape, events, style)
            data = b"".join(chunk) if style == "yaml" else b"\n".join(chunk) + b"\n"
            f.write(data)
            written += len(data)
            n_records += len(chunk)
            n_calls += sum(1 for k, _ in events if k == "start")
    return n_records, n_calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--calls", type=int, default=None, help="about this many calls")
    ap.add_argument("--bytes", dest="size", default=None, help="about this size: 200M, 1G")
    ap.add_argument("--shape", choices=["flat", "batch", "requests", "complete"], default="flat")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--project", default="acme/agents")
    ap.add_argument("--open", type=float, default=0.0, help="fraction of calls left running")
    ap.add_argument("--style", choices=STYLES, default="compact", help="how records are written")
    a = ap.parse_args()
    if a.calls is None and a.size is None:
        a.calls = 10_000
    size = parse_size(a.size) if a.size else None
    records, calls = generate(a.out, a.calls, size, a.shape, a.seed, a.project, a.open, a.style)
    print(f"{a.out}: {records} records, {calls} calls", file=sys.stderr)


if __name__ == "__main__":
    main()
