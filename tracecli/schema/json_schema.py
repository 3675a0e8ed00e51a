"""JSON Schema of the record shapes tracecli reads, for editors and other tools.

Built from the same pydantic models `validate` uses, then tightened with the server rules of
`schema/rules.py` that JSON Schema can express (id formats, entity/project, name lengths,
status keys) and with tracecli's own needs (a start carries its id and trace_id), so an editor
flags most of what `validate` would. What it cannot express (pairing across records, time
order, Freeplay's epoch-vs-ISO hints) or would make every editor walk every value (reference
strings at any depth, integers beyond 64 bits) stays `validate`'s job.

Shapes are told apart the way `records.parse_record` does it, with if/then/else rather than
a bare anyOf, so an editor reports the errors of the shape a record is written in.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from tracecli.schema import rules
from tracecli.schema.freeplay import RecordPayload, TracePayload
from tracecli.schema.rules import META_KEY
from tracecli.schema.weave import (
    CallEndReq,
    CallStartReq,
    CompletedCallSchemaForInsert,
    EndedCallSchemaForInsert,
    StartedCallSchemaForInsert,
)

SHAPES = ("any", "flat", "batch", "request", "complete", "freeplay")
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _alt(*regexes: str) -> str:
    return "^(?:" + "|".join(r.strip("^$") for r in regexes) + ")$"


CALL_ID = _alt(rules.UUID_RE.pattern, rules.SPAN_ID_RE.pattern)
TRACE_ID = _alt(rules.UUID_RE.pattern, rules.TRACE_ID_RE.pattern)
PROJECT_ID = "^[^/]+/[^/]+$"
UUID4 = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"
UUID_ANY = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
META = {"type": "object", "description": "Added to rejected records by tracecli; ignored."}
# What pydantic (validate, and the Weave server) take for a datetime: an ISO 8601 date or
# date-time (offset optional, "T", "t" or a space between), or Unix seconds. JSON Schema's
# "date-time" format is RFC 3339 only, so an editor would flag records validate accepts.
DATETIME = {
    "anyOf": [
        {
            "type": "string",
            "pattern": r"^(?:\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
            r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?)?|\d+(?:\.\d+)?)$",
        },
        {"type": "number"},
    ],
    "description": "ISO 8601 date-time (e.g. 2026-01-01T12:00:00.000Z) or Unix seconds.",
}


def _string_rule(prop: dict[str, Any], rule: dict[str, Any]) -> None:
    """Add `rule` to the string branch of a property (`str` or `str | None`)."""
    branches = prop.get("anyOf", [prop])
    for branch in branches:
        if branch.get("type") == "string":
            branch.update(rule)


def _lax_datetimes(node: Any) -> Any:
    """Every `{"type": "string", "format": "date-time"}` below `node` replaced by DATETIME."""
    if isinstance(node, dict):
        if node.get("format") == "date-time":
            extra = {k: v for k, v in node.items() if k not in ("type", "format")}
            return {**extra, **copy.deepcopy(DATETIME)}
        return {k: _lax_datetimes(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_lax_datetimes(v) for v in node]
    return node


def _tighten_call(d: dict[str, Any]) -> None:
    d["properties"] = _lax_datetimes(d["properties"])
    props = d["properties"]
    _string_rule(props["project_id"], {"pattern": PROJECT_ID})
    for name in ("id", "parent_id"):
        if name in props:
            _string_rule(props[name], {"pattern": CALL_ID})
    if "trace_id" in props:
        _string_rule(props["trace_id"], {"pattern": TRACE_ID})
    if "op_name" in props:
        op = props["op_name"]
        op["anyOf"] = [
            {"maxLength": rules.MAX_OP_NAME},
            {"pattern": "^" + rules.OP_REF_PREFIX},
        ]
    if "display_name" in props:
        _string_rule(props["display_name"], {"maxLength": rules.MAX_DISPLAY_NAME})
    if "wb_run_id" in props:
        # any string is stored; validate warns when it is not the SDK's form
        props["wb_run_id"]["description"] = (
            "'<entity>/<project>/<run id>', as the weave SDK writes it"
        )
    for name in ("wb_run_step", "wb_run_step_end"):
        for branch in props.get(name, {}).get("anyOf", []):
            if branch.get("type") == "integer":
                branch["maximum"] = rules.INT64_MAX
                if name == "wb_run_step":  # weave's server stores a negative step end
                    branch["minimum"] = 0


@functools.cache
def _defs() -> dict[str, Any]:
    models: list[type[BaseModel]] = [
        StartedCallSchemaForInsert,
        EndedCallSchemaForInsert,
        CompletedCallSchemaForInsert,
        CallStartReq,
        CallEndReq,
        RecordPayload,
        TracePayload,
    ]
    _, top = models_json_schema([(m, "validation") for m in models], ref_template="#/$defs/{model}")
    defs: dict[str, Any] = copy.deepcopy(top["$defs"])
    for name in (
        "StartedCallSchemaForInsert",
        "EndedCallSchemaForInsert",
        "CompletedCallSchemaForInsert",
    ):
        _tighten_call(defs[name])
    started = defs["StartedCallSchemaForInsert"]
    # tracecli's own rule: without ids a start cannot be paired with its end or re-sent safely.
    started["required"] = [*started["required"], "id", "trace_id"]
    for name in ("id", "trace_id"):
        started["properties"][name] = {
            "type": "string",
            "pattern": CALL_ID if name == "id" else TRACE_ID,
            "description": "Required by tracecli (pairs the start with its end).",
        }
    status = defs.get("SummaryInsertMap", {}).get("properties", {}).get("status_counts")
    if status is not None:
        status.setdefault("propertyNames", {"enum": sorted(rules.STATUSES)})
    for name in ("CallStartReq", "CallEndReq"):
        defs[name]["properties"][META_KEY] = META
    defs.update(_freeplay_defs(defs))
    defs.update(_record_defs())
    return defs


def _freeplay_defs(defs: dict[str, Any]) -> dict[str, Any]:
    completion = copy.deepcopy(defs.pop("RecordPayload"))
    trace = copy.deepcopy(defs.pop("TracePayload"))
    session = {"type": "string", "pattern": UUID4, "description": "Freeplay session (UUID v4)."}
    project = {"type": "string", "pattern": UUID_ANY, "description": "Freeplay project id."}
    completion["properties"].update(session_id=session, project_id=project, **{META_KEY: META})
    completion["required"] = [*completion.get("required", []), "session_id"]
    completion["properties"]["messages"]["minItems"] = 1
    completion["title"] = "FreeplayCompletionRecord"
    trace_id = {"type": "string", "pattern": UUID4, "description": "Freeplay trace (UUID v4)."}
    trace["properties"].update(
        session_id=session, trace_id=trace_id, project_id=project, **{META_KEY: META}
    )
    trace["required"] = [*trace.get("required", []), "session_id", "trace_id"]
    trace["title"] = "FreeplayTraceRecord"
    return {"FreeplayCompletionRecord": completion, "FreeplayTraceRecord": trace}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/$defs/{name}"}


def _when(key: str, value: str, then: dict[str, Any]) -> dict[str, Any]:
    return {"if": {"properties": {key: {"const": value}}, "required": [key]}, "then": then}


def _record_defs() -> dict[str, Any]:
    flat = {
        "title": "FlatRecord",
        "description": 'A call half or a whole call with a "type" discriminator.',
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": ["start", "end", "call"]}},
        "allOf": [
            _when("type", "start", _ref("StartedCallSchemaForInsert")),
            _when("type", "end", _ref("EndedCallSchemaForInsert")),
            _when("type", "call", _ref("CompletedCallSchemaForInsert")),
        ],
    }
    batch = {
        "title": "BatchRecord",
        "description": "An item of /call/upsert_batch.",
        "type": "object",
        "required": ["mode", "req"],
        "properties": {"mode": {"enum": ["start", "end"]}, "req": {"type": "object"}},
        "allOf": [
            _when("mode", "start", {"properties": {"req": _ref("CallStartReq")}}),
            _when("mode", "end", {"properties": {"req": _ref("CallEndReq")}}),
        ],
    }
    request = {
        "title": "RequestRecord",
        "description": 'A /call/start or /call/end body: {"start": {...}} or {"end": {...}}.',
        "oneOf": [_ref("CallStartReq"), _ref("CallEndReq")],
    }
    complete = {
        "title": "CompleteRecord",
        "description": "A completed call, as /v2/{entity}/{project}/calls/complete takes it.",
        **_ref("CompletedCallSchemaForInsert"),
    }
    freeplay = {
        "title": "FreeplayRecord",
        "description": "A Freeplay completion or trace: the request body plus its path ids.",
        "oneOf": [_ref("FreeplayCompletionRecord"), _ref("FreeplayTraceRecord")],
    }

    def has(*keys: str) -> dict[str, Any]:
        return {"required": list(keys)}

    any_record = {
        "title": "Record",
        "description": "Any record shape tracecli reads, told apart as `validate` does.",
        "type": "object",
        "if": has("type"),
        "then": _ref("FlatRecord"),
        "else": {
            "if": has("mode", "req"),
            "then": _ref("BatchRecord"),
            "else": {
                "if": {
                    "anyOf": [has("start"), has("end")],
                    "propertyNames": {"enum": ["start", "end", META_KEY]},
                },
                "then": _ref("RequestRecord"),
                "else": {
                    "if": {"anyOf": [has("messages"), has("session_id")]},
                    "then": _ref("FreeplayRecord"),
                    "else": _ref("CompleteRecord"),
                },
            },
        },
    }
    return {
        "FlatRecord": flat,
        "BatchRecord": batch,
        "RequestRecord": request,
        "CompleteRecord": complete,
        "FreeplayRecord": freeplay,
        "Record": any_record,
    }


_ROOTS = {
    "any": "Record",
    "flat": "FlatRecord",
    "batch": "BatchRecord",
    "request": "RequestRecord",
    "complete": "CompleteRecord",
    "freeplay": "FreeplayRecord",
}


def record_schema(shape: str = "any", *, allow_list: bool = False) -> dict[str, Any]:
    """The JSON Schema (2020-12) of one record of `shape`; with `allow_list`, of a record or
    a list of records, which is what a YAML trace file holds."""
    if shape not in _ROOTS:
        raise ValueError(f"shape must be one of {', '.join(SHAPES)}, got {shape!r}")
    root = _ref(_ROOTS[shape])
    body: dict[str, Any] = (
        {"anyOf": [root, {"type": "array", "items": root}]} if allow_list else {"allOf": [root]}
    )
    what = "a record" + (" or a list of records" if allow_list else "")
    return {
        "$schema": DIALECT,
        "title": f"tracecli {shape} record" + (" (or list)" if allow_list else ""),
        "description": f"{what} in tracecli's {shape} shape; `tracecli validate` checks more.",
        **body,
        "$defs": copy.deepcopy(_defs()),
    }
