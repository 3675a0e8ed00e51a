"""The rules a Freeplay record must pass before it is sent, and their messages.

Fields whose mistakes are common (epoch vs ISO times, string eval scores, nulls in inputs,
lists in llm_parameters, non-v4 session ids) are checked by hand first, so the message says
how to fix the record rather than repeating pydantic's union noise; the models
(`freeplay_models`, re-exported here) then catch the rest, one problem per field.
`tracecli.check.records` sends every Freeplay-shaped record through `check_completion`.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

from tracecli.schema.freeplay_messages import check_tool_schema, classify_message
from tracecli.schema.freeplay_models import (
    COMPLETION_PATH_KEYS,
    TRACE_PATH_KEYS,
    CallInfo,
    CustomMetadata,
    EvalResults,
    FunctionCall,
    MediaInput,
    MediaInputBase64,
    MediaInputUrl,
    PromptInfo,
    RecordPayload,
    ResponseInfo,
    SessionInfo,
    TestRunInfo,
    TraceInfo,
    TracePayload,
    UsageInfo,
    _nulls,
    is_trace_record,
    split_record,
)
from tracecli.schema.freeplay_times import (
    MS_THRESHOLD,
    NO_ZONE,
    TIME_ORDER,
    epoch_order,
    parse_iso,
    trace_times,
)
from tracecli.schema.rules import describe_value

__all__ = [
    "COMPLETION_PATH_KEYS",
    "NO_ZONE",
    "TRACE_PATH_KEYS",
    "WARNING_CODES",
    "CallInfo",
    "CustomMetadata",
    "EvalResults",
    "FunctionCall",
    "MediaInput",
    "MediaInputBase64",
    "MediaInputUrl",
    "Problem",
    "PromptInfo",
    "RecordPayload",
    "ResponseInfo",
    "SessionInfo",
    "TestRunInfo",
    "TraceInfo",
    "TracePayload",
    "UsageInfo",
    "check_completion",
    "is_trace_record",
    "split_record",
    "uuid4_problem",
]

Problem = tuple[str, str, str]  # (field, code, message), what records.py turns into diagnostics

# the codes of problems that are warnings (the record is sent; `--strict` refuses it):
# every other problem is an error
WARNING_CODES = frozenset({NO_ZONE, TIME_ORDER})


# --------------------------------------------------------------------------- checks
_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
EXAMPLE_EPOCH = 1767268800.125
EXAMPLE_UUID4 = "0b7e6c2a-5d4f-4e8a-9c1b-2f3a4d5e6f70"


def uuid4_problem(value: Any, what: str) -> str | None:
    """Why `value` is not a UUID v4 string Freeplay takes as a path id, or None."""
    if not isinstance(value, str):
        return f"must be a UUID v4 string, got {describe_value(value)}"
    if not _UUID_RE.match(value):
        return f"{value!r} is not a UUID ({what} must be a UUID v4, e.g. {EXAMPLE_UUID4})"
    u = uuid.UUID(value)
    if u.version != 4 or u.variant != uuid.RFC_4122:
        return (
            f"{value!r} is a UUID but not version 4 ({what} must be a UUID v4; "
            "`tracecli convert` maps other ids to v4 deterministically)"
        )
    return None


def check_completion(value: dict[str, Any]) -> Iterator[Problem]:
    """Every problem of one Freeplay record (completion or trace), as (field, code, message)."""
    if problem := uuid4_problem(value.get("session_id"), "a session id"):
        if "session_id" not in value:
            problem = "required field is missing (the session the record belongs to, a UUID v4)"
        yield ("session_id", "freeplay.session_id", problem)
    pid = value.get("project_id")
    if pid is not None and (not isinstance(pid, str) or not _UUID_RE.match(pid)):
        yield (
            "project_id",
            "freeplay.project_id",
            f"must be a Freeplay project UUID, got {describe_value(pid)}",
        )
    if is_trace_record(value):
        if problem := uuid4_problem(value.get("trace_id"), "a trace id"):
            yield ("trace_id", "freeplay.trace_id", problem)
        yield from _check_body(value, TRACE_PATH_KEYS, TracePayload, _trace_rules)
    else:
        yield from _check_body(value, COMPLETION_PATH_KEYS, RecordPayload, _completion_rules)


def _check_body(
    value: dict[str, Any], path_keys: tuple[str, ...], model: type[BaseModel], rules: Any
) -> Iterator[Problem]:
    body = {k: v for k, v in value.items() if k not in path_keys}
    found = list(rules(body))
    if not _is_json(body):
        found.extend(_non_json(body, ""))
    yield from found
    taken = [f for f, _, _ in found]
    try:
        model.model_validate(_probe(body) if model is RecordPayload else body)
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_context=False):
            field = _path(err["loc"])
            if any(_overlaps(field, t) for t in taken):
                continue
            taken.append(field)
            yield (field or "(record)", f"schema.{err['type']}", _pydantic_message(err, model))


_CHECKED_MESSAGES = [{"role": "user", "content": ""}]


def _probe(body: dict[str, Any]) -> dict[str, Any]:
    """The body for the model pass, minus what the hand-written rules checked already in
    full (messages, inputs, tool_schema): checking them twice would double the cost."""
    probe = dict(body)
    if isinstance(probe.get("messages"), list) and probe["messages"]:
        probe["messages"] = _CHECKED_MESSAGES
    if isinstance(probe.get("inputs"), dict):
        probe["inputs"] = {}
    if probe.get("tool_schema") is not None:
        probe["tool_schema"] = None
    return probe


def _is_json(body: dict[str, Any]) -> bool:
    """The C encoder's verdict (fast); the slow walk only runs to say where it is not."""
    try:
        json.dumps(body, allow_nan=False, check_circular=False)
        return True
    except (TypeError, ValueError, RecursionError):
        return False


def _overlaps(a: str, b: str) -> bool:
    """One field path is the other or inside it: one problem per field is enough."""
    short, long = sorted((a, b), key=len)
    return not short or long == short or long.startswith((short + ".", short + "["))


def _completion_rules(body: dict[str, Any]) -> Iterator[Problem]:
    messages = body.get("messages")
    if "messages" not in body:
        yield (
            "messages",
            "schema.missing",
            "required field is missing (the conversation, the LLM's response last)",
        )
    elif not isinstance(messages, list):
        yield (
            "messages",
            "freeplay.messages",
            f"must be a list of messages, got {describe_value(messages)}",
        )
    elif not messages:
        yield (
            "messages",
            "freeplay.messages",
            "must hold at least one message; the last one is the LLM's response",
        )
    else:
        for i, m in enumerate(messages):
            label, why = classify_message(m)
            if label is None:
                yield (f"messages[{i}]", "freeplay.message", why)
    call = body.get("call_info")
    if isinstance(call, dict):
        times_ok = True
        for key in ("start_time", "end_time"):
            if (problem := _epoch_problem(call.get(key))) is not None:
                times_ok = False
                yield (f"call_info.{key}", "freeplay.epoch_time", problem)
        if times_ok:
            yield from epoch_order(call)
        params = call.get("llm_parameters")
        if isinstance(params, dict):
            for k, v in params.items():
                if isinstance(v, list):
                    yield (
                        f"call_info.llm_parameters.{k}",
                        "freeplay.llm_parameters",
                        "lists are not allowed in llm_parameters (only string, number, "
                        'boolean or object): drop the key, or wrap it: {"values": [...]}',
                    )
                elif v is None:
                    yield (
                        f"call_info.llm_parameters.{k}",
                        "freeplay.llm_parameters",
                        "null is not allowed in llm_parameters: omit the key",
                    )
    inputs = body.get("inputs")
    if isinstance(inputs, dict):
        for path in _nulls(inputs, "inputs"):
            yield (
                path,
                "freeplay.inputs",
                'null is not allowed inside inputs: omit the key or use a value such as ""',
            )
    if "tool_schema" in body and body["tool_schema"] is not None:
        for rel, msg in check_tool_schema(body["tool_schema"]):
            yield (f"tool_schema{rel}", "freeplay.tool_schema", msg)
    yield from _eval_results(body.get("eval_results"), "eval_results")
    yield from _metadata(body.get("custom_metadata"), "custom_metadata")
    session = body.get("session_info")
    if isinstance(session, dict):
        yield from _metadata(session.get("custom_metadata"), "session_info.custom_metadata")


def _trace_rules(body: dict[str, Any]) -> Iterator[Problem]:
    for key in ("input", "output"):
        if key not in body:
            yield (key, "schema.missing", "required field is missing (any JSON value)")
    if "input" in body and body["input"] is None:
        yield (
            "input",
            "freeplay.trace_input",
            "must not be null (the SDK refuses a trace without input)",
        )
    yield from trace_times(body)
    yield from _eval_results(body.get("eval_results"), "eval_results")
    yield from _metadata(body.get("custom_metadata"), "custom_metadata")


def _epoch_problem(value: Any) -> str | None:
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        if isinstance(value, int | float) and value > MS_THRESHOLD:
            seconds = value / 1000
            return (
                f"{value!r} looks like milliseconds; Freeplay wants epoch seconds: use {seconds!r}"
            )
        return None
    if isinstance(value, str):
        try:
            return f"a number, not a string: use {float(value)!r}"
        except ValueError:
            pass
        parsed = parse_iso(value)
        if parsed is not None:
            return f"must be epoch seconds (a number), not an ISO date: use {parsed.timestamp()!r}"
    got = describe_value(value)
    return f"must be epoch seconds as a number, e.g. {EXAMPLE_EPOCH}, got {got}"


def _eval_results(value: Any, field: str) -> Iterator[Problem]:
    if not isinstance(value, dict):
        return
    for k, v in value.items():
        if not isinstance(v, int | float):  # bool is an int
            hint = (
                " (Freeplay refuses strings here: record a score, e.g. 1.0, or true/false)"
                if isinstance(v, str)
                else ""
            )
            yield (
                f"{field}.{k}",
                "freeplay.eval_results",
                f"must be a number or a boolean, got {describe_value(v)}{hint}",
            )


def _metadata(value: Any, field: str) -> Iterator[Problem]:
    if not isinstance(value, dict):
        return
    for k, v in value.items():
        if not isinstance(v, str | int | float):
            yield (
                f"{field}.{k}",
                "freeplay.custom_metadata",
                f"must be a string, number or boolean, got {describe_value(v)}",
            )


def _non_json(value: Any, path: str) -> Iterator[Problem]:
    """NaN, Infinity and non-JSON types (only YAML can produce them) cannot be sent as written."""
    if isinstance(value, float):
        if not math.isfinite(value):
            # as written (`NaN`, `1e400`: the exact reader's `NonFinite` keeps its text),
            # not as Python spells the float (`nan`, `inf`)
            written = getattr(value, "text", None) or repr(value)
            yield (path or "(record)", "freeplay.not_json", f"{written} is not a JSON number")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _non_json(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _non_json(v, f"{path}[{i}]")
    elif not isinstance(value, str | int | type(None)):
        yield (
            path or "(record)",
            "freeplay.not_json",
            f"{type(value).__name__} is not a JSON value",
        )


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]" or not isinstance(part, str) or "[" in part or part[:1].isupper():
            continue  # union member names, not fields
        elif part in ("str", "int", "float", "bool", "none", "function-before", "function-after"):
            continue
        else:
            out += f".{part}" if out else part
    return out


def _pydantic_message(err: Any, model: type[BaseModel]) -> str:
    etype = err["type"]
    if etype == "missing":
        return "required field is missing"
    if etype == "extra_forbidden":
        if model is TracePayload:
            return "unknown key: not a field of Freeplay's TracePayload (a typo?)"
        if err["loc"] == ("trace_id",):
            return "unknown key: a completion joins a trace through parent_id"
        return "unknown key: not a field of Freeplay's RecordPayload (a typo?)"
    if etype.startswith("uuid"):
        return f"must be a UUID, got {describe_value(err.get('input'))}"
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if etype.endswith("_type") or etype.endswith("_parsing") or etype == "literal_error":
        msg = f"{msg}, got {describe_value(err.get('input'))}"
    return msg
