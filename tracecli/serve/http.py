"""How `tracecli serve` reads a body and answers a refusal, shared by its route modules.

Clients (the uploader, the weave SDK) tell a retryable failure from a final one by the
shape of the answer, so every route must refuse exactly as weave's server does:
`{"detail": [...]}` for a 422, `{"reason": ...}` for the rest. Keeping the parsing, the
error shapes and the OpenAPI body documentation in one place keeps the routes agreeing.
"""

from __future__ import annotations

import sqlite3
import sys
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tracecli.schema import rules
from tracecli.store.exact_json import TooDeep, dumps_exact, loads_exact
from tracecli.store.objects import NotFound
from tracecli.store.query import QueryError
from tracecli.store.rows import StoreError

# ---- the two kinds of weave request ----------------------------------------------------


class ProjectRequest(BaseModel):
    """A weave request about one project, open to keys newer SDKs add (as weave's server is)."""

    model_config = ConfigDict(extra="allow")

    project_id: str


class ClosedProjectRequest(BaseModel):
    """A weave request about one project that refuses unknown keys (422), as weave's does."""

    model_config = ConfigDict(extra="forbid")

    project_id: str


# ---- errors as responses ------------------------------------------------------------


class HttpError(Exception):
    def __init__(self, status: int, content: Any, headers: Mapping[str, str] | None = None):
        super().__init__(status)
        self.status, self.content, self.headers = status, content, dict(headers or {})


def json_response(
    content: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    try:
        body = dumps_exact(content)
    except (TypeError, ValueError, RecursionError):
        # A 422 echoes the refused input, as weave's server does; a deeply nested one cannot
        # be encoded, and a 500 here would be retried by clients until they give up.
        if isinstance(content, dict) and isinstance(content.get("detail"), list):
            content = {
                "detail": [{k: v for k, v in e.items() if k != "input"} for e in content["detail"]]
            }
        body = orjson.dumps(content, default=str)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def refusal(status: int, reason: str) -> HttpError:
    return HttpError(status, {"reason": reason})


def unprocessable(errors: list[dict[str, Any]]) -> HttpError:
    return HttpError(422, {"detail": errors})


def _pydantic_errors(exc: ValidationError, prefix: tuple[Any, ...] = ("body",)) -> HttpError:
    errors: list[dict[str, Any]] = []
    for err in exc.errors(include_url=False):
        errors.append({**err, "loc": [*prefix, *err["loc"]]})
    return unprocessable(errors)


def parse_body(body: bytes) -> Any:
    if not body:
        return _missing_body()
    try:
        return loads_exact(body)
    except (TooDeep, UnicodeDecodeError):
        # FastAPI's answer (so weave's) when its json.loads hits the recursion limit or
        # the body is not UTF-8: anything but a JSONDecodeError is a 400, not a 422
        raise HttpError(400, {"detail": "There was an error parsing the body"}) from None
    except ValueError as exc:  # json.JSONDecodeError, nested too deeply
        raise unprocessable(
            [
                {
                    "type": "json_invalid",
                    "loc": ["body", getattr(exc, "pos", 0)],
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": getattr(exc, "msg", str(exc))},
                }
            ]
        ) from None


def _missing_body() -> Any:
    raise unprocessable(
        [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
    )


def validate_body(model: type[BaseModel], data: Any) -> None:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        raise _pydantic_errors(exc) from None


def check_project(project_id: str) -> None:
    if list(rules.check_project_id(project_id)):
        raise refusal(400, f"Invalid project_id {project_id!r}: expected 'entity/project'")


def parse_checked(body: bytes, model: type[BaseModel]) -> dict[str, Any]:
    """A body that names a project: parsed, validated against `model`, project checked."""
    data: dict[str, Any] = parse_body(body)
    validate_body(model, data)
    check_project(data["project_id"])
    return data


def run_guarded(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except QueryError as exc:
        raise refusal(400, str(exc)) from None
    except NotFound as exc:
        raise refusal(404, str(exc)) from None
    except StoreError as exc:
        raise refusal(400, str(exc)) from None
    except RecursionError:
        # A value nested too deeply to store (~950 levels): weave's server fails the same
        # request with the same 500; not our bug, so no traceback in the log.
        sys.stderr.write("tracecli serve: a request nested too deeply to store (500)\n")
        raise HttpError(500, {"reason": "Internal server error"}) from None
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise HttpError(503, {"reason": "store busy, retry"}, {"Retry-After": "1"}) from None
        raise


def log_exception(request: Request) -> None:
    """A 500 is our bug: keep its traceback on stderr (bodies and headers are not logged)."""
    sys.stderr.write(f"tracecli serve: internal error on {request.url.path}:\n")
    traceback.print_exc(file=sys.stderr)


# ---- OpenAPI documentation of a request body ----------------------------------------


def _security() -> list[dict[str, list[str]]]:
    return [{"HTTPBasic": []}, {"HTTPBearer": []}]


def _ref(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


_REASON = {"application/json": {"schema": {"type": "object", "properties": {"reason": {}}}}}
_ERROR_RESPONSES = {
    "400": {"description": "Invalid request (project mismatch, query)", "content": _REASON},
    "401": {"description": "Missing or wrong API key", "content": _REASON},
    "413": {"description": "Body over 32 MiB", "content": _REASON},
    "422": {"description": "Validation Error", "content": _ref("HTTPValidationError")},
}


def body_doc(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {"content": _ref(model.__name__), "required": True},
        "responses": _ERROR_RESPONSES,
        "security": _security(),
    }


# What create_app hands to a route module: reading a body under the size limit, and running
# a handler on it (in a worker thread when big) to a JSON answer or a refusal.
ReadBody = Callable[[Request], Awaitable[bytes]]
Handle = Callable[..., Awaitable[Response]]


def body_reader(max_body_bytes: int) -> ReadBody:
    """A body reader that refuses (413) as soon as a body passes the limit, before it is all
    in memory."""

    async def read_body(request: Request) -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise refusal(413, "Request too large")
            chunks.append(chunk)
        return b"".join(chunks)

    return read_body


async def answer(
    read_body: ReadBody,
    fn: Callable[..., Any],
    request: Request,
    *args: Any,
    respond: Callable[[Any], Response] = json_response,
    inline_bytes: int = 0,
) -> Response:
    """`respond(fn(body, *args))`, or the refusal weave's server would give; a 500 is our bug
    and logs its traceback. A body up to `inline_bytes` is handled on the event loop (~0.2 ms
    of work: a thread hop would cost more), a bigger one in a worker thread, so a big batch
    never stalls `/health` or a query."""
    try:
        body = await read_body(request)
        if len(body) <= inline_bytes:
            result = run_guarded(fn, body, *args)
        else:
            result = await run_in_threadpool(run_guarded, fn, body, *args)
    except HttpError as exc:
        return json_response(exc.content, exc.status, exc.headers)
    except Exception:
        log_exception(request)
        return json_response({"reason": "Internal server error"}, 500)
    return respond(result)


def sdk_route(
    app: FastAPI, handle: Handle, path: str, model: type[BaseModel], fn: Callable[..., Any]
) -> None:
    """A POST route of the weave SDK's that answers `fn(body)` as JSON."""

    async def endpoint(request: Request) -> Response:
        return await handle(fn, request)

    endpoint.__name__ = "sdk_" + path.strip("/").replace("/", "_")
    app.post(path, tags=["Objects"], openapi_extra=body_doc(model))(endpoint)
