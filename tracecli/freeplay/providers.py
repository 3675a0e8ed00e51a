"""Provider-specific shapes of an LLM call, as Weave records them, in Freeplay's terms.

Each LLM client library leaves its own request and response in a Weave call: OpenAI chat
(and litellm, which copies it), OpenAI Responses, Anthropic Messages, Google Gemini. These
functions read them into Freeplay's pieces: the messages of the request, the response as
messages, the tools in a Freeplay tool format, the model parameters, the token usage, and
the provider's name. `freeplay_convert` puts the pieces together.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from tracecli.schema.freeplay_messages import check_tool_schema

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
    m = clean(m, keep=("content",))
    content = m.get("content")
    if m.get("role") == "system" and isinstance(content, list):
        # OpenAI accepts text parts for a system prompt; Freeplay's system message is a string.
        texts = [t for b in content if isinstance(b, dict) and isinstance(t := b.get("text"), str)]
        if texts and len(texts) == len(content):  # every part a text part
            m["content"] = "\n".join(texts)
    return m


def response_messages(output: Any) -> list[dict[str, Any]] | None:
    """The response as messages: one, or several OpenAI Responses output items."""
    if isinstance(output, dict) and output.get("object") == "response":
        items = output.get("output")
        if isinstance(items, list) and items and all(isinstance(i, dict) for i in items):
            return [clean(i, keep=("content",)) for i in items]
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
            msg = clean(first["message"], keep=("content",))
            msg.setdefault("role", "assistant")
            return msg
        if isinstance(first.get("text"), str):
            return {"role": "assistant", "content": first["text"]}
    if output.get("type") == "message" and isinstance(output.get("content"), list):  # Anthropic
        blocks = [clean(b) if isinstance(b, dict) else b for b in output["content"]]
        return {"role": output.get("role") or "assistant", "content": blocks}
    candidates = output.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        content = candidates[0].get("content")
        if isinstance(content, dict):
            return _gemini_content(content, "model")
    if output.get("role") == "assistant" and "content" in output:
        return clean(output, keep=("content",))
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
ROUTED_PREFIXES = frozenset(
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


def model_of(inputs: dict[str, Any], output: Any, summary: Any) -> str | None:
    model = inputs.get("model")
    if not isinstance(model, str) and isinstance(output, dict):
        model = output.get("model") or output.get("model_version")
    if not isinstance(model, str) and isinstance(summary, dict):
        per_model = summary.get("usage")
        if isinstance(per_model, dict) and len(per_model) == 1:
            model = next(iter(per_model))
    return model if isinstance(model, str) and model else None


def output_schema_of(fmt: Any) -> dict[str, Any] | None:
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        if isinstance(spec, dict) and isinstance(schema := spec.get("schema"), dict):
            return schema
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


def clean(d: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """Drop null and empty-list values (`model_dump()` noise such as `function_call: null`,
    `annotations: []`), except the keys in `keep`."""
    return {k: v for k, v in d.items() if k in keep or (v is not None and v != [])}


def json_text(value: Any) -> str:
    try:
        return orjson.dumps(value, default=str).decode("utf-8")
    except orjson.JSONEncodeError:  # an integer beyond 64 bits: its digits, exactly
        return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
