"""What weave's server refuses in a call it has parsed, with its status (400) and its words, so
that a client (the weave SDK drops a batch on a 400 and splits it on a 422) sees here what it
would see there. Read off weave's validation.py / validation_util.py and the reference server's
use of them: ids, lengths and wb_run_step on starts and completed calls, the id alone on ends,
weave:/// strings anywhere. What weave's SQLite server stores is stored: any wb_run_id, an empty
op_name, a negative wb_run_step_end, a 16- or 32-character lowercase id of any letters."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from tracecli.schema import rules
from tracecli.serve.http import check_project, refusal

MAX_OP_NAME = 128
MAX_DISPLAY_NAME = 1024


def id_problem(value: Any, span_len: int) -> str | None:
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
        problem = id_problem(call.get(field), span_len)
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


def check_calls(starts: list[Mapping[str, Any]], ends: list[Mapping[str, Any]]) -> None:
    """weave's refusals of these call halves → one 400 `{"reason": …}`, as weave answers."""
    for call in starts + ends:
        check_project(call["project_id"])
    for call in starts:
        problem = _start_problem(call)
        if problem:
            raise refusal(400, problem)
    for call in ends:
        problem = id_problem(call.get("id"), 16)
        if problem:
            raise refusal(400, problem)
    for call in starts + ends:
        problem = _ref_problem(call)
        if problem:
            raise refusal(400, problem)


def same_project(entity: str | None, project: str | None, calls: list[Any]) -> None:
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
