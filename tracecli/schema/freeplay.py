"""Freeplay request models and the rules a Freeplay record must pass before it is sent.

A Freeplay record in an input file is the request body exactly as it goes on the wire, plus
the path parameters that ride beside it:

* completion: `RecordPayload` + `session_id` (+ optional `project_id`) → POST
  `{api_base}/v2/projects/{project_id}/sessions/{session_id}/completions`
* trace: `TracePayload` + `session_id` + `trace_id` (+ optional `project_id`) → POST
  `.../sessions/{session_id}/traces/id/{trace_id}`. A record is a trace when it has a
  top-level `trace_id` and no `messages` (a completion links to a trace via `parent_id`,
  so it never has a top-level `trace_id`).

Models mirror ../shared/tools/freeplay-ref/SCHEMA.md (itself checked against the official SDK
and Freeplay's OpenAPI export). Fields whose mistakes are common (epoch vs ISO times, string
eval scores, nulls in inputs, lists in llm_parameters) are checked by hand first, so the
message says how to fix the record rather than repeating pydantic's union noise.
Importing this module registers `check_completion` with `tracecli.records`.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from tracecli import records
from tracecli.schema.freeplay_messages import ToolSchema, check_tool_schema, classify_message

Problem = tuple[str, str, str]  # (field, code, message), what records.py turns into diagnostics


class _Envelope(BaseModel):
    """Objects whose keys are all known: an unknown key is most likely a typo."""

    model_config = ConfigDict(extra="forbid")


MetaValue = StrictBool | StrictInt | StrictFloat | StrictStr
CustomMetadata = dict[str, MetaValue]
EvalResults = dict[str, StrictBool | StrictFloat]
LLMParamValue = StrictBool | StrictInt | StrictFloat | StrictStr | dict[str, Any]


def _iso_only(value: Any) -> Any:
    if value is not None and not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]


class UsageInfo(_Envelope):
    prompt_tokens: StrictInt
    completion_tokens: StrictInt


class CallInfo(_Envelope):
    start_time: StrictFloat | None = None  # Unix epoch seconds
    end_time: StrictFloat | None = None
    model: StrictStr | None = None
    provider: StrictStr | None = None
    provider_info: dict[str, Any] | None = None
    llm_parameters: dict[str, LLMParamValue] | None = None
    usage: UsageInfo | None = None
    api_style: Literal["batch", "default"] | None = None


class PromptInfo(_Envelope):
    prompt_template_version_id: uuid.UUID
    environment: StrictStr | None = None


class SessionInfo(_Envelope):
    custom_metadata: CustomMetadata | None = None


class TraceInfo(_Envelope):
    """Deprecated link to a trace; `parent_id` replaces it."""

    trace_id: uuid.UUID


class TestRunInfo(_Envelope):
    __test__ = False  # not a pytest class

    test_run_id: uuid.UUID
    test_case_id: uuid.UUID


class FunctionCall(_Envelope):
    name: StrictStr
    arguments: StrictStr


class ResponseInfo(_Envelope):
    """Deprecated and unused by Freeplay; kept because the SDK still sends it."""

    function_call_response: FunctionCall | None = None


class MediaInputUrl(_Envelope):
    type: Literal["url"]
    url: StrictStr


class MediaInputBase64(_Envelope):
    type: Literal["base64"]
    data: StrictStr
    content_type: StrictStr


MediaInput = MediaInputUrl | MediaInputBase64


class RecordPayload(_Envelope):
    """Body of POST .../sessions/{session_id}/completions; only `messages` is required."""

    messages: list[dict[str, Any]]
    inputs: dict[str, Any] | None = None
    media_inputs: dict[str, MediaInput] | None = None
    tool_schema: ToolSchema | None = None
    session_info: SessionInfo | None = None
    trace_info: TraceInfo | None = None
    prompt_info: PromptInfo | None = None
    call_info: CallInfo | None = None
    test_run_info: TestRunInfo | None = None
    eval_results: EvalResults | None = None
    response_info: ResponseInfo | None = None
    completion_id: uuid.UUID | None = None
    parent_id: uuid.UUID | None = None
    output_schema: dict[str, Any] | None = None
    # Not in the spec: the Python SDK copies session_info.custom_metadata here; the server
    # tolerates it. tracecli's converter never writes it.
    custom_metadata: CustomMetadata | None = None

    @field_validator("messages")
    @classmethod
    def _messages(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not v:
            raise ValueError("must hold at least one message")
        for i, m in enumerate(v):
            label, why = classify_message(m)
            if label is None:
                raise ValueError(f"messages[{i}] {why}")
        return v

    @field_validator("inputs")
    @classmethod
    def _inputs(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        for path in _nulls(v or {}, "inputs"):
            raise ValueError(f"{path}: null is not allowed inside inputs")
        return v


class TracePayload(_Envelope):
    """Body of POST .../sessions/{session_id}/traces/id/{trace_id}."""

    input: Any
    output: Any
    parent_id: uuid.UUID | None = None
    test_run_info: TestRunInfo | None = None
    agent_name: StrictStr | None = None
    custom_metadata: CustomMetadata | None = None
    eval_results: EvalResults | None = None
    name: StrictStr | None = None
    kind: Literal["tool", "agent"] | None = None  # spec: "tool"; the SDK also sends "agent"
    start_time: IsoDateTime | None = None  # ISO 8601 with offset, unlike call_info
    end_time: IsoDateTime | None = None


# Keys of a record that are not part of the body: they go in the URL.
COMPLETION_PATH_KEYS = ("session_id", "project_id")
TRACE_PATH_KEYS = ("session_id", "trace_id", "project_id")


def is_trace_record(value: dict[str, Any]) -> bool:
    return "trace_id" in value and "messages" not in value


def split_record(value: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """(path parameters, body as sent) of a valid record."""
    keys = TRACE_PATH_KEYS if is_trace_record(value) else COMPLETION_PATH_KEYS
    return (
        {k: value[k] for k in keys if value.get(k) is not None},
        {k: v for k, v in value.items() if k not in keys},
    )


# --------------------------------------------------------------------------- checks
_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_MS_THRESHOLD = 1e11  # epoch seconds reach 1e11 in the year 5138; ms passed it in 1973
EXAMPLE_EPOCH = 1767268800.125
EXAMPLE_ISO = "2026-01-01T12:00:00.125000+00:00"


def uuid4_problem(value: Any, what: str) -> str | None:
    """Why `value` is not a UUID v4 string Freeplay takes as a path id, or None."""
    if not isinstance(value, str):
        return f"must be a UUID v4 string, got {_describe(value)}"
    if not _UUID_RE.match(value):
        return f"{value!r} is not a UUID ({what} must be a UUID v4, e.g. {uuid.uuid4()})"
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
            f"must be a Freeplay project UUID, got {_describe(pid)}",
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
    found.extend(_non_json(body, ""))
    yield from found
    taken = [f for f, _, _ in found]
    try:
        model.model_validate(body)
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_context=False):
            field = _path(err["loc"])
            if any(_overlaps(field, t) for t in taken):
                continue
            taken.append(field)
            yield (field or "(record)", f"schema.{err['type']}", _pydantic_message(err, model))


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
            f"must be a list of messages, got {_describe(messages)}",
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
        for key in ("start_time", "end_time"):
            if (problem := _epoch_problem(call.get(key))) is not None:
                yield (f"call_info.{key}", "freeplay.epoch_time", problem)
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
    for key in ("start_time", "end_time"):
        if (problem := _iso_problem(body.get(key))) is not None:
            yield (key, "freeplay.iso_time", problem)
    yield from _eval_results(body.get("eval_results"), "eval_results")
    yield from _metadata(body.get("custom_metadata"), "custom_metadata")


def _epoch_problem(value: Any) -> str | None:
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        if isinstance(value, int | float) and value > _MS_THRESHOLD:
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
        parsed = _parse_iso(value)
        if parsed is not None:
            return f"must be epoch seconds (a number), not an ISO date: use {parsed.timestamp()!r}"
        return f"must be epoch seconds as a number, e.g. {EXAMPLE_EPOCH}, got {_describe(value)}"
    return f"must be epoch seconds as a number, e.g. {EXAMPLE_EPOCH}, got {_describe(value)}"


def _iso_problem(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > _MS_THRESHOLD else value
        try:
            iso = datetime.fromtimestamp(seconds, UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            iso = EXAMPLE_ISO
        return f"trace times are ISO 8601 strings, not epoch numbers: use {iso!r}"
    if not isinstance(value, str):
        return f"must be an ISO 8601 date-time string, e.g. {EXAMPLE_ISO!r}, got {_describe(value)}"
    parsed = _parse_iso(value)
    if parsed is None:
        return f"not an ISO 8601 date-time, e.g. {EXAMPLE_ISO!r}, got {_describe(value)}"
    if parsed.tzinfo is None:
        return f"has no UTC offset: add one, e.g. {parsed.replace(tzinfo=UTC).isoformat()!r}"
    return None


def _parse_iso(value: str) -> datetime | None:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


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
                f"must be a number or a boolean, got {_describe(v)}{hint}",
            )


def _metadata(value: Any, field: str) -> Iterator[Problem]:
    if not isinstance(value, dict):
        return
    for k, v in value.items():
        if not isinstance(v, str | int | float):
            yield (
                f"{field}.{k}",
                "freeplay.custom_metadata",
                f"must be a string, number or boolean, got {_describe(v)}",
            )


def _nulls(value: Any, path: str) -> Iterator[str]:
    if value is None:
        yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _nulls(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _nulls(v, f"{path}[{i}]")


def _non_json(value: Any, path: str) -> Iterator[Problem]:
    """NaN, Infinity and non-JSON types (only YAML can produce them) cannot be sent as written."""
    if isinstance(value, float):
        if not math.isfinite(value):
            yield (path or "(record)", "freeplay.not_json", f"{value!r} is not a JSON number")
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
        return f"must be a UUID, got {_describe(err.get('input'))}"
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if etype.endswith("_type") or etype.endswith("_parsing") or etype == "literal_error":
        msg = f"{msg}, got {_describe(err.get('input'))}"
    return msg


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


records.set_freeplay_check(check_completion)
