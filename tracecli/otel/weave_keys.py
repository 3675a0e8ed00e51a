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
from tracecli.otel.pick_plan import Picker, compile_picks


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
_SECONDS: dict[int, str] = {}  # seconds since the epoch → its text (a span's start and end,
# and the spans of a trace, share their seconds)


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
    text = _SECONDS.get(whole)
    if text is None:
        day, rest = divmod(whole, _DAY_SECONDS)
        date = _DATES.get(day)
        if date is None:
            if len(_DATES) > 4096:
                _DATES.clear()
            date = _DATES[day] = (_EPOCH + timedelta(days=day)).date().isoformat()
        hour, rest = divmod(rest, 3600)
        minute, second = divmod(rest, 60)
        if len(_SECONDS) > 4096:
            _SECONDS.clear()
        text = _SECONDS[whole] = f"{date}T{hour:02d}:{minute:02d}:{second:02d}"
    # (the six digits as the text of micro + 10**6 after its "1": no format spec to parse)
    return text + "." + str(micro + 1_000_000)[1:] if micro else text


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


Step = tuple[str, list[str], Handler | None]  # a key, its parts, its handler
Plan = list[tuple[str | None, list[Step]]]  # (name, or None: the key's own), steps in order


def _plan(
    keys: list[KeySpec] | dict[str, list[KeySpec]],
    heads: tuple[str, ...],
    flat: tuple[str, ...] | None = None,
) -> Plan:
    """The names of a key list or dict, each with the steps of its keys, in weave's order,
    for attributes whose top-level keys are `heads`: expanded attributes have no dots in
    their top-level keys, so a key whose first part is not there is not there at all
    (most of weave's keys, for most spans); such keys and names are left out. Spans of a
    file share a few sets of heads: made once for each.

    `flat`: the attribute keys as read (dotted), when known: then a key is kept only if
    its path and one of theirs are one, or one lies under the other (else the walk down
    its path finds nothing: weave's keys have no digit parts, so the lists that weave's
    conversion makes of `"0"`, `"1"`... objects do not bring any path into being). Spans
    of an instrumentation share a few sets of keys: made once for each."""
    present = set(heads)
    groups = [(None, keys)] if isinstance(keys, list) else list(keys.items())
    plan: Plan = []
    for name, specs in groups:
        steps: list[Step] = []
        for spec in specs:
            key, handler = spec if isinstance(spec, tuple) else (spec, None)
            parts = key.split(".")
            if parts[0] in present and (flat is None or overlaps(key, flat)):
                steps.append((key, parts, handler))
        if steps:
            plan.append((name, steps))
    return plan


def overlaps(path: str, keys: tuple[str, ...]) -> bool:
    """Whether the dotted path and one of the dotted keys are one, or one lies under the
    other (by their parts)."""
    return any(k == path or k.startswith(path + ".") or path.startswith(k + ".") for k in keys)


def pick(
    attributes: dict[str, Any], keys: list[KeySpec] | dict[str, list[KeySpec]]
) -> dict[str, Any]:
    """Weave's `parse_weave_values`: a list keeps the attribute's own key, a dict its names;
    for each, the first of its keys with a truthy value (weave's `get_attribute`: the flat
    key, then its dotted path, digits indexing into lists on the way)."""
    groups = _ALONE.get(id(keys))
    if groups is None or groups[0] is not keys:
        groups = _ALONE[id(keys)] = (keys,)  # the module's key lists: a few, kept
    return picks(attributes, groups)[0]


_ALONE: dict[int, KeyGroups] = {}


KeyGroups = tuple[list[KeySpec] | dict[str, list[KeySpec]], ...]
# (groups, their plans, the plans written out: from their second span on)
_GROUP_PLANS: dict[tuple[int, tuple[str, ...], bool], tuple[KeyGroups, list[Plan], Picker | None]]
_GROUP_PLANS = {}


def picks(
    attributes: dict[str, Any], groups: KeyGroups, flat: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    """`[pick(attributes, keys) for keys in groups]`, in that order (each pick's list
    conversion shows in the next), on plans made once per set of top-level keys, or of
    attribute keys as read (`flat`, when the caller knows them: see `_plan`). A plan met
    before runs as the function written for it (`tracecli.otel.pick_plan`): the same walk."""
    shape = tuple(attributes) if flat is None else flat
    at = (id(groups), shape, flat is None)
    got = _GROUP_PLANS.get(at)
    if got is None or got[0] is not groups:
        if len(_GROUP_PLANS) > 4096:
            _GROUP_PLANS.clear()
        heads = tuple(attributes)
        plans = [_plan(k, heads, flat) for k in groups]
        got = _GROUP_PLANS[at] = (groups, plans, None)
    elif got[2] is None:  # its second span: written out (a plan met once may not come again)
        got = _GROUP_PLANS[at] = (groups, got[1], compile_picks(got[1]))
    if got[2] is not None and type(attributes) is dict:
        return got[2](attributes)
    return walk_plans(attributes, got[1])


def walk_plans(attributes: dict[str, Any], plans: list[Plan]) -> list[dict[str, Any]]:
    """`picks` on its plans, step by step (what `pick_plan` writes out as code)."""
    out = []
    for plan in plans:
        result: dict[str, Any] = {}
        for name, steps in plan:
            for key, parts, handler in steps:
                # the flat key never holds: top-level keys have no dots (and a key without
                # dots is its own one-part path)
                value: Any = attributes
                for part in parts:
                    t = type(value)
                    if t is dict:
                        value = value.get(part, _MISSING)
                        if value is not _MISSING:
                            continue
                    elif t is list and part.isdigit():
                        index = int(part)
                        value = value[index] if index < len(value) else None
                        continue
                    value = None
                    break
                if value:
                    result[key if name is None else name] = handler(value) if handler else value
                    break
        if result:
            try_numeric_keys_to_list(result)  # weave discards the result; its mutations stay
        out.append(result)
    return out


_MISSING = object()


def usage_of(attributes: dict[str, Any]) -> dict[str, Any]:
    """Weave's `get_weave_usage`: the token counts, with a total added when it can add one."""
    return with_total(pick(attributes, USAGE_KEYS))


def with_total(usage: dict[str, Any]) -> dict[str, Any]:
    """The usage weave picked, with the total it adds when it can add one."""
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
