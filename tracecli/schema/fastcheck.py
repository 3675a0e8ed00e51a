"""A fast yes for the common case: is this call body certainly valid?

The pydantic models are the truth, but running them costs ~8 µs a record, and validating a
1 GB file should cost about what parsing it does. Nearly every record in a real file is
the happy path: known keys, plain types, ids and timestamps in their canonical form. These
functions answer "certainly valid (no error, no warning)" for exactly that case with
`type(...) is` checks, and "don't know" (False) for anything else, which then goes
through the models and `rules.py` for the real answer and its diagnostics.

The contract, held by a hypothesis test: `fast_ok(kind, data)` is True only when the full
check (`records.check_call`) reports nothing at all. So the fast path may be too cautious
but never too lenient; when in doubt, return False.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from tracecli.schema.rules import MAX_DISPLAY_NAME, MAX_OP_NAME, STATUSES
from tracecli.schema.weave import (
    CompletedCallSchemaForInsert,
    EndedCallSchemaForInsert,
    LLMUsageSchema,
    StartedCallSchemaForInsert,
)

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_call_id = re.compile(rf"(?:{_UUID}|[0-9a-f]{{16}})\Z").match
_trace_id = re.compile(rf"(?:{_UUID}|[0-9a-f]{{32}})\Z").match
_project = re.compile(r"[^/]+/[^/]+\Z").match
_run_id = re.compile(r"[^:]+:[^:]+\Z").match
# The canonical RFC 3339 form (explicit zone): what loggers write, and a subset of what
# pydantic accepts; fromisoformat then rejects impossible dates (Feb 30, 24:00).
_datetime = re.compile(
    r"[12]\d{3}-[01]\d-[0-3]\d[T ][0-2]\d:[0-5]\d:[0-5]\d(?:\.\d{1,6})?(?:Z|[+-][01]\d:[0-5]\d)\Z"
).match
_fromiso = datetime.datetime.fromisoformat

START_KEYS = frozenset(StartedCallSchemaForInsert.model_fields)
END_KEYS = frozenset(EndedCallSchemaForInsert.model_fields)
COMPLETE_KEYS = frozenset(CompletedCallSchemaForInsert.model_fields)
_USAGE_KEYS = frozenset(LLMUsageSchema.model_fields)


def _str_keys(d: dict[Any, Any]) -> bool:
    for k in d:  # noqa: SIM110 - a plain loop is twice as fast as all() over a generator
        if type(k) is not str:
            return False
    return True


def _obj(v: Any) -> bool:
    return type(v) is dict and _str_keys(v)


def _opt_str(v: Any) -> bool:
    return v is None or type(v) is str


def _when(v: Any) -> bool:
    if type(v) is not str or not _datetime(v):
        return False
    try:
        _fromiso(v)
    except ValueError:
        return False
    return True


def _step(v: Any) -> bool:
    return v is None or (type(v) is int and v >= 0)


def _usage(usage: Any) -> bool:
    if type(usage) is not dict:
        return False
    for model, counts in usage.items():
        if type(model) is not str or type(counts) is not dict:
            return False
        for k, v in counts.items():
            if type(k) is not str:
                return False
            if k in _USAGE_KEYS and v is not None and type(v) is not int:
                return False
    return True


def _status_counts(counts: Any) -> bool:
    if type(counts) is not dict:
        return False
    for k, v in counts.items():  # noqa: SIM110 - faster than all()
        if k not in STATUSES or type(v) is not int:
            return False
    return True


def _summary(s: Any) -> bool:
    if type(s) is not dict:
        return False
    for k, v in s.items():
        if k == "usage":
            if not _usage(v):
                return False
        elif k == "status_counts":
            if not _status_counts(v):
                return False
        elif type(k) is not str:
            return False
    return True


def _start_fields(g: Any) -> bool:
    """The fields a start and a completed call share (`g` is the dict's `get`)."""
    op = g("op_name")
    dn = g("display_name")
    parent = g("parent_id")
    otel = g("otel_dump")
    run = g("wb_run_id")
    return (
        type(op) is str
        and 0 < len(op) <= MAX_OP_NAME
        and (dn is None or (type(dn) is str and len(dn) <= MAX_DISPLAY_NAME))
        and (parent is None or (type(parent) is str and _call_id(parent) is not None))
        and _opt_str(g("thread_id"))
        and _opt_str(g("turn_id"))
        and _when(g("started_at"))
        and _obj(g("attributes"))
        and _obj(g("inputs"))
        and (otel is None or _obj(otel))
        and _opt_str(g("wb_user_id"))
        and (run is None or (type(run) is str and _run_id(run) is not None))
        and _step(g("wb_run_step"))
    )


def _ids(g: Any) -> bool:
    pid, cid, tid = g("project_id"), g("id"), g("trace_id")
    return (
        type(pid) is str
        and _project(pid) is not None
        and type(cid) is str
        and _call_id(cid) is not None
        and type(tid) is str
        and _trace_id(tid) is not None
    )


def fast_start(d: dict[str, Any]) -> bool:
    if not START_KEYS.issuperset(d):
        return False
    g = d.get
    return _ids(g) and _start_fields(g)


def fast_end(d: dict[str, Any]) -> bool:
    if not END_KEYS.issuperset(d):
        return False
    g = d.get
    pid, cid, started = g("project_id"), g("id"), g("started_at")
    return (
        type(pid) is str
        and _project(pid) is not None
        and type(cid) is str
        and _call_id(cid) is not None
        and (started is None or _when(started))
        and _when(g("ended_at"))
        and _opt_str(g("exception"))
        and _summary(g("summary"))
        and _step(g("wb_run_step_end"))
    )


def fast_complete(d: dict[str, Any]) -> bool:
    if not COMPLETE_KEYS.issuperset(d):
        return False
    g = d.get
    return (
        _ids(g)
        and _start_fields(g)
        and _when(g("ended_at"))
        and _opt_str(g("exception"))
        and _summary(g("summary"))
        and _step(g("wb_run_step_end"))
    )


FAST = {"start": fast_start, "end": fast_end, "complete": fast_complete}


def fast_ok(kind: str, data: Any) -> bool:
    """True only when the call body `data` of this kind has no error and no warning."""
    check = FAST.get(kind)
    return check is not None and type(data) is dict and check(data)
