"""`tracecli serve`: the embedded store behind the Weave trace-server routes (ASGI, uvicorn).

The uploader, the Weave SDK and curl talk to it exactly as to a Weave server: the same
paths, the same request models (tracecli.schema.weave), and weave's own server's answers —
`{"detail": [...]}` 422s for bodies that do not fit the models, `{"reason": ...}` 400s in
its words for the fields it refuses (checked in tracecli.serve.call_rules, not by
`validate`'s rules: the SDK drops a batch on a 400 and splits it on a 422, so the status
must be weave's), 401/413. Bodies are read as weave's server reads them (integers of any
size exact) and validated once; the raw dicts are stored, so what was sent is what comes
back.

/openapi.json documents the request bodies with the same models (a test compares it with
../shared/spec). Everything heavier than a header check runs in a worker thread, so a big
batch never stalls `/health` or a query. The call routes are in
tracecli.serve.calls, the weave SDK's object/table/file routes in tracecli.serve.objects, the
body parsing and refusal shapes they share in tracecli.serve.http, the key and size checks in
tracecli.serve.guard, and the listening socket and uvicorn in tracecli.serve.listen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp

from tracecli import __version__
from tracecli.serve.calls import CALL_REQUEST_MODELS, add_call_routes
from tracecli.serve.guard import Guard
from tracecli.serve.http import answer, body_reader, json_response
from tracecli.serve.objects import OBJECT_REQUEST_MODELS, add_object_routes
from tracecli.store.db import Store

MAX_BODY_BYTES = 32 * 1024 * 1024  # the limit the weave SDK assumes
_INLINE_BYTES = 16 * 1024  # smaller write bodies are handled on the event loop itself
_REQUEST_MODELS: tuple[type[BaseModel], ...] = (*CALL_REQUEST_MODELS, *OBJECT_REQUEST_MODELS)


class _App(FastAPI):
    """FastAPI whose /openapi.json documents every request body with its model (the routes
    read raw bodies, so FastAPI would not see the models on its own)."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = get_openapi(
                title=self.title,
                version=self.version,
                description=self.description,
                routes=self.routes,
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
            self.openapi_schema = schema
        return self.openapi_schema


def create_app(
    store: Store,
    *,
    api_key: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    log: Callable[[str], None] | None = None,
) -> ASGIApp:
    """The ASGI app: FastAPI routes wrapped in the auth / size / request-log guard."""
    app = _App(
        redirect_slashes=False,
        title="tracecli serve",
        version=__version__,
        description="The tracecli embedded store behind the Weave trace-server routes.",
    )

    read_body = body_reader(max_body_bytes)

    async def handle(fn: Callable[..., Any], request: Request, *args: Any) -> Response:
        return await answer(read_body, fn, request, *args, inline_bytes=_INLINE_BYTES)

    _add_service_routes(app, store)
    add_call_routes(app, store, handle=handle, read_body=read_body)
    add_object_routes(app, store, handle=handle, read_body=read_body)
    _add_not_found(app)  # last: it answers every path the others do not
    return Guard(app, api_key=api_key, max_body_bytes=max_body_bytes, log=log)


def _add_service_routes(app: FastAPI, store: Store) -> None:
    """/health, /server_info, and tracecli's own /tracecli/projects."""

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


def _add_not_found(app: FastAPI) -> None:
    """Anything else: a 404 naming the route, never a redirect (FastAPI's trailing-slash
    redirect is off), so a client learns at once what serve lacks. The links the weave SDK
    prints (…/me/demo/weave, …/me/demo/r/call/ID) land here too: the answer says how to
    see the project without a web UI."""

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
