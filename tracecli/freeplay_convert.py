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
Anything else (agents, tools, retrievers) becomes a Freeplay trace.

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

import orjson

from tracecli.freeplay_ids import as_uuid4
from tracecli.schema.freeplay_messages import check_tool_schema

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
_PROVIDER_PREFIX = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "vertex",
    "vertexai": "vertex",
    "mistralai": "mistral",
    "groq": "groq",
    "cohere": "cohere",
    "cerebras": "cerebras",
    "together": "together",
    "bedrock": "bedrock",
    "boto3": "bedrock",
}
_MODEL_PROVIDER = (
    (re.compile(r"^(gpt-|o\d|chatgpt|text-davinci|davinci|babbage)"), "openai"),
    (re.compile(r"^claude"), "anthropic"),
    (re.compile(r"^gemini"), "vertex"),
    (re.compile(r"^(mistral|mixtral|codestral|ministral|magistral)"), "mistral"),
    (re.compile(r"^command"), "cohere"),
)
# Request keys that are not model parameters (or cannot be Freeplay llm_parameters).
_NOT_PARAMS = frozenset(
    {
        "self", "messages", "model", "tools", "functions", "system", "prompt", "contents",
        "config", "stream", "stream_options", "extra_headers", "extra_query", "extra_body",
        "timeout", "api_key", "api_base", "base_url", "api_version", "response_format", "input",
    "instructions", "previous_response_id", "include", "text",
    }
)  # fmt: skip


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


def convert_call(call: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(Freeplay record, warnings) for one finished call (start and end merged)."""
    if is_llm_call(call):
        if call.get("output") is None and call.get("exception"):
            record = trace_record(call)
            return record, [
                "LLM call ended in an exception with no response: recorded as a trace "
                "(a Freeplay completion needs the response)"
            ]
        return completion_record(call)
    return trace_record(call), []


# --------------------------------------------------------------------------- completions
def completion_record(call: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    warnings: list[str] = []
    inputs = call.get("inputs") if isinstance(call.get("inputs"), dict) else {}
    assert isinstance(inputs, dict)
    output = call.get("output")
    messages = request_messages(inputs)
    response = response_messages(output)
    if response is None:
        response = [{"role": "assistant", "content": _json_text(output)}]
        warnings.append("response format not recognised: recorded as JSON text")
    messages.extend(response)
    rec: dict[str, Any] = {"session_id": session_of(call), "messages": messages}
    tools = tool_schema(inputs.get("tools"))
    if tools:
        rec["tool_schema"] = tools
    schema = _output_schema(inputs.get("response_format"))
    if schema is not None:
        rec["output_schema"] = schema
    if call.get("parent_id"):
        rec["parent_id"] = as_uuid4(str(call["parent_id"]))
    model = _model(inputs, output, call.get("summary"))
    vendor = provider(short_op_name(str(call.get("op_name", ""))), model)
    if model and "/" in model and model.split("/", 1)[0].lower() in _ROUTED:
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


def request_messages(inputs: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    system = inputs.get("system")  # Anthropic
    if isinstance(system, str) and system:
        out.append({"role": "system", "content": system})
    elif isinstance(system, list):
        text = "\n".join(b.get("text", "") for b in system if isinstance(b, dict))
        if text:
            out.append({"role": "system", "content": text})
    if isinstance(inputs.get("instructions"), str):  # OpenAI Responses
        out.append({"role": "system", "content": inputs["instructions"]})
    messages = inputs.get("messages")
    if isinstance(messages, list):
        out.extend(_message(m) for m in messages)
    elif isinstance(inputs.get("input"), str):  # OpenAI Responses
        out.append({"role": "user", "content": inputs["input"]})
    elif isinstance(inputs.get("input"), list):
        out.extend(_message(m) for m in inputs["input"])
    elif "contents" in inputs:  # Gemini
        out.extend(_gemini_contents(inputs["contents"], inputs.get("config")))
    elif isinstance(inputs.get("prompt"), str):  # text completions
        out.append({"role": "user", "content": inputs["prompt"]})
    return out


def _message(m: Any) -> Any:
    if isinstance(m, str):
        return {"role": "user", "content": m}
    if not isinstance(m, dict):
        return m
    m = _clean(m, keep=("content",))
    content = m.get("content")
    if m.get("role") == "system" and isinstance(content, list):
        # OpenAI accepts text parts for a system prompt; Freeplay's system message is a string.
        texts = [b.get("text") for b in content if isinstance(b, dict)]
        if texts and all(isinstance(t, str) for t in texts) and len(texts) == len(content):
            m["content"] = "\n".join(texts)  # type: ignore[arg-type]
    return m


def response_messages(output: Any) -> list[dict[str, Any]] | None:
    """The response as messages: one, or several OpenAI Responses output items."""
    if isinstance(output, dict) and output.get("object") == "response":
        items = output.get("output")
        if isinstance(items, list) and items and all(isinstance(i, dict) for i in items):
            return [_clean(i, keep=("content",)) for i in items]
    one = response_message(output)
    return [one] if one is not None else None


def response_message(output: Any) -> dict[str, Any] | None:
    if isinstance(output, str):
        return {"role": "assistant", "content": output}
    if not isinstance(output, dict):
        return None
    choices = output.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        first = choices[0]
        if isinstance(first.get("message"), dict):
            msg = _clean(first["message"], keep=("content",))
            msg.setdefault("role", "assistant")
            return msg
        if isinstance(first.get("text"), str):
            return {"role": "assistant", "content": first["text"]}
    if output.get("type") == "message" and isinstance(output.get("content"), list):  # Anthropic
        blocks = [_clean(b) if isinstance(b, dict) else b for b in output["content"]]
        return {"role": output.get("role") or "assistant", "content": blocks}
    candidates = output.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        content = candidates[0].get("content")
        if isinstance(content, dict):
            return _gemini_content(content, "model")
    if output.get("role") == "assistant" and "content" in output:
        return _clean(output, keep=("content",))
    return None


def tool_schema(tools: Any) -> list[dict[str, Any]] | None:
    """The request's tools in a Freeplay tool format; tools that fit none (provider built-ins
    such as web search) are left out, and a missing description becomes ""."""
    if not isinstance(tools, list):
        return None
    out = []
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        tool = dict(tool)
        if tool.get("type") == "function" and isinstance(tool.get("function"), dict):
            fn = dict(tool["function"])
            fn.setdefault("description", "")
            tool["function"] = fn
        elif "name" in tool and "input_schema" in tool:
            tool.setdefault("description", "")
        if not check_tool_schema([tool]):
            out.append(tool)
    return out if out and not check_tool_schema(out) else None


def llm_parameters(inputs: dict[str, Any]) -> dict[str, Any]:
    """Scalar and object request parameters; lists and nulls are not allowed by Freeplay."""
    params = {
        k: v
        for k, v in inputs.items()
        if k not in _NOT_PARAMS and not k.startswith("_") and _param_ok(v)
    }
    config = inputs.get("config")  # Gemini: parameters live in the config object
    if isinstance(config, dict):
        for k, v in config.items():
            if k not in ("tools", "system_instruction", "response_schema") and _param_ok(v):
                params.setdefault(k, v)
    return params


def _param_ok(v: Any) -> bool:
    return isinstance(v, str | int | float | dict) and not (
        isinstance(v, str) and v.startswith("<")
    )


def usage(summary: Any, output: Any) -> dict[str, int] | None:
    prompt = completion = 0
    found = False
    per_model = summary.get("usage") if isinstance(summary, dict) else None
    if isinstance(per_model, dict):
        for u in per_model.values():
            if isinstance(u, dict):
                p = _int(u.get("prompt_tokens"), u.get("input_tokens"))
                c = _int(u.get("completion_tokens"), u.get("output_tokens"))
                if p is not None or c is not None:
                    found = True
                    prompt += p or 0
                    completion += c or 0
    if not found and isinstance(output, dict):
        u = output.get("usage") or output.get("usage_metadata")
        if isinstance(u, dict):
            p = _int(u.get("prompt_tokens"), u.get("input_tokens"), u.get("prompt_token_count"))
            c = _int(
                u.get("completion_tokens"), u.get("output_tokens"), u.get("candidates_token_count")
            )
            if p is not None or c is not None:
                found, prompt, completion = True, p or 0, c or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion} if found else None


def _int(*values: Any) -> int | None:
    for v in values:
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    return None


# litellm / router model prefixes that name the provider.
_ROUTED = frozenset(
    {"openai", "anthropic", "gemini", "vertex_ai", "bedrock", "mistral", "groq", "cohere",
     "azure", "together_ai", "cerebras", "deepseek", "xai", "fireworks_ai", "ollama"}
)  # fmt: skip


def provider(op: str, model: str | None) -> str | None:
    head = op.split(".", 1)[0]
    if head in _PROVIDER_PREFIX:
        return _PROVIDER_PREFIX[head]
    if model:
        if "/" in model:  # litellm: "anthropic/claude-3-5-sonnet"
            prefix = model.split("/", 1)[0].lower()
            return {"gemini": "vertex", "vertex_ai": "vertex"}.get(prefix, prefix)
        for pattern, name in _MODEL_PROVIDER:
            if pattern.match(model.lower()):
                return name
    return None


def _model(inputs: dict[str, Any], output: Any, summary: Any) -> str | None:
    model = inputs.get("model")
    if not isinstance(model, str) and isinstance(output, dict):
        model = output.get("model") or output.get("model_version")
    if not isinstance(model, str) and isinstance(summary, dict):
        per_model = summary.get("usage")
        if isinstance(per_model, dict) and len(per_model) == 1:
            model = next(iter(per_model))
    return model if isinstance(model, str) and model else None


def _output_schema(fmt: Any) -> dict[str, Any] | None:
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        if isinstance(spec, dict) and isinstance(spec.get("schema"), dict):
            return spec["schema"]
    return None


# Gemini: Weave records the SDK's pydantic objects in snake_case; Freeplay wants camelCase.
_CAMEL = {
    "inline_data": "inlineData",
    "mime_type": "mimeType",
    "function_call": "functionCall",
    "function_response": "functionResponse",
    "thought_signature": "thoughtSignature",
}


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {_CAMEL.get(k, k): _camel(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def _gemini_content(content: dict[str, Any], default_role: str) -> dict[str, Any]:
    parts = content.get("parts")
    return {"role": content.get("role") or default_role, "parts": _camel(parts or [])}


def _gemini_contents(contents: Any, config: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    system = config.get("system_instruction") if isinstance(config, dict) else None
    if isinstance(system, str) and system:
        out.append({"role": "system", "content": system})
    items = contents if isinstance(contents, list) else [contents]
    for item in items:
        if isinstance(item, str):
            out.append({"role": "user", "parts": [{"text": item}]})
        elif isinstance(item, dict) and "parts" in item:
            out.append(_gemini_content(item, "user"))
    return out


# --------------------------------------------------------------------------- traces
def trace_record(call: dict[str, Any]) -> dict[str, Any]:
    name = call.get("display_name") or short_op_name(str(call.get("op_name", "")))
    kind = _weave_kind(call)
    is_tool = kind == "tool" or (kind is None and _looks_like(name, "tool"))
    is_agent = not is_tool and (
        kind == "agent"
        or (kind is None and (_looks_like(name, "agent") or not call.get("parent_id")))
    )
    rec: dict[str, Any] = {"session_id": session_of(call), "trace_id": as_uuid4(str(call["id"]))}
    if is_agent:
        rec["agent_name"] = name
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
    if not is_agent:
        rec["name"] = name
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
            out[prefix] = _json_text(value)

    if isinstance(attributes, dict):
        walk("", {k: v for k, v in attributes.items() if k != "weave"})
    return out


# --------------------------------------------------------------------------- helpers
def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def epoch_seconds(value: Any) -> float | None:
    dt = parse_time(value)
    return dt.timestamp() if dt is not None else None


def iso_time(value: Any) -> str | None:
    """ISO 8601 in UTC with an explicit offset, as the SDK's `datetime.isoformat()` writes."""
    dt = parse_time(value)
    return dt.astimezone(UTC).isoformat() if dt is not None else None


def _clean(d: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """Drop null and empty-list values (`model_dump()` noise such as `function_call: null`,
    `annotations: []`), except the keys in `keep`."""
    return {k: v for k, v in d.items() if k in keep or (v is not None and v != [])}


def _json_text(value: Any) -> str:
    return orjson.dumps(value, default=str).decode("utf-8")
