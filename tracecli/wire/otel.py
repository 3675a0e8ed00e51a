"""Weave's OpenTelemetry route (`--mode otel`): its route key, and a chunk's request body.

A chunk's items are one-span requests (see tracecli.upload.otlp); what goes to the server is
one `ExportTraceServiceRequest` in OTLP protobuf (tracecli.wire.otlp_proto) holding them all,
the spans of one resource and scope put together again, in the order read. The project rides
in the route key (chunks are made per route) and goes to the server as the `project_id`
header, which weave's route reads when a resource names no `wandb.entity`/`wandb.project`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from tracecli.wire.otlp_answers import PartialSuccess, read_response, read_status_message
from tracecli.wire.otlp_proto import Shell, SpanBytes, export_request, request_spans
from tracecli.wire.otlp_values import EncodeError

OTEL_TRACES = "/otel/v1/traces"
_SEP = "#"


def otel_route(project: str) -> str:
    return f"{OTEL_TRACES}{_SEP}{project}"


def is_otel_route(route: str) -> bool:
    return route.startswith(OTEL_TRACES + _SEP)


def route_project(route: str) -> tuple[str, str]:
    """(the path to post to, the project) of an OTel route key."""
    path, _, project = route.partition(_SEP)
    return path, project


def otel_items(batch_body: bytes) -> list[Any]:
    """The items of a chunk's `{"batch": [items]}` (each a project and a one-span request)."""
    items: list[Any] = orjson.loads(batch_body)["batch"]
    return items


class OtelChunk(NamedTuple):
    """A chunk's items encoded: the spans of each (None: it could not be encoded, see
    `refused`), and the (project, span id) of each item, in order."""

    spans: list[list[SpanBytes] | None]
    keys: list[tuple[str, str]]
    refused: dict[int, str]  # item index → why it cannot be sent

    def body(self, indices: list[int]) -> bytes:
        """The ExportTraceServiceRequest (protobuf) of these items."""
        return export_request([sb for n in indices for sb in self.spans[n] or ()])

    def sendable(self) -> list[int]:
        return [n for n in range(len(self.spans)) if n not in self.refused]


def otel_chunk(items: list[Any]) -> OtelChunk:
    """Items (each a project and a one-span request) → their spans encoded as protobuf."""
    spans: list[list[SpanBytes] | None] = []
    keys: list[tuple[str, str]] = []
    refused: dict[int, str] = {}
    memo: dict[bytes, Shell] = {}
    for n, item in enumerate(items):
        request = item["request"]
        try:
            spans.append(request_spans(request, memo))
        except EncodeError as exc:
            spans.append(None)
            refused[n] = f"cannot be written as OTLP protobuf: {exc}"
        keys.append((item["project"], _span_id(request)))
    return OtelChunk(spans, keys, refused)


def _span_id(request: Any) -> str:
    """The span id of a one-span request, lowercase hex ("" when it has none)."""
    for rs in request.get("resourceSpans") or request.get("resource_spans") or []:
        for ss in rs.get("scopeSpans") or rs.get("scope_spans") or []:
            for span in ss.get("spans") or []:
                return str(span.get("spanId") or span.get("span_id") or "").lower()
    return ""


def partial_success(body: Any) -> PartialSuccess | None:
    """What an OTLP answer says was rejected (`partial_success`), from its protobuf bytes
    or its JSON; None when it rejected nothing."""
    if isinstance(body, bytes):
        got = read_response(body)
        return got if got and got.rejected_spans else None
    if not isinstance(body, dict):
        return None
    partial = body.get("partialSuccess") or body.get("partial_success") or {}
    if not isinstance(partial, dict):
        return None
    try:
        rejected = int(partial.get("rejectedSpans") or partial.get("rejected_spans") or 0)
    except (TypeError, ValueError):
        return None
    text = partial.get("errorMessage") or partial.get("error_message")
    return PartialSuccess(rejected, str(text) if text else "") if rejected else None


def failure_message(body: Any) -> str | None:
    """The message of a protobuf error answer (a google.rpc.Status, as OTLP/HTTP servers
    answer a protobuf request); None when the answer is not one."""
    return read_status_message(body) if isinstance(body, bytes) else None
