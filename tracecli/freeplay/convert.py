"""One finished Weave call → one Freeplay record (a completion, or a trace).

How an LLM call is recognised (first match wins):
1. Weave's own op kind: `attributes.weave.kind` (or `attributes.kind`) is "llm".
2. The op name (the `name` of a `weave:///.../op/name:digest` ref) is a known LLM client
   method: `openai.chat.completions.create`/`.parse`, `openai.completions.create`,
   `openai.responses.create`,
   `anthropic.Messages.create`/`.stream` (and the Async* variants), `litellm.completion`/
   `acompletion`, `google.genai...generate_content`, `mistralai...chat.complete`,
   `groq...chat.completions.create`, ... (`LLM_OP` below).
3. The inputs hold a `messages` list of role objects *and* a `model` string: whatever
   wraps it, that is a chat-completion request.
Anything else (agents, tools, retrievers) becomes a Freeplay trace: `kind: "tool"` when
Weave's op kind says "tool", the op name has a "tool" word in it, or an LLM call converted
earlier in the stream declared a tool of that name; `agent_name` (the op name) for an op
of kind "agent", an op named "...agent...", or a root call. `name` is the call's
display name, else (not for agents) its op name.

An LLM call becomes a completion: messages = the request's messages (Anthropic `system`
first, as a system message, the way the Freeplay SDK records Anthropic calls; Gemini
`contents` as Vertex messages; OpenAI Responses `instructions` + `input`) + the response
(OpenAI `choices[0].message`, Anthropic `{role: assistant, content: blocks}`, Gemini
`candidates[0].content`, the Responses API's `output` items, or a plain string output);
`call_info` has the model, the provider (from the op name, else the model), start/end in
epoch seconds, the request's scalar and object parameters (lists are dropped: Freeplay
refuses them), and usage from `summary.usage` (else the response's own usage). An LLM
call that ended in an exception has no response to record: it becomes a trace holding the
exception, with a warning.

Ids: a Weave id that is a UUID v4 is kept, any other is mapped to one deterministically
(`freeplay_ids.as_uuid4`). The session is the call's thread_id, else its trace_id; a
completion's `completion_id` and a trace's `trace_id` come from the call id, and `parent_id`
from the call's parent id, so the tree survives: completions hang under the trace of the
agent call that made them, and tools under their agent.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from tracecli.check.facts import timestamp
from tracecli.freeplay.ids import as_uuid4
from tracecli.freeplay.providers import (
    ROUTED_PREFIXES,
    json_text,
    llm_parameters,
    model_of,
    output_schema_of,
    provider,
    request_messages,
    response_messages,
    tool_schema,
    usage,
)

LLM_OP = re.compile(
    r"""^(?:
      openai\.(?:beta\.)?chat\.completions\.(?:create|parse|stream)
    | openai\.completions\.create
    | openai\.responses\.(?:create|parse|stream)
    | (?:Async)?OpenAI\.chat\.completions\.create
    | anthropic\.(?:Async)?Messages\.(?:create|stream)
    | anthropic\.(?:beta\.)?(?:Async)?Messages\.(?:create|stream)
    | litellm\.a?(?:completion|text_completion)
    | google\.genai\.(?:models\.)?(?:Async)?Models\.generate_content(?:_stream)?
    | vertexai\..*GenerativeModel\.generate_content
    | google\.generativeai\..*generate_content
    | mistralai\..*chat\.(?:complete|stream)(?:_async)?
    | groq\..*chat\.completions\.create
    | cerebras\..*chat\.completions\.create
    | together\..*chat\.completions\.create
    | cohere\..*chat(?:_stream)?
    )$""",
    re.VERBOSE,
)


def short_op_name(op_name: str) -> str:
    """`weave:///entity/project/op/name:digest` → `name`; plain names unchanged."""
    if op_name.startswith("weave:"):
        tail = op_name.rsplit("/op/", 1)[-1] if "/op/" in op_name else op_name.rsplit("/", 1)[-1]
        return tail.split(":", 1)[0]
    return op_name


def _weave_kind(call: dict[str, Any]) -> str | None:
    attrs = call.get("attributes")
    if not isinstance(attrs, dict):
        return None
    weave = attrs.get("weave")
    kind = weave.get("kind") if isinstance(weave, dict) else None
    kind = kind or attrs.get("kind")
    return kind if isinstance(kind, str) else None


def is_llm_call(call: dict[str, Any]) -> bool:
    kind = _weave_kind(call)
    if kind == "llm":
        return True
    if kind in ("tool", "agent"):
        return False
    if LLM_OP.match(short_op_name(str(call.get("op_name", "")))):
        return True
    inputs = call.get("inputs")
    if not isinstance(inputs, dict):
        return False
    msgs = inputs.get("messages")
    return (
        isinstance(inputs.get("model"), str)
        and isinstance(msgs, list)
        and bool(msgs)
        and all(isinstance(m, dict) and "role" in m for m in msgs)
    )


def session_of(call: dict[str, Any]) -> str:
    key = call.get("thread_id") or call.get("trace_id") or call.get("id")
    return as_uuid4(str(key))


def convert_call(
    call: dict[str, Any], tool_names: ToolNames | None = None
) -> tuple[dict[str, Any], list[str]]:
    """(Freeplay record, warnings) for one finished call (start and end merged).

    `tool_names` collects the tools the LLM calls converted so far declared: a later call of
    an op by that name is a tool (`kind: "tool"`), as Freeplay's agent views want it."""
    if is_llm_call(call):
        if tool_names is not None:
            tool_names.learn(call.get("inputs"))
        if call.get("output") is None and call.get("exception"):
            record = trace_record(call, tool_names)
            return record, [
                "LLM call ended in an exception with no response: recorded as a trace "
                "(a Freeplay completion needs the response)"
            ]
        return completion_record(call)
    return trace_record(call, tool_names), []


class ToolNames:
    """Names of the tools LLM requests declared (bounded: a name is a few bytes, and past
    `limit` new names are ignored)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.names: set[str] = set()
        self.limit = limit

    def learn(self, inputs: Any) -> None:
        tools = inputs.get("tools") if isinstance(inputs, dict) else None
        if not isinstance(tools, list):
            return
        for tool in tools:
            if not isinstance(tool, dict) or len(self.names) >= self.limit:
                continue
            fn = f if isinstance(f := tool.get("function"), dict) else tool
            name = fn.get("name")
            if isinstance(name, str):
                self.names.add(name)

    def __contains__(self, name: object) -> bool:
        return name in self.names


# --------------------------------------------------------------------------- completions
def completion_record(call: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    warnings: list[str] = []
    inputs = call.get("inputs") if isinstance(call.get("inputs"), dict) else {}
    assert isinstance(inputs, dict)
    output = call.get("output")
    messages = request_messages(inputs)
    response = response_messages(output)
    if response is None:
        response = [{"role": "assistant", "content": json_text(output)}]
        warnings.append("response format not recognised: recorded as JSON text")
    messages.extend(response)
    rec: dict[str, Any] = {"session_id": session_of(call), "messages": messages}
    tools = tool_schema(inputs.get("tools"))
    if tools:
        rec["tool_schema"] = tools
    schema = output_schema_of(inputs.get("response_format"))
    if schema is not None:
        rec["output_schema"] = schema
    if call.get("parent_id"):
        rec["parent_id"] = as_uuid4(str(call["parent_id"]))
    model = model_of(inputs, output, call.get("summary"))
    vendor = provider(short_op_name(str(call.get("op_name", ""))), model)
    if model and "/" in model and model.split("/", 1)[0].lower() in ROUTED_PREFIXES:
        model = model.split("/", 1)[1]  # litellm's "anthropic/claude-…": the provider is known
    info: dict[str, Any] = {
        "start_time": epoch_seconds(call.get("started_at")),
        "end_time": epoch_seconds(call.get("ended_at")),
        "model": model,
        "provider": vendor,
        "llm_parameters": llm_parameters(inputs) or None,
        "usage": usage(call.get("summary"), output),
    }
    rec["call_info"] = {k: v for k, v in info.items() if v is not None}
    rec["completion_id"] = as_uuid4(str(call["id"]))
    return rec, warnings


# --------------------------------------------------------------------------- traces
def trace_record(call: dict[str, Any], tool_names: ToolNames | None = None) -> dict[str, Any]:
    op = short_op_name(str(call.get("op_name", "")))
    name = call.get("display_name") or op
    kind = _weave_kind(call)
    is_tool = kind == "tool" or (
        kind is None
        and (_looks_like(name, "tool") or (tool_names is not None and op in tool_names))
    )
    is_agent = not is_tool and (
        kind == "agent"
        or (kind is None and (_looks_like(name, "agent") or not call.get("parent_id")))
    )
    rec: dict[str, Any] = {"session_id": session_of(call), "trace_id": as_uuid4(str(call["id"]))}
    if is_agent:
        rec["agent_name"] = op  # stable across runs: what Freeplay's agent views group by
    rec["input"] = trace_input(call.get("inputs"), unwrap=is_agent)
    rec["output"] = call.get("output")
    if call.get("parent_id"):
        rec["parent_id"] = as_uuid4(str(call["parent_id"]))
    meta = custom_metadata(call.get("attributes"))
    if call.get("exception"):
        meta["exception"] = str(call["exception"])
    if meta:
        rec["custom_metadata"] = meta
    if is_tool:
        rec["kind"] = "tool"
    if not is_agent or call.get("display_name"):
        rec["name"] = name  # an agent run's own title, when Weave has one
    rec["start_time"] = iso_time(call.get("started_at"))
    rec["end_time"] = iso_time(call.get("ended_at"))
    return {k: v for k, v in rec.items() if v is not None or k == "output"}


def _looks_like(name: str, word: str) -> bool:
    return word in (p.lower() for p in re.split(r"[._\-/\s:]+", name))


def trace_input(inputs: Any, unwrap: bool = False) -> Any:
    """The call's arguments (without `self`). An agent's single argument is given as itself:
    Freeplay's agent views show a trace's input as the user's request (the SDK's traces take
    it as it is, e.g. the question string); a tool keeps its named arguments."""
    if not isinstance(inputs, dict):
        return inputs if inputs is not None else {}
    args = {k: v for k, v in inputs.items() if k != "self"}
    if unwrap and len(args) == 1:
        (value,) = args.values()
        if value is not None:
            return value
    return args


def custom_metadata(attributes: Any) -> dict[str, Any]:
    """The call's attributes as Freeplay metadata: scalars, nested keys dotted, lists as JSON
    text; Weave's own `weave` block (client versions) left out."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, str | int | float):
            out[prefix] = value
        elif isinstance(value, list):
            out[prefix] = json_text(value)

    if isinstance(attributes, dict):
        walk("", {k: v for k, v in attributes.items() if k != "weave"})
    return out


# --------------------------------------------------------------------------- helpers
def parse_time(value: Any) -> datetime | None:
    """A Weave call time as weave's server reads it; one without a zone is UTC.

    ISO text takes `fromisoformat`; anything else weave takes as a time (epoch seconds as
    a number or a string, the forms only pydantic reads) is read as weave reads it
    (`check.facts.timestamp`), so such a call keeps its time on Freeplay too."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            return _as_weave_reads(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return _as_weave_reads(value)
    else:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _as_weave_reads(value: Any) -> datetime | None:
    seconds = timestamp(value)
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def epoch_seconds(value: Any) -> float | None:
    dt = parse_time(value)
    return dt.timestamp() if dt is not None else None


def iso_time(value: Any) -> str | None:
    """ISO 8601 in UTC with an explicit offset, as the SDK's `datetime.isoformat()` writes."""
    dt = parse_time(value)
    return dt.astimezone(UTC).isoformat() if dt is not None else None
