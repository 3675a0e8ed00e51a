"""Weave's OpenTelemetry route (`--mode otel`): its route key, and a chunk's request body.

A chunk's items are one-span requests (see tracecli.upload.otlp); what goes to the server is
one `ExportTraceServiceRequest` in OTLP/JSON holding them all, the spans of one resource and
scope put together again, in the order read. The project rides in the route key (chunks are
made per route) and goes to the server as the `project_id` header, which weave's route reads
when a resource names no `wandb.entity`/`wandb.project`.
"""

from __future__ import annotations

from typing import Any

import orjson

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


def otel_body(items: list[Any]) -> tuple[bytes, list[tuple[str, str]]]:
    """Items → (the ExportTraceServiceRequest to send, the (project, span id) of each
    span, in order: one per item)."""
    resources: dict[bytes, dict[str, Any]] = {}
    scopes: dict[tuple[bytes, bytes], list[Any]] = {}
    keys: list[tuple[str, str]] = []
    for item in items:
        for rs in item["request"]["resourceSpans"]:
            shell = {k: v for k, v in rs.items() if k not in ("scopeSpans", "scope_spans")}
            rkey = orjson.dumps(shell, option=orjson.OPT_SORT_KEYS)
            resource = resources.get(rkey)
            if resource is None:
                resource = resources[rkey] = {**shell, "scopeSpans": []}
            for ss in rs.get("scopeSpans") or rs.get("scope_spans") or []:
                sshell = {k: v for k, v in ss.items() if k != "spans"}
                skey = (rkey, orjson.dumps(sshell, option=orjson.OPT_SORT_KEYS))
                spans = scopes.get(skey)
                if spans is None:
                    spans = scopes[skey] = []
                    resource["scopeSpans"].append({**sshell, "spans": spans})
                spans.extend(ss.get("spans") or [])
                for span in ss.get("spans") or []:
                    sid = span.get("spanId") or span.get("span_id") or ""
                    keys.append((item["project"], str(sid).lower()))
    body = orjson.dumps({"resourceSpans": list(resources.values())})
    return body, keys


def rejected_spans(body: Any) -> int:
    """How many spans an OTLP answer says were rejected (`partialSuccess.rejectedSpans`)."""
    if not isinstance(body, dict):
        return 0
    partial = body.get("partialSuccess") or body.get("partial_success") or {}
    try:
        return int(partial.get("rejectedSpans") or partial.get("rejected_spans") or 0)
    except (TypeError, ValueError, AttributeError):
        return 0


def partial_message(body: Any) -> str:
    partial = body.get("partialSuccess") or {} if isinstance(body, dict) else {}
    text = partial.get("errorMessage") if isinstance(partial, dict) else None
    return str(text) if text else "the server rejected this span (partialSuccess)"
