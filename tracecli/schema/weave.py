"""Weave trace-server request models, mirroring the OpenAPI excerpts in ../shared/spec.

Names, types, required and nullable fields follow the spec exactly, so that a record that
validates here is a body the server accepts. Unknown keys follow the server too:
`CallStartReq`, `CallEndReq` and `CallCreateBatchReq` refuse them (`additionalProperties:
false`), the call schemas and `CallsUpsertCompleteReq` let them through. The extra rules
the real server enforces beyond the OpenAPI (id formats, lengths) live in `rules.py`.
"""

from __future__ import annotations

import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# defer_build: a model's validator is built on its first use, not at import. Most runs
# never use one (validate's fast path answers for the common records), and building them
# all cost more start-up time than `tracecli validate` of a small file takes.
_ALLOW = ConfigDict(extra="allow", defer_build=True)
_FORBID = ConfigDict(extra="forbid", defer_build=True)
_DEFER = ConfigDict(defer_build=True)

# The spec's wording for the user id a call may carry but the server fills in itself.
ServerSetUserId = Annotated[
    str | None,
    Field(description="Do not set directly. Server will automatically populate this field."),
]


class TraceStatus(StrEnum):
    SUCCESS = "success"
    ERROR = "error"
    RUNNING = "running"
    DESCENDANT_ERROR = "descendant_error"


class LLMUsageSchema(BaseModel):
    model_config = _ALLOW

    prompt_tokens: int | None = None
    input_tokens: int | None = None
    completion_tokens: int | None = None
    output_tokens: int | None = None
    requests: int | None = None
    total_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class SummaryInsertMap(BaseModel):
    model_config = _ALLOW

    usage: dict[str, LLMUsageSchema] = Field(default=None)  # type: ignore[arg-type]
    status_counts: dict[TraceStatus, int] = Field(default=None)  # type: ignore[arg-type]


class StartedCallSchemaForInsert(BaseModel):
    model_config = _ALLOW

    project_id: str
    id: str | None = None
    op_name: str
    display_name: str | None = None
    trace_id: str | None = None
    parent_id: str | None = None
    thread_id: str | None = None
    turn_id: str | None = None
    started_at: datetime.datetime
    attributes: dict[str, Any]
    inputs: dict[str, Any]
    otel_dump: dict[str, Any] | None = None
    wb_user_id: ServerSetUserId = None
    wb_run_id: str | None = None
    wb_run_step: int | None = None


class EndedCallSchemaForInsert(BaseModel):
    model_config = _ALLOW

    project_id: str
    id: str
    started_at: datetime.datetime | None = None
    ended_at: datetime.datetime
    exception: str | None = None
    output: Any | None = None
    summary: SummaryInsertMap
    wb_run_step_end: int | None = None


class CompletedCallSchemaForInsert(BaseModel):
    model_config = _ALLOW

    project_id: str
    id: str
    trace_id: str
    op_name: str
    display_name: str | None = None
    parent_id: str | None = None
    thread_id: str | None = None
    turn_id: str | None = None
    started_at: datetime.datetime
    ended_at: datetime.datetime
    attributes: dict[str, Any]
    inputs: dict[str, Any]
    output: Any | None = None
    summary: SummaryInsertMap
    exception: str | None = None
    otel_dump: dict[str, Any] | None = None
    wb_user_id: ServerSetUserId = None
    wb_run_id: str | None = None
    wb_run_step: int | None = None
    wb_run_step_end: int | None = None


class CallStartReq(BaseModel):
    model_config = _FORBID

    start: StartedCallSchemaForInsert


class CallEndReq(BaseModel):
    model_config = _FORBID

    end: EndedCallSchemaForInsert


class CallStartRes(BaseModel):
    model_config = _DEFER

    id: str
    trace_id: str


class CallEndRes(BaseModel):
    model_config = _DEFER

    pass


class CallBatchStartMode(BaseModel):
    model_config = _DEFER

    mode: str = "start"
    req: CallStartReq


class CallBatchEndMode(BaseModel):
    model_config = _DEFER

    mode: str = "end"
    req: CallEndReq


class CallCreateBatchReq(BaseModel):
    model_config = _FORBID

    batch: list[CallBatchStartMode | CallBatchEndMode]


class CallCreateBatchRes(BaseModel):
    model_config = _DEFER

    res: list[CallStartRes | CallEndRes]


class CallsUpsertCompleteReq(BaseModel):
    model_config = _ALLOW

    batch: list[CompletedCallSchemaForInsert]


class CallsUpsertCompleteRes(BaseModel):
    model_config = _DEFER

    pass


# The fields an end contributes to a completed call (started_at is the start's).
START_FIELDS = tuple(StartedCallSchemaForInsert.model_fields)
COMPLETE_FIELDS = tuple(CompletedCallSchemaForInsert.model_fields)
