"""Freeplay request models, mirroring ../shared/tools/freeplay-ref/SCHEMA.md.

That table was checked against the official Python SDK and Freeplay's OpenAPI export; the
reference server uses the same models, and tests/test_freeplay_schema.py holds the two
together. A Freeplay record in an input file is the request body exactly as it goes on the
wire, plus the path parameters that ride beside it:

* completion: `RecordPayload` + `session_id` (+ optional `project_id`) → POST
  `{api_base}/v2/projects/{project_id}/sessions/{session_id}/completions`
* trace: `TracePayload` + `session_id` + `trace_id` (+ optional `project_id`) → POST
  `.../sessions/{session_id}/traces/id/{trace_id}`. A record is a trace when it has a
  top-level `trace_id` and no `messages` (a completion links to a trace via `parent_id`,
  so it never has a top-level `trace_id`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
)

from tracecli.schema.freeplay_messages import ToolSchema, classify_message


class _Envelope(BaseModel):
    """Objects whose keys are all known: an unknown key is most likely a typo."""

    # built on first use, not at import (start-up time: see schema/weave.py)
    model_config = ConfigDict(extra="forbid", defer_build=True)


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
    start_time: IsoDateTime | None = None  # ISO 8601 (an offset expected), unlike call_info
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


def _nulls(value: Any, path: str) -> Iterator[str]:
    if value is None:
        yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _nulls(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _nulls(v, f"{path}[{i}]")
