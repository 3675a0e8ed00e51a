"""The weave SDK's object, table, file and ref routes of `tracecli serve`, and its GraphQL.

`weave.init()` and `weave.publish()` need more than the call routes: the SDK stores op
code, datasets and files as objects and reads them back by ref, and asks W&B's GraphQL who
the user is. These routes make an unmodified program work against the embedded store
(tracecli.store.objects keeps the data, tracecli.store.feedback the feedback). They sit
apart from the call routes because they serve the SDK's bookkeeping, not the traces
tracecli validates and uploads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from tracecli.serve.feedback_rules import feedback_problem
from tracecli.serve.http import (
    Handle,
    HttpError,
    ProjectRequest,
    ReadBody,
    answer,
    body_doc,
    check_project,
    json_response,
    parse_body,
    parse_checked,
    refusal,
    sdk_route,
    unprocessable,
    validate_body,
)
from tracecli.store import feedback as store_feedback
from tracecli.store import objects as store_objects
from tracecli.store.db import Store

# ---- request models (weave's, the parts the store keeps) ------------------------------


class ObjSchemaForInsert(ProjectRequest):
    object_id: str
    val: Any
    builtin_object_class: str | None = None
    expected_digest: str | None = None
    wb_user_id: str | None = None


class ObjCreateReq(BaseModel):
    obj: ObjSchemaForInsert


class ObjReadReq(ProjectRequest):
    object_id: str
    digest: str
    metadata_only: bool | None = False


class TableSchemaForInsert(ProjectRequest):
    rows: list[dict[str, Any]]
    expected_digest: str | None = None


class TableCreateReq(BaseModel):
    table: TableSchemaForInsert


class TableRowFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    row_digests: list[str] | None = None


class TableSortBy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    direction: Literal["asc", "desc"]


class TableQueryReq(ProjectRequest):
    digest: str
    filter: TableRowFilter | None = None
    sort_by: list[TableSortBy] | None = None
    limit: int | None = None
    offset: int | None = None


class RefsReadBatchReq(BaseModel):
    refs: list[str]


class FileContentReadReq(BaseModel):
    project_id: str
    digest: str


class TableQueryStatsReq(ProjectRequest):
    digest: str


class ObjectVersionFilter(BaseModel):
    """weave's filter of object versions: an unknown key is a 422 there too."""

    model_config = ConfigDict(extra="forbid")

    base_object_classes: list[str] | None = None
    exclude_base_object_classes: list[str] | None = None
    leaf_object_classes: list[str] | None = None
    object_ids: list[str] | None = None
    is_op: bool | None = None
    latest_only: bool | None = None
    tags: list[str] | None = None
    aliases: list[str] | None = None


class ObjQueryReq(ProjectRequest):
    filter: ObjectVersionFilter | None = None
    limit: int | None = None
    offset: int | None = None
    sort_by: list[dict[str, Any]] | None = None
    metadata_only: bool | None = False


# Feedback: the weave 0.54 SDK sends keys weave 0.52's models lack (span_agent_name, …);
# they are accepted and not stored, so its call.feedback works here.
class FeedbackCreateReq(ProjectRequest):
    weave_ref: str
    feedback_type: str
    payload: dict[str, Any]
    id: str | None = None
    creator: str | None = None
    wb_user_id: str | None = None
    annotation_ref: str | None = None
    runnable_ref: str | None = None
    call_ref: str | None = None
    trigger_ref: str | None = None
    queue_id: str | None = None


class FeedbackCreateBatchReq(BaseModel):
    batch: list[FeedbackCreateReq]


class FeedbackReplaceReq(FeedbackCreateReq):
    feedback_id: str


class FeedbackQueryReq(ProjectRequest):
    fields: list[str] | None = None
    query: dict[str, Any] | None = None
    sort_by: list[dict[str, Any]] | None = None
    limit: int | None = None
    offset: int | None = None


class FeedbackPurgeReq(BaseModel):
    project_id: str
    query: dict[str, Any]


def _expect_digest(expected: str | None, actual: str, what: str) -> None:
    """A client-computed digest that is not ours: 409, in weave's words (`what` is its
    label: `obj 'name'`, `table (3 rows)`, `file`)."""
    if expected and expected != actual:
        raise refusal(409, f"Client {what} digest {expected} != server digest {actual}")


_NOT_IN_NAME = re.compile(r"[^\w._-]")


def _check_object_id(object_id: str) -> None:
    """weave's `object_id_validator`: letters, digits, `_`, `.`, `-` (Unicode letters too, as
    Python's `\\w`), else its 403 (as it answers old SDKs that did not clean names); then
    at most 128 characters (400)."""
    bad = list(dict.fromkeys(_NOT_IN_NAME.findall(object_id)))
    if bad:
        raise refusal(
            403,
            f"Invalid object name: {object_id}. Contains invalid characters: {bad}. Please "
            "upgrade your `weave` package to `>0.51.0` to prevent this error.",
        )
    if not object_id:
        raise refusal(403, "Object name cannot be empty")
    if len(object_id) > 128:
        raise refusal(400, f"String too long: {object_id}. Max length is 128")


def _check_feedback(item: dict[str, Any]) -> None:
    """A feedback item weave's server refuses is its 400, in its words, and not stored."""
    problem = feedback_problem(item)
    if problem is not None:
        raise refusal(400, problem)


def _multipart(body: bytes, content_type: str) -> dict[str, bytes]:
    """The fields of a multipart/form-data body (the SDK's /file/create), by name."""
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m:
        raise refusal(400, "file/create wants multipart/form-data with a boundary")
    fields: dict[str, bytes] = {}
    for part in body.split(b"--" + m.group(1).encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, content = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        if name:
            fields[name.group(1).decode()] = content.removesuffix(b"\r\n")
    return fields


# ---- request handling (runs in a worker thread when the body is big) ----------------------


@dataclass
class _ObjectHandlers:
    store: Store

    def obj_create(self, body: bytes) -> Any:
        data = parse_body(body)
        validate_body(ObjCreateReq, data)
        obj = data["obj"]
        check_project(obj["project_id"])
        expected = obj.get("expected_digest")
        label = f"obj {obj['object_id']!r}"
        _expect_digest(expected, store_objects.object_digest(obj.get("val")), label)
        _check_object_id(obj["object_id"])
        return store_objects.obj_create(self.store, obj)

    def obj_read(self, body: bytes) -> Any:
        d = parse_checked(body, ObjReadReq)
        obj = store_objects.obj_read(
            self.store, d["project_id"], d["object_id"], d["digest"], bool(d.get("metadata_only"))
        )
        return {"obj": obj}

    def table_create(self, body: bytes) -> Any:
        data = parse_body(body)
        validate_body(TableCreateReq, data)
        table = data["table"]
        check_project(table["project_id"])
        res = store_objects.table_create(self.store, table["project_id"], table["rows"])
        label = f"table ({len(table['rows'])} rows)"
        _expect_digest(table.get("expected_digest"), res["digest"], label)
        return res

    def table_query(self, body: bytes) -> Any:
        d = parse_checked(body, TableQueryReq)
        row_filter = d.get("filter") or {}
        query = store_objects.TableQuery(
            row_digests=row_filter.get("row_digests"),
            sort_by=d.get("sort_by"),
            limit=d.get("limit"),
            offset=d.get("offset"),
        )
        rows = store_objects.table_rows(self.store, d["project_id"], d["digest"], query)
        return {"rows": rows}

    def refs_read_batch(self, body: bytes) -> Any:
        data = parse_body(body)
        validate_body(RefsReadBatchReq, data)
        return {"vals": store_objects.refs_read_batch(self.store, data["refs"])}

    def file_create(self, body: bytes, content_type: str) -> Any:
        fields = _multipart(body, content_type)
        if "project_id" not in fields or "file" not in fields:
            raise unprocessable(
                [
                    {"type": "missing", "loc": ["body", name], "msg": "Field required"}
                    for name in ("project_id", "file")
                    if name not in fields
                ]
            )
        project_id = fields["project_id"].decode("utf-8", "replace")
        check_project(project_id)
        expected = fields.get("expected_digest", b"").decode("utf-8", "replace")
        _expect_digest(expected, store_objects.bytes_digest(fields["file"]), "file")
        return store_objects.file_create(self.store, project_id, fields["file"])

    def table_query_stats(self, body: bytes) -> Any:
        d = parse_checked(body, TableQueryStatsReq)
        return {"count": store_objects.table_row_count(self.store, d["project_id"], d["digest"])}

    def objs_query(self, body: bytes) -> Any:
        d = parse_checked(body, ObjQueryReq)
        objs = store_objects.objs_query(
            self.store,
            d["project_id"],
            d.get("filter"),
            metadata_only=bool(d.get("metadata_only")),
            limit=d.get("limit"),
            offset=d.get("offset"),
            sort_by=d.get("sort_by"),
        )
        return {"objs": objs}

    def feedback_create(self, body: bytes) -> Any:
        d = parse_checked(body, FeedbackCreateReq)
        _check_feedback(d)
        return store_feedback.feedback_create(self.store, [d])[0]

    def feedback_batch_create(self, body: bytes) -> Any:
        data = parse_body(body)
        validate_body(FeedbackCreateBatchReq, data)
        for item in data["batch"]:
            check_project(item["project_id"])
            _check_feedback(item)
        return {"res": store_feedback.feedback_create(self.store, data["batch"])}

    def feedback_query(self, body: bytes) -> Any:
        d = parse_checked(body, FeedbackQueryReq)
        read = FeedbackQueryReq.model_validate(d)  # "2" and 2.0 are 2, as in weave's model
        for name, value in (("Limit", read.limit), ("Offset", read.offset)):
            if value is not None and value < 0:
                raise refusal(400, f"{name} must be non-negative")  # weave's words
        d["limit"], d["offset"] = read.limit, read.offset
        result = store_feedback.feedback_query(
            self.store,
            d["project_id"],
            query=d.get("query"),
            fields=d.get("fields"),
            sort_by=d.get("sort_by"),
            limit=d.get("limit"),
            offset=d.get("offset"),
        )
        return {"result": result}

    def feedback_purge(self, body: bytes) -> Any:
        d = parse_checked(body, FeedbackPurgeReq)
        store_feedback.feedback_purge(self.store, d["project_id"], d["query"])
        return {}

    def feedback_replace(self, body: bytes) -> Any:
        d = parse_checked(body, FeedbackReplaceReq)
        _check_feedback(d)  # before the purge: a refused replacement keeps the old one
        by_id = {"$expr": {"$eq": [{"$getField": "id"}, {"$literal": d.pop("feedback_id")}]}}
        store_feedback.feedback_purge(self.store, d["project_id"], by_id)
        return store_feedback.feedback_create(self.store, [d])[0]

    def file_content(self, body: bytes) -> bytes:
        d = parse_checked(body, FileContentReadReq)
        return store_objects.file_content(self.store, d["project_id"], d["digest"])


OBJECT_REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    ObjCreateReq,
    ObjReadReq,
    TableCreateReq,
    TableQueryReq,
    RefsReadBatchReq,
    FileContentReadReq,
    TableQueryStatsReq,
    ObjQueryReq,
    FeedbackCreateReq,
    FeedbackCreateBatchReq,
    FeedbackReplaceReq,
    FeedbackQueryReq,
    FeedbackPurgeReq,
)


def _octets(content: bytes) -> Response:
    return Response(content, media_type="application/octet-stream")


# ---- the routes ---------------------------------------------------------------------------


def add_object_routes(app: FastAPI, store: Store, *, handle: Handle, read_body: ReadBody) -> None:
    """Register the SDK's object/table/file/ref routes and the GraphQL stand-in on `app`."""
    h = _ObjectHandlers(store)

    # weave.init() asks W&B's GraphQL API (WANDB_BASE_URL) who the user is and whether the
    # project exists before it talks to the trace server; pointing WANDB_BASE_URL here too
    # lets an unmodified program log to `tracecli serve` with no W&B account at all.
    @app.post("/graphql", tags=["Service"], include_in_schema=False)
    async def graphql(request: Request) -> Response:
        try:
            body = orjson.loads(await read_body(request) or b"{}")
        except (HttpError, orjson.JSONDecodeError):
            body = {}
        body = body if isinstance(body, dict) else {}
        query = str(body.get("query") or "")
        variables = v if isinstance(v := body.get("variables"), dict) else {}
        if "viewer" in query:
            data: Any = {"viewer": {"username": "tracecli", "defaultEntity": {"name": "tracecli"}}}
        elif "upsertModel" in query:
            data = {"upsertModel": {"model": {"name": variables.get("name"), "description": ""}}}
        elif "project(" in query:
            data = {"project": {"name": variables.get("name")}}
        elif "serverInfo" in query:
            data = {"serverInfo": {"frontendHost": ""}}
        else:
            return json_response(
                {"data": None, "errors": [{"message": "tracecli serve answers only weave.init"}]}
            )
        return json_response({"data": data})

    sdk_route(app, handle, "/obj/create", ObjCreateReq, h.obj_create)
    sdk_route(app, handle, "/obj/read", ObjReadReq, h.obj_read)
    sdk_route(app, handle, "/table/create", TableCreateReq, h.table_create)
    sdk_route(app, handle, "/table/query", TableQueryReq, h.table_query)
    sdk_route(app, handle, "/refs/read_batch", RefsReadBatchReq, h.refs_read_batch)
    sdk_route(app, handle, "/table/query_stats", TableQueryStatsReq, h.table_query_stats)
    sdk_route(app, handle, "/objs/query", ObjQueryReq, h.objs_query)
    sdk_route(app, handle, "/feedback/create", FeedbackCreateReq, h.feedback_create)
    sdk_route(
        app, handle, "/feedback/batch/create", FeedbackCreateBatchReq, h.feedback_batch_create
    )
    sdk_route(app, handle, "/feedback/query", FeedbackQueryReq, h.feedback_query)
    sdk_route(app, handle, "/feedback/purge", FeedbackPurgeReq, h.feedback_purge)
    sdk_route(app, handle, "/feedback/replace", FeedbackReplaceReq, h.feedback_replace)

    async def file_create(request: Request) -> Response:
        return await handle(h.file_create, request, request.headers.get("content-type", ""))

    async def file_content(request: Request) -> Response:
        return await answer(read_body, h.file_content, request, respond=_octets)

    for prefix in ("/file", "/files"):  # the 0.54 SDK says /file, older ones /files
        app.post(f"{prefix}/create", tags=["Objects"])(file_create)
        app.post(f"{prefix}/content", tags=["Objects"], openapi_extra=body_doc(FileContentReadReq))(
            file_content
        )
