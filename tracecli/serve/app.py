"""`tracecli serve`: the embedded store behind the Weave trace-server routes (ASGI, uvicorn).

The uploader, the Weave SDK and curl talk to it exactly as to a Weave server: the same
paths, the same request models (tracecli.schema.weave), and weave's own server's answers —
`{"detail": [...]}` 422s for bodies that do not fit the models, `{"reason": ...}` 400s in
its words for the fields it refuses (checked here, not by `validate`'s rules: the SDK drops
a batch on a 400 and splits it on a 422, so the status must be weave's), 401/413. Bodies are
read as weave's server reads them (integers of any size exact) and validated once; the raw
dicts are stored, so what was sent is what comes back.

/openapi.json documents the request bodies with the same models (a test compares it with
../shared/spec). Everything heavier than a header check runs in a worker thread, so a big
batch never stalls `/health` or a query. The weave SDK's object/table/file routes are in
tracecli.serve.objects, the body parsing and refusal shapes both share in server_http.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import ipaddress
import itertools
import logging
import signal
import socket
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tracecli import __version__
from tracecli.diagnostics import TracecliError, UsageError
from tracecli.schema import rules
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
from tracecli.serve.http import (
    HttpError,
    body_doc,
    check_project,
    json_response,
    log_exception,
    parse_body,
    parse_checked,
    refusal,
    run_guarded,
    sdk_route,
    validate_body,
)
from tracecli.serve.objects import OBJECT_REQUEST_MODELS, add_object_routes
from tracecli.store import objects as store_objects
from tracecli.store.db import QueryError, Store
from tracecli.store.query import dumps_exact

MAX_BODY_BYTES = 32 * 1024 * 1024  # the limit the weave SDK assumes
DEFAULT_PORT = 6345
OPEN_PATHS = frozenset({"/health", "/openapi.json", "/docs", "/redoc", "/server_info"})
_STREAM_CHUNK = 64 * 1024
_INLINE_BYTES = 16 * 1024  # smaller write bodies are handled on the event loop itself


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
    direction: Literal["asc", "desc", "ASC", "DESC"]  # required, as by weave's server


class CallsQueryReq(BaseModel):
    """Unknown options (include_costs, expand_columns, latest_only, ...) are accepted and
    ignored: they change nothing for calls stored once each without costs or refs."""

    model_config = ConfigDict(extra="allow")

    project_id: str
    filter: CallsFilter | None = None
    limit: int | None = None
    offset: int | None = None
    sort_by: list[SortBy] | None = None
    query: dict[str, Any] | None = None
    columns: list[str] | None = None


class CallUpdateReq(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project_id: str
    call_id: str
    display_name: str | None = None
    wb_user_id: str | None = None


class CallsDeleteReq(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project_id: str
    call_ids: list[str]
    wb_user_id: str | None = None


class CallReadReq(BaseModel):
    model_config = ConfigDict(extra="allow")

    project_id: str
    id: str


# ---- the server rules beyond the request models ------------------------------------------
#
# What weave's server refuses in a call it has parsed, with its status (400) and its words,
# so that a client (the weave SDK drops a batch on a 400 and splits it on a 422) sees here
# what it would see there. Read off weave's validation.py / validation_util.py and the
# reference server's use of them: ids, lengths and wb_run_step on starts and completed calls,
# the id alone on ends, weave:/// strings anywhere. What weave's SQLite server stores is
# stored: any wb_run_id, an empty op_name, a negative wb_run_step_end, a 16- or 32-character
# lowercase id of any letters.

MAX_OP_NAME = 128
MAX_DISPLAY_NAME = 1024


def _id_problem(value: Any, span_len: int) -> str | None:
    """weave's call_id_validator (span_len 16) / trace_id_validator (32): its message or None."""
    if not isinstance(value, str):
        return None
    if value.lower() == value and len(value) == span_len:
        return None  # an OpenTelemetry id: weave checks case and length only
    if value.lower() != value:
        return f"Invalid UUID: {value}. UUID must be lowercase"
    try:
        parsed = str(uuid.UUID(value))
    except ValueError:
        return f"Invalid UUID: {value}. Unable to parse"
    if parsed != value:
        return f"Invalid UUID: {value}. UUID did not round-trip"
    return None


def _start_problem(call: Mapping[str, Any]) -> str | None:
    """The first of weave's refusals of a started or completed call, in its order."""
    for field, span_len in (("id", 16), ("trace_id", 32), ("parent_id", 16)):
        problem = _id_problem(call.get(field), span_len)
        if problem:
            return problem
    display = call.get("display_name")
    if isinstance(display, str) and len(display) > MAX_DISPLAY_NAME:
        return f"String too long: {display}. Max length is {MAX_DISPLAY_NAME}"
    op = call.get("op_name")
    if isinstance(op, str) and not op.startswith("weave:") and len(op) > MAX_OP_NAME:
        return f"String too long: {op}. Max length is {MAX_OP_NAME}"
    step = call.get("wb_run_step")
    if isinstance(step, int) and step < 0:
        return "wb_run_step must be non-negative"
    return None


def _ref_problem(call: Mapping[str, Any]) -> str | None:
    """weave's server rewrites every `weave:///` string of a call (op_name included) into its
    internal form, refusing one that is not `entity/project/…` with both parts non-empty,
    and refuses its own internal form in uploads (weave's trace_server_converter, in its
    order: the first such value of the call, depth first)."""
    stack: list[Any] = [call]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if value.startswith(rules.OP_REF_PREFIX):
                parts = value[len(rules.OP_REF_PREFIX) :].split("/", 2)
                if len(parts) != 3:
                    return f"Invalid URI: {value}"
                if not parts[0] or not parts[1]:
                    return f"Invalid project_id '{parts[0]}/{parts[1]}': expected 'entity/project'"
            elif value.startswith(rules.INTERNAL_REF_PREFIX):
                if len(value[len(rules.INTERNAL_REF_PREFIX) :].split("/", 2)) < 2:
                    return "Invalid internal ref format: missing project_id or kind."
                return "Encountered unexpected internal ref format."
        elif isinstance(value, Mapping):
            stack.extend(reversed(list(value.values())))
        elif isinstance(value, list):
            stack.extend(reversed(value))
    return None


def _check_calls(starts: list[Mapping[str, Any]], ends: list[Mapping[str, Any]]) -> None:
    """weave's refusals of these call halves → one 400 `{"reason": …}`, as weave answers."""
    for call in starts + ends:
        check_project(call["project_id"])
    for call in starts:
        problem = _start_problem(call)
        if problem:
            raise refusal(400, problem)
    for call in ends:
        problem = _id_problem(call.get("id"), 16)
        if problem:
            raise refusal(400, problem)
    for call in starts + ends:
        problem = _ref_problem(call)
        if problem:
            raise refusal(400, problem)


def _same_project(entity: str | None, project: str | None, calls: list[Any]) -> None:
    """v2 routes name the project in the path; a body that says otherwise is a 400."""
    if entity is None:
        return
    expected = f"{entity}/{project}"
    for call in calls:
        if call["project_id"] != expected:
            raise refusal(
                400,
                f"project_id {call['project_id']!r} does not match route project {expected!r}",
            )


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
        _same_project(entity, project, [data["start"]])
        _check_calls([data["start"]], [])
        return self.store.call_start(data["start"])

    def call_end(self, body: bytes, entity: str | None = None, project: str | None = None) -> Any:
        data = parse_body(body)
        validate_body(CallEndReq, data)
        _same_project(entity, project, [data["end"]])
        _check_calls([], [data["end"]])
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
        _check_calls(halves["start"], halves["end"])
        return {"res": self.store.upsert_batch(items)}

    def calls_complete(self, body: bytes, entity: str, project: str) -> Any:
        data = parse_body(body)
        validate_body(CallsUpsertCompleteReq, data)
        calls = data["batch"]
        _same_project(entity, project, calls)
        _check_calls(calls, [])
        self.store.calls_complete(calls)
        return {}

    def _query_args(self, body: bytes, model: type[BaseModel] = CallsQueryReq) -> dict[str, Any]:
        return parse_checked(body, model)

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
        by_call = store_objects.feedback_by_call(self.store, project_id)
        for row in rows:
            row["summary"].setdefault("weave", {})["feedback"] = by_call.get(row["id"], [])
            yield row

    def query_stats(self, body: bytes) -> Any:
        """weave's SQLite server: count capped at limit, has_more when the cap is reached,
        storage summed only when asked for (else 0)."""
        d = self._query_args(body)
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
        problem = _id_problem(d["call_id"], 16) or (
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


# ---- the app ------------------------------------------------------------------------


_REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    CallStartReq,
    CallEndReq,
    CallCreateBatchReq,
    CallsUpsertCompleteReq,
    CallsQueryReq,
    CallReadReq,
    CallUpdateReq,
    CallsDeleteReq,
    *OBJECT_REQUEST_MODELS,
)


def create_app(
    store: Store,
    *,
    api_key: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    log: Callable[[str], None] | None = None,
) -> ASGIApp:
    """The ASGI app: FastAPI routes wrapped in the auth / size / request-log guard."""
    h = _Handlers(store)
    app = FastAPI(
        redirect_slashes=False,
        title="tracecli serve",
        version=__version__,
        description="The tracecli embedded store behind the Weave trace-server routes.",
    )

    async def read_body(request: Request) -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise refusal(413, "Request too large")
            chunks.append(chunk)
        return b"".join(chunks)

    async def handle(fn: Callable[..., Any], request: Request, *args: Any) -> Response:
        try:
            body = await read_body(request)
            if len(body) <= _INLINE_BYTES:  # ~0.2 ms of work: a thread hop would cost more
                result = run_guarded(fn, body, *args)
            else:
                result = await run_in_threadpool(run_guarded, fn, body, *args)
        except HttpError as exc:
            return json_response(exc.content, exc.status, exc.headers)
        except Exception:
            log_exception(request)
            return json_response({"reason": "Internal server error"}, 500)
        return json_response(result)

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

    @app.get("/health", tags=["Service"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/tracecli/projects", tags=["Service"])
    async def projects() -> dict[str, list[str]]:
        """tracecli's own: the projects that hold calls, the most recently active first, so
        `tracecli tail --server` can pick one as it does for the store (weave has no such
        route; tail then asks for --project)."""
        return {"projects": await run_in_threadpool(store.projects)}

    @app.get("/server_info", tags=["Service"])
    async def server_info() -> dict[str, str]:
        return {
            "min_required_weave_python_version": "0.0.0",
            "trace_server_version": f"tracecli-{__version__}",
        }

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
        try:
            body = await read_body(request)
            rows = await run_in_threadpool(run_guarded, h.stream_query, body)
        except HttpError as exc:
            return json_response(exc.content, exc.status, exc.headers)
        except Exception:
            log_exception(request)
            return json_response({"reason": "Internal server error"}, 500)
        return StreamingResponse(_stream(rows), media_type="application/jsonl")

    @app.post("/calls/query_stats", tags=["Calls"], openapi_extra=body_doc(CallsQueryReq))
    async def calls_query_stats(request: Request) -> Response:
        return await handle(h.query_stats, request)

    @app.post("/call/read", tags=["Calls"], openapi_extra=body_doc(CallReadReq))
    async def call_read(request: Request) -> Response:
        return await handle(h.call_read, request)

    sdk_route(app, handle, "/call/update", CallUpdateReq, h.call_update)
    sdk_route(app, handle, "/calls/query", CallsQueryReq, h.calls_query)
    sdk_route(app, handle, "/calls/delete", CallsDeleteReq, h.calls_delete)
    add_object_routes(app, store, handle=handle, read_body=read_body)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            _, defs = models_json_schema(
                [(m, "validation") for m in _REQUEST_MODELS],
                ref_template="#/components/schemas/{model}",
            )
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {}).update(defs.get("$defs", {}))
            components["securitySchemes"] = {
                "HTTPBasic": {"type": "http", "scheme": "basic"},
                "HTTPBearer": {"type": "http", "scheme": "bearer"},
            }
            app.openapi_schema = schema
        return app.openapi_schema

    # Anything else: a 404 naming the route, never a redirect (FastAPI's trailing-slash
    # redirect is off), so a client learns at once what serve lacks. The links the weave SDK
    # prints (…/me/demo/weave, …/me/demo/r/call/ID) land here too: the answer says how to
    # see the project without a web UI.
    @app.api_route(
        "/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
        include_in_schema=False,
    )
    async def not_found(path: str, request: Request) -> Response:
        detail = f"tracecli serve has no route {request.method} /{path}"
        parts = path.split("/")
        if request.method == "GET" and len(parts) >= 2 and all(parts[:2]):
            base = str(request.base_url).rstrip("/")
            detail += (
                " (it has no web UI; to see this project's calls: "
                f"tracecli tail --server {base} --project {parts[0]}/{parts[1]})"
            )
        return json_response({"detail": detail}, 404)

    app.openapi = openapi  # type: ignore[method-assign]
    return Guard(app, api_key=api_key, max_body_bytes=max_body_bytes, log=log)


# ---- auth, size limit and the request log, before any routing ---------------------------


def auth_ok(header: bytes | None, api_key: str) -> bool:
    """`Basic base64(<any user>:KEY)` (the SDK sends user `api`) or `Bearer KEY`."""
    if not header:
        return False
    scheme, _, value = header.decode("latin-1").partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        given = value.strip()
    elif scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        given = decoded.partition(":")[2]
    else:
        return False
    return hmac.compare_digest(given.encode(), api_key.encode())


class Guard:
    """Pure-ASGI wrapper: 401 without the key, 413 on a declared size over the limit, and
    one log line per request (never a header, so never the key)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_key: str | None,
        max_body_bytes: int,
        log: Callable[[str], None] | None,
    ) -> None:
        self.app, self.api_key, self.max_body_bytes, self.log = app, api_key, max_body_bytes, log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500
        headers = dict(scope.get("headers") or ())
        path = scope["path"]

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        length = headers.get(b"content-length", b"")
        try:
            if (
                self.api_key
                and path not in OPEN_PATHS
                and not auth_ok(headers.get(b"authorization"), self.api_key)
            ):
                await _send_json(
                    send_wrapper, 401, {"reason": "Unauthorized"}, {"WWW-Authenticate": "Basic"}
                )
            elif length.isdigit() and int(length) > self.max_body_bytes:
                await _send_json(send_wrapper, 413, {"reason": "Request too large"})
            else:
                await self.app(scope, receive, send_wrapper)
        except asyncio.CancelledError:
            status = "cancelled at shutdown"  # type: ignore[assignment]
            raise
        finally:
            if self.log is not None:
                client = scope.get("client")
                who = f"{client[0]}:{client[1]}" if client else "-"
                ms = (time.perf_counter() - t0) * 1000
                self.log(f'{who} "{scope["method"]} {path}" {status} {ms:.1f}ms')


async def _send_json(
    send: Send, status: int, content: Any, headers: Mapping[str, str] | None = None
) -> None:
    body = orjson.dumps(content)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


# ---- running it -------------------------------------------------------------------------


def bind(host: str, port: int) -> socket.socket:
    """A listening socket made as IPPROTO_TCP with TCP_NODELAY.

    asyncio only sets TCP_NODELAY on accepted sockets whose protocol is IPPROTO_TCP; a
    plain `socket.socket()` has protocol 0, and every response then waits ~44 ms for
    Nagle / delayed ACK (../shared/tools/bench/README.md).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise UsageError(f"cannot resolve --host {host!r}: {exc.strerror}") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(addr)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _loopback(sock: socket.socket) -> bool:
    try:
        return ipaddress.ip_address(sock.getsockname()[0]).is_loopback
    except ValueError:
        return False


def _stderr_line(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class _Stop(Exception):
    pass


class _QuietShutdown(logging.Filter):
    """Drops uvicorn's report of requests it cancels when the graceful shutdown times out
    (a client that sent half a request): a Ctrl-C is not an error, and the request log
    already says which request was cut."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, asyncio.CancelledError):
            return False
        return not str(record.msg).startswith("Cancel %s running task")


def serve(
    db: str,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    api_key: str | None = None,
    log: Callable[[str], None] = _stderr_line,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the store at `db` until Ctrl-C or SIGTERM; returns after a clean shutdown."""
    import uvicorn

    store = Store(db)
    try:
        sock = bind(host, port)
    except TracecliError:
        store.close()
        raise

    def _term(signum: int, frame: object) -> None:
        raise _Stop

    previous = None
    with contextlib.suppress(ValueError):  # not the main thread: the caller handles signals
        previous = signal.signal(signal.SIGTERM, _term)
    quiet = _QuietShutdown()
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addFilter(quiet)
    # From here on a Ctrl-C or SIGTERM, even before uvicorn takes over the signals, is a
    # clean stop (exit 0), never a traceback or a 130.
    try:
        app = create_app(store, api_key=api_key, log=log)
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            server_header=False,
            lifespan="off",
            timeout_graceful_shutdown=5,  # Ctrl-C never waits long on a slow client
        )
        server = uvicorn.Server(config)
        url = url_of(sock)
        log(
            f"tracecli serve: listening on {url} (store: {db}; "
            f"auth: {'API key required' if api_key else 'none'}); Ctrl-C to stop"
        )
        if not api_key and not _loopback(sock):
            log(
                "tracecli serve: warning: listening beyond this machine with no API key: "
                "anyone who can reach it can read and write the store (pass --api-key)"
            )
        if on_ready is not None:
            on_ready(url)
        server.run(sockets=[sock])
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        uvicorn_log.removeFilter(quiet)
        sock.close()
        store.close()
        log("tracecli serve: stopped")
