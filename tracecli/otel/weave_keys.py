"""Which span attributes weave reads as inputs, output, usage, call attributes and W&B fields.

The key lists are weave's (`trace_server/opentelemetry/constants.py`, weave 0.52.42), in its
order: the first key with a truthy value wins. `pick` is its `parse_weave_values`, including
the in-place list conversion of what it picked (see nesting.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tracecli.otel.nesting import try_numeric_keys_to_list


def try_parse_int(value: Any) -> Any:
    """Weave's handler for token counts: `int(value)` when Python can, else the value."""
    try:
        return int(value)
    except Exception:  # weave's bare except
        return value


def utc_from_seconds(seconds: float) -> datetime:
    """`datetime.fromtimestamp(seconds)` on a server running in UTC (naive, as weave's)."""
    return datetime.fromtimestamp(seconds, tz=UTC).replace(tzinfo=None)


_DAY_SECONDS = 86_400
_EPOCH = datetime(1970, 1, 1)
_DATES: dict[int, str] = {}  # days since the epoch → "YYYY-MM-DD" (spans share few days)


def iso_from_ns(ns: int) -> str:
    """`utc_from_seconds(ns / 1e9).isoformat()`, without building a datetime.

    The same arithmetic as CPython's `datetime.fromtimestamp`: float seconds split with
    `modf` (exact), the fraction times 1e6 rounded half to even, a carry when it reaches a
    whole second; and isoformat's text (no fraction when it is zero). A hypothesis test holds
    it to the datetime formula. Only for 0 <= ns (OTLP times are unsigned).
    """
    seconds = ns / 1_000_000_000
    whole = int(seconds)
    micro = round((seconds - whole) * 1e6)
    if micro >= 1_000_000:
        whole += 1
        micro -= 1_000_000
    day, rest = divmod(whole, _DAY_SECONDS)
    date = _DATES.get(day)
    if date is None:
        if len(_DATES) > 4096:
            _DATES.clear()
        date = _DATES[day] = (_EPOCH + timedelta(days=day)).date().isoformat()
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    if micro:
        return f"{date}T{hour:02d}:{minute:02d}:{second:02d}.{micro:06d}"
    return f"{date}T{hour:02d}:{minute:02d}:{second:02d}"


def try_parse_timestamp(value: Any) -> Any:
    """Weave's handler for `langfuse.startTime`/`endTime`: ISO text, ns, or float seconds."""
    try:
        if isinstance(value, str):
            return datetime.fromisoformat(value)
        if isinstance(value, int):
            return utc_from_seconds(value / 1_000_000_000)
        if isinstance(value, float):
            return utc_from_seconds(value)
    except (ValueError, TypeError, OverflowError, OSError):
        return None
    return None


Handler = Callable[[Any], Any]
KeySpec = str | tuple[str, Handler]

INPUT_KEYS: list[KeySpec] = [
    "ai.prompt",
    "gen_ai.prompt",
    "input.value",
    "mlflow.spanInputs",
    "gen_ai.input.messages",
    "pydantic_ai.all_messages",
    "traceloop.entity.input",
    "gcp.vertex.agent.tool_call_args",
    "gcp.vertex.agent.llm_request",
    "input",
    "inputs",
]

OUTPUT_KEYS: list[KeySpec] = [
    "ai.response",
    "gen_ai.completion",
    "output.value",
    "gen_ai.output.messages",
    "mlflow.spanOutputs",
    "final_result",
    "gen_ai.content.completion",
    "traceloop.entity.output",
    "gcp.vertex.agent.tool_response",
    "gcp.vertex.agent.llm_response",
    "output",
    "outputs",
]

USAGE_KEYS: dict[str, list[KeySpec]] = {
    "input_tokens": [("gen_ai.usage.input_tokens", try_parse_int)],
    "prompt_tokens": [
        ("gen_ai.usage.prompt_tokens", try_parse_int),
        ("llm.token_count.prompt", try_parse_int),
        ("ai.usage.promptTokens", try_parse_int),
    ],
    "completion_tokens": [
        ("gen_ai.usage.completion_tokens", try_parse_int),
        ("llm.token_count.completion", try_parse_int),
        ("ai.usage.completionTokens", try_parse_int),
    ],
    "output_tokens": [("gen_ai.usage.output_tokens", try_parse_int)],
    "total_tokens": [
        ("llm.usage.total_tokens", try_parse_int),
        ("llm.token_count.total", try_parse_int),
    ],
    "cache_creation_input_tokens": [("gen_ai.usage.cache_creation.input_tokens", try_parse_int)],
    "cache_read_input_tokens": [("gen_ai.usage.cache_read.input_tokens", try_parse_int)],
}

ATTRIBUTE_KEYS: dict[str, list[KeySpec]] = {
    "system": ["gen_ai.system_instructions", "gen_ai.system", "llm.system"],
    "kind": ["weave.span.kind", "traceloop.span.kind", "openinference.span.kind"],
    "model": ["gen_ai.response.model", "gen_ai.request.model", "llm.model_name", "ai.model.id"],
    "provider": ["gen_ai.provider.name", "llm.provider", "ai.model.provider"],
    "model_parameters": ["gen_ai.request", "llm.invocation_parameters"],
    "operation_name": ["gen_ai.operation.name"],
    "response_id": ["gen_ai.response.id"],
    "finish_reasons": ["gen_ai.response.finish_reasons"],
    "agent_name": ["gen_ai.agent.name"],
    "agent_id": ["gen_ai.agent.id"],
}

WB_KEYS: dict[str, list[KeySpec]] = {
    "display_name": ["wandb.display_name"],
    "thread_id": ["gen_ai.conversation.id", "gcp.vertex.agent.session_id", "wandb.thread_id"],
    "attributes": ["wandb.attributes"],
    "wb_run_id": ["wandb.wb_run_id"],
    "wb_run_step": ["wandb.wb_run_step"],
    "wb_run_step_end": ["wandb.wb_run_step_end"],
    "is_turn": ["gen_ai.conversation.id", "gcp.vertex.agent.session_id", "wandb.is_turn"],
}

SPAN_OVERRIDES: dict[str, list[KeySpec]] = {
    "start_time": [("langfuse.startTime", try_parse_timestamp)],
    "end_time": [("langfuse.endTime", try_parse_timestamp)],
}

# the usage fields weave writes for every call, in its order (tsi.LLMUsageSchema)
USAGE_FIELDS = (
    "prompt_tokens",
    "input_tokens",
    "completion_tokens",
    "output_tokens",
    "requests",
    "total_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


def _first(attributes: dict[str, Any], specs: list[KeySpec]) -> tuple[str, Any] | None:
    prepared = _PREPARED.get(id(specs))
    if prepared is None or prepared[0] is not specs:
        prepared = _PREPARED[id(specs)] = (specs, *_prepare(specs))
    _, heads, steps = prepared
    # expanded attributes have no dots in their top-level keys: a key whose first part is
    # not there is not there at all (most of weave's keys, for most spans)
    if heads.isdisjoint(attributes):
        return None
    for key, parts, handler in steps:
        if parts[0] not in attributes:
            continue
        if key in attributes:  # weave's get_attribute: the flat key first
            value = attributes[key]
        else:  # then its nested_get, on the path split once
            value = attributes
            for part in parts:
                if isinstance(value, dict) and part in value:
                    value = value[part]
                    continue
                if isinstance(value, list) and part.isdigit():
                    index = int(part)
                    value = value[index] if index < len(value) else None
                    continue
                value = None
                break
        if value:
            return key, handler(value) if handler else value
    return None


def _prepare(specs: list[KeySpec]) -> tuple[frozenset[str], list[tuple[str, list[str], Any]]]:
    """A key list as (first parts, (key, its parts, handler) in order), made once."""
    steps = []
    for spec in specs:
        key, handler = spec if isinstance(spec, tuple) else (spec, None)
        steps.append((key, key.split("."), handler))
    return frozenset(parts[0] for _, parts, _ in steps), steps


def _name_index(keys: dict[str, list[KeySpec]]) -> tuple[list[str], dict[str, list[int]]]:
    """The names of a key dict, and which of them (by position) each first part can hit."""
    names = list(keys)
    by_head: dict[str, list[int]] = {}
    for n, name in enumerate(names):
        for head in _prepare(keys[name])[0]:
            by_head.setdefault(head, []).append(n)
    return names, by_head


_NAMES: dict[int, tuple[dict[str, list[KeySpec]], list[str], dict[str, list[int]]]] = {}

# the module's key lists, prepared on first use (keyed by identity: they never change)
_PREPARED: dict[int, tuple[list[KeySpec], frozenset[str], list[tuple[str, list[str], Any]]]] = {}


def pick(
    attributes: dict[str, Any], keys: list[KeySpec] | dict[str, list[KeySpec]]
) -> dict[str, Any]:
    """Weave's `parse_weave_values`: a list keeps the attribute's own key, a dict its names."""
    result: dict[str, Any] = {}
    if isinstance(keys, list):
        found = _first(attributes, keys)
        if found is not None:
            result[found[0]] = found[1]
    else:
        index = _NAMES.get(id(keys))
        if index is None or index[0] is not keys:
            index = _NAMES[id(keys)] = (keys, *_name_index(keys))
        _, names, by_head = index
        hits: set[int] = set()
        for head in attributes:  # few: the attributes' first parts
            found_names = by_head.get(head)
            if found_names is not None:
                hits.update(found_names)
        for n in sorted(hits):  # in the key list's order, as weave writes them
            name = names[n]
            found = _first(attributes, keys[name])
            if found is not None:
                result[name] = found[1]
    if result:
        try_numeric_keys_to_list(result)  # weave discards the result; its mutations stay
    return result


def usage_of(attributes: dict[str, Any]) -> dict[str, Any]:
    """Weave's `get_weave_usage`: the token counts, with a total added when it can add one."""
    usage = pick(attributes, USAGE_KEYS)
    for a, b in (("prompt_tokens", "completion_tokens"), ("input_tokens", "output_tokens")):
        if (
            a in usage
            and b in usage
            and "total_tokens" not in usage
            and isinstance(usage[a], int)
            and isinstance(usage[b], int)
        ):
            usage["total_tokens"] = usage[a] + usage[b]
    return usage
