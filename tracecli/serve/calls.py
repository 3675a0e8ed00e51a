"""The call routes of `tracecli serve`: Weave's request models for queries, and the handlers
that run on a worker thread against the store; the rules weave's server holds a call to
beyond its models are in `tracecli.serve.call_rules`."""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response, StreamingResponse

from tracecli.schema.weave import (
    CallCreateBatchReq,
    CallCreateBatchRes,
    CallEndReq,
    CallEndRes,
    CallStartReq,
    CallStartRes,
    CallsUpsertCompleteReq,
    CallsUpsertCompleteRes,
)
from tracecli.serve.call_rules import MAX_DISPLAY_NAME, check_calls, id_problem, same_project
from tracecli.serve.http import (
    ClosedProjectRequest,
    Handle,
    ReadBody,
    answer,
    body_doc,
    parse_body,
    parse_checked,
    refusal,
    sdk_route,
    validate_body,
)
from tracecli.serve.query_model import Query
from tracecli.store import feedback as store_feedback
from tracecli.store.db import Store
from tracecli.store.exact_json import dumps_exact
from tracecli.store.query import QueryError

_STREAM_CHUNK = 64 * 1024

# ---- query request models (weave's CallsQueryReq, the parts the store answers) --------


class CallsFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op_names: list[str] | None = None
    input_refs: list[str] | None = None
    output_refs: list[str] | None = None
    parent_ids: list[str] | None = None
    trace_ids: list[str] | None = None
    call_ids: list[str] | None = None
    thread_ids: list[str] | None = None
    turn_ids: list[str] | None = None
    trace_roots_only: bool | None = None
    wb_user_ids: list[str] | None = None
    wb_run_ids: list[str] | None = None


class SortBy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    direction: Literal["asc", "desc"]  # required, and lowercase, as by weave's server


class CallsQueryReq(ClosedProjectRequest):
    """weave's CallsQueryReq: any other key is its 422 (a misspelt `filters` was ignored, and
    every call answered). The options the store has nothing for (include_costs,
    expand_columns, latest_only, ...) are taken and change nothing: its calls are stored once
    each, without costs or refs to expand. `latest_only` is the 0.54 SDK's, as weave-ref's."""

    filter: CallsFilter | None = None
    limit: int | None = None
    offset: int | None = None
    sort_by: list[SortBy] | None = None
    query: Query | None = None  # validated only: the store compiles the dict
    columns: list[str] | None = None
    include_costs: bool | None = None
    include_feedback: bool | None = None
    include_storage_size: bool | None = None
    include_total_storage_size: bool | None = None
    include_usernames: bool | None = None
    expand_columns: list[str] | None = None
    return_expanded_column_values: bool | None = None
    latest_only: bool | None = None


class CallsQueryStatsReq(ClosedProjectRequest):
    """weave's CallsQueryStatsReq (no offset, sort_by or latest_only there: a 422)."""

    filter: CallsFilter | None = None
    query: Query | None = None  # validated only: the store compiles the dict
    limit: int | None = None
    include_total_storage_size: bool | None = None
    expand_columns: list[str] | None = None


def _as_read(d: dict[str, Any]) -> None:
    """The query options in the types weave's model reads them as (pydantic's lax mode:
    `"2"`, `2.0` and `true` are the int they say, `"false"` and `0` are False), so that
    serve answers such a query as weave's server does, not with a 400 (or a 500)."""
    odd = [k for k in ("limit", "offset") if d.get(k) is not None and type(d[k]) is not int]
    flt = d.get("filter")
    roots = flt.get("trace_roots_only") if isinstance(flt, dict) else None
    if not odd and (roots is None or type(roots) is bool):
        return
    read = CallsQueryReq.model_validate(d)
    for key in odd:
        d[key] = getattr(read, key)
    if isinstance(flt, dict) and read.filter is not None and roots is not None:
        d["filter"] = {**flt, "trace_roots_only": read.filter.trace_roots_only}


class CallUpdateReq(ClosedProjectRequest):
    call_id: str
    display_name: str | None = None
    wb_user_id: str | None = None


class CallsDeleteReq(ClosedProjectRequest):
    call_ids: list[str]
    wb_user_id: str | None = None


class CallReadReq(ClosedProjectRequest):
    id: str
    include_costs: bool | None = None
    include_storage_size: bool | None = None
    include_total_storage_size: bool | None = None


# ---- request handling (runs in a worker thread) ----------------------------------------


@contextlib.contextmanager
def _query_errors() -> Iterator[None]:
    """A query SQLite refuses (a JSON path it cannot read, say) is the client's 400, not our
    500; a busy store stays the 503 run_guarded makes of it."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise
        raise QueryError(f"the store cannot run this query: {exc}") from None


@dataclass
class _Handlers:
    store: Store

    def call_start(self, body: bytes, entity: str | None = None, project: str | None = None) -> Any:
        data = parse_body(body)
        validate_body(CallStartReq, data)
        same_project(entity, project, [data["start"]])
        check_calls([data["start"]], [])
        return self.store.call_start(data["start"])

    def call_end(self, body: bytes, entity: str | None = None, project: str | None = None) -> Any:
        data = parse_body(body)
        validate_body(CallEndReq, data)
        same_project(entity, project, [data["end"]])
        check_calls([], [data["end"]])
        return self.store.call_end(data["end"])

    def upsert_batch(self, body: bytes) -> Any:
        data = parse_body(body)
        validate_body(CallCreateBatchReq, data)
        items = data["batch"]
        halves: dict[str, list[Any]] = {"start": [], "end": []}
        for i, item in enumerate(items):
            mode = item.get("mode", "start" if "start" in item["req"] else "end")
            if mode not in ("start", "end") or mode not in item["req"]:
                raise refusal(400, f"batch item {i}: invalid mode {mode!r}")
            item["mode"] = mode
            halves[mode].append(item["req"][mode])
        check_calls(halves["start"], halves["end"])
        return {"res": self.store.upsert_batch(items)}

    def calls_complete(self, body: bytes, entity: str, project: str) -> Any:
        data = parse_body(body)
        validate_body(CallsUpsertCompleteReq, data)
        calls = data["batch"]
        same_project(entity, project, calls)
        check_calls(calls, [])
        self.store.calls_complete(calls)
        return {}

    def _query_args(self, body: bytes, model: type[BaseModel] = CallsQueryReq) -> dict[str, Any]:
        d = parse_checked(body, model)
        if model is CallsQueryReq or model is CallsQueryStatsReq:
            _as_read(d)
        return d

    def stream_query(self, body: bytes) -> Iterator[dict[str, Any]]:
        d = self._query_args(body)
        rows = self.store.query(
            d["project_id"],
            filter=d.get("filter"),
            query=d.get("query"),
            limit=d.get("limit"),
            offset=d.get("offset"),
            sort_by=d.get("sort_by"),
            columns=d.get("columns"),
            include_costs=bool(d.get("include_costs")),
        )
        if d.get("include_feedback"):
            rows = self._with_feedback(d["project_id"], rows)
        # The first row is read now, so a query SQLite cannot run is an error answer, not a
        # stream that breaks after its 200.
        with _query_errors():
            first = next(rows, None)
        return iter(()) if first is None else itertools.chain([first], rows)

    def _with_feedback(
        self, project_id: str, rows: Iterator[dict[str, Any]]
    ) -> Iterator[dict[str, Any]]:
        """`include_feedback`: each call's feedback in `summary.weave.feedback` (a list, empty
        when it has none), as weave's server hydrates it."""
        by_call = store_feedback.feedback_by_call(self.store, project_id)
        for row in rows:
            row["summary"].setdefault("weave", {})["feedback"] = by_call.get(row["id"], [])
            yield row

    def query_stats(self, body: bytes) -> Any:
        """weave's SQLite server: count capped at limit, has_more when the cap is reached,
        storage summed only when asked for (else 0)."""
        d = self._query_args(body, CallsQueryStatsReq)
        limit = d.get("limit")
        if limit is not None and limit < 1:
            raise refusal(400, "Limit must be a positive integer")
        where = {"filter": d.get("filter"), "query": d.get("query")}
        with _query_errors():
            n = self.store.count(d["project_id"], **where)
            size = 0
            if d.get("include_total_storage_size"):
                size = self.store.trace_storage_bytes(d["project_id"], **where, limit=limit)
        count = n if limit is None else min(n, limit)
        return {
            "count": count,
            "has_more": limit is not None and count >= limit,
            "total_storage_size_bytes": size,
        }

    def call_read(self, body: bytes) -> Any:
        d = self._query_args(body, CallReadReq)
        calls = list(self.store.query(d["project_id"], filter={"call_ids": [d["id"]]}))
        return {"call": calls[0] if calls else None}

    def call_update(self, body: bytes) -> Any:
        d = self._query_args(body, CallUpdateReq)
        if d.get("display_name") is None:
            raise refusal(400, "One of [display_name] is required for call update")
        problem = id_problem(d["call_id"], 16) or (
            f"String too long: {d['display_name']}. Max length is {MAX_DISPLAY_NAME}"
            if len(d["display_name"]) > MAX_DISPLAY_NAME
            else None
        )
        if problem:
            raise refusal(400, problem)
        # An unknown call is not an error on weave's server either.
        self.store.set_display_name(d["project_id"], d["call_id"], d["display_name"])
        return {}

    def calls_delete(self, body: bytes) -> Any:
        d = self._query_args(body, CallsDeleteReq)
        return {"num_deleted": self.store.delete_calls(d["project_id"], d["call_ids"])}

    def calls_query(self, body: bytes) -> Any:
        return {"calls": list(self.stream_query(body))}


def _stream(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """JSON lines in ~64 KiB chunks (one worker-thread hop per chunk, not per row)."""
    buf: list[bytes] = []
    size = 0
    for row in rows:
        line = dumps_exact(row) + b"\n"
        buf.append(line)
        size += len(line)
        if size >= _STREAM_CHUNK:
            yield b"".join(buf)
            buf, size = [], 0
    if buf:
        yield b"".join(buf)


def _streaming(rows: Iterator[dict[str, Any]]) -> Response:
    return StreamingResponse(_stream(rows), media_type="application/jsonl")


CALL_REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    CallStartReq,
    CallEndReq,
    CallCreateBatchReq,
    CallsUpsertCompleteReq,
    CallsQueryReq,
    CallsQueryStatsReq,
    CallReadReq,
    CallUpdateReq,
    CallsDeleteReq,
)


def add_call_routes(app: FastAPI, store: Store, *, handle: Handle, read_body: ReadBody) -> None:
    """Register the call routes (write, query, read, update, delete) on `app`."""
    h = _Handlers(store)

    def route(
        path: str, model: type[BaseModel], res: type[BaseModel], summary: str
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return app.post(
            path,
            response_model=res,
            summary=summary,
            tags=["Calls"],
            openapi_extra=body_doc(model),
        )

    @route("/call/start", CallStartReq, CallStartRes, "Call Start")
    async def call_start(request: Request) -> Response:
        return await handle(h.call_start, request)

    @route("/call/end", CallEndReq, CallEndRes, "Call End")
    async def call_end(request: Request) -> Response:
        return await handle(h.call_end, request)

    # The weave SDK's path for calls it could not pair (v2: the project is in the path).
    @route("/v2/{entity}/{project}/call/start", CallStartReq, CallStartRes, "Call Start V2")
    async def call_start_v2(entity: str, project: str, request: Request) -> Response:
        return await handle(h.call_start, request, entity, project)

    @route("/v2/{entity}/{project}/call/end", CallEndReq, CallEndRes, "Call End V2")
    async def call_end_v2(entity: str, project: str, request: Request) -> Response:
        return await handle(h.call_end, request, entity, project)

    @route("/call/upsert_batch", CallCreateBatchReq, CallCreateBatchRes, "Call Start Batch")
    async def call_start_batch(request: Request) -> Response:
        return await handle(h.upsert_batch, request)

    @route(
        "/v2/{entity}/{project}/calls/complete",
        CallsUpsertCompleteReq,
        CallsUpsertCompleteRes,
        "Calls Complete",
    )
    async def calls_complete(entity: str, project: str, request: Request) -> Response:
        return await handle(h.calls_complete, request, entity, project)

    @app.post(
        "/calls/stream_query",
        tags=["Calls"],
        summary="Calls Query Stream",
        response_class=StreamingResponse,
        responses={200: {"content": {"application/jsonl": {}}}},
        openapi_extra=body_doc(CallsQueryReq),
    )
    async def calls_query_stream(request: Request) -> Response:
        return await answer(read_body, h.stream_query, request, respond=_streaming)

    @app.post("/calls/query_stats", tags=["Calls"], openapi_extra=body_doc(CallsQueryStatsReq))
    async def calls_query_stats(request: Request) -> Response:
        return await handle(h.query_stats, request)

    @app.post("/call/read", tags=["Calls"], openapi_extra=body_doc(CallReadReq))
    async def call_read(request: Request) -> Response:
        return await handle(h.call_read, request)

    sdk_route(app, handle, "/call/update", CallUpdateReq, h.call_update)
    sdk_route(app, handle, "/calls/query", CallsQueryReq, h.calls_query)
    sdk_route(app, handle, "/calls/delete", CallsDeleteReq, h.calls_delete)
