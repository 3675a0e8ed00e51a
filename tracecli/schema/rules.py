"""Rules the real Weave server enforces beyond the OpenAPI (see ../shared/spec/README.md).

Read off weave's `validation.py` and `constants.py` (weave 0.52.42). A file that passes
`validate` must not be refused by the server for its content, so these run on every record.
They work on plain dicts after the pydantic model accepted the record, and return
`(field, code, message)` triples so the caller attaches the location.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SPAN_ID_RE = re.compile(r"^[0-9a-f]{16}$")
TRACE_ID_RE = re.compile(r"^[0-9a-f]{32}$")
# What weave's server (0.52.42) can parse as a ref: an entity, a project, then a path.
# "weave:///name" or "weave:///e/p" are a 400 "Invalid URI" there.
OP_REF_RE = re.compile(r"^weave:///[^/]+/[^/]+/.")
# What the weave SDK sends: `<entity>/<project>/<run id>`. weave's SQLite server stores any
# string; the hosted service converts this form to its own, so others only get a warning.
RUN_ID_RE = re.compile(r"^[^/]+/[^/]+/[^/]+$")
INT64_MAX = 2**63 - 1  # weave's server keeps wb_run_step in an integer column

INTERNAL_REF_PREFIX = "weave-trace-internal:///"

# tracecli's own key, added to rejected records; ignored on input so they can be replayed.
META_KEY = "_tracecli"

MAX_OP_NAME = 128
MAX_DISPLAY_NAME = 1024
OP_REF_PREFIX = "weave:///"
STATUSES = frozenset({"success", "error", "running", "descendant_error"})

Problem = tuple[str, str, str]


def is_call_id(value: str) -> bool:
    """A lowercase UUID or a 16-hex-digit OpenTelemetry span id."""
    return bool(UUID_RE.fullmatch(value) or SPAN_ID_RE.fullmatch(value))


def is_trace_id(value: str) -> bool:
    """A lowercase UUID or a 32-hex-digit OpenTelemetry trace id."""
    return bool(UUID_RE.fullmatch(value) or TRACE_ID_RE.fullmatch(value))


def check_project_id(value: Any, field: str = "project_id") -> Iterator[Problem]:
    if isinstance(value, str):
        entity, sep, project = value.partition("/")
        if not sep or not entity or not project or "/" in project:
            yield (
                field,
                "project-id",
                f"must be 'entity/project' (both parts non-empty), got {value!r}",
            )


def _check_id(data: Mapping[str, Any], field: str, trace: bool = False) -> Iterator[Problem]:
    value = data.get(field)
    if value is None or not isinstance(value, str):
        return
    ok = is_trace_id(value) if trace else is_call_id(value)
    if not ok:
        want = (
            "a lowercase UUID or a 32-character lowercase hex trace id"
            if trace
            else "a lowercase UUID or a 16-character lowercase hex span id"
        )
        yield (field, "id-format", f"must be {want}, got {value!r}")


def check_call(data: Mapping[str, Any]) -> Iterator[Problem]:
    """Server rules for any call half (start, end or completed); absent fields are skipped."""
    yield from check_project_id(data.get("project_id"))
    yield from _check_id(data, "id")
    yield from _check_id(data, "parent_id")
    yield from _check_id(data, "trace_id", trace=True)
    op = data.get("op_name")
    if isinstance(op, str):
        if op.startswith(OP_REF_PREFIX) and not OP_REF_RE.match(op):
            yield (
                "op_name",
                "op-ref",
                f"a weave:/// reference must be weave:///entity/project/op/name:digest, got {op!r}",
            )
        elif len(op) > MAX_OP_NAME and not op.startswith(OP_REF_PREFIX):
            yield (
                "op_name",
                "op-name-length",
                f"is {len(op)} characters; the server allows at most {MAX_OP_NAME}",
            )
    dn = data.get("display_name")
    if isinstance(dn, str) and len(dn) > MAX_DISPLAY_NAME:
        yield (
            "display_name",
            "display-name-length",
            f"is {len(dn)} characters; the server allows at most {MAX_DISPLAY_NAME}",
        )
    for step in ("wb_run_step", "wb_run_step_end"):
        v = data.get(step)
        if isinstance(v, int) and not isinstance(v, bool):
            if v > INT64_MAX:
                yield (step, "wb-run-step", f"must fit in 64 bits (at most {INT64_MAX}), got {v}")
            elif v < 0 and step == "wb_run_step":
                yield (step, "wb-run-step", f"must be a non-negative integer, got {v}")
    yield from check_refs(data)
    summary = data.get("summary")
    if isinstance(summary, Mapping):
        counts = summary.get("status_counts")
        if isinstance(counts, Mapping):
            for key in counts:
                if key not in STATUSES:
                    yield (
                        f"summary.status_counts.{key}",
                        "status-key",
                        f"is not a trace status (one of {', '.join(sorted(STATUSES))})",
                    )


def call_warnings(data: Mapping[str, Any]) -> Iterator[Problem]:
    """What weave's server stores, but not as a reader of the file would expect."""
    op = data.get("op_name")
    if op == "":
        yield ("op_name", "op-name-empty", "is empty: weave's server stores it so")
    if data.get("display_name") == "":
        yield ("display_name", "display-name-empty", "is empty: weave's server stores null")
    run = data.get("wb_run_id")
    if isinstance(run, str) and not RUN_ID_RE.fullmatch(run):
        yield (
            "wb_run_id",
            "wb-run-id",
            f"the weave SDK writes '<entity>/<project>/<run id>', got {_shown(run)}: "
            "stored as it is, but W&B may not link the call to its run",
        )
    v = data.get("wb_run_step_end")
    if isinstance(v, int) and not isinstance(v, bool) and v < 0:
        yield ("wb_run_step_end", "wb-run-step-end", f"is negative ({v}): weave's server stores it")
    for field in ("started_at", "ended_at"):
        t = data.get(field)
        if t is not None and _zoneless(t):
            yield (field, "time-no-zone", _no_zone_message(t))


# A date alone, and the zone at the end of a date and time (what pydantic, so weave's
# server, reads as one: "Z", "+HH:MM" or "+HHMM").
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z", re.ASCII)
_ZONE_RE = re.compile(r"(?:[Zz]|[+-][0-9]{2}:?[0-9]{2})\Z", re.ASCII)


def _zoneless(value: Any) -> bool:
    """Whether weave's server reads `value` as a time without a zone (a date alone, or a
    date and time with no offset). It stores such a time as it is (and answers it without
    a zone), but when the call's other time has a zone its `calls/stream_query` fails (500)
    for the whole project: a warning, not an error. Asked of a value the call schema took
    as a time (one it refused is its error, not this); epoch numbers, even as strings, are
    UTC there."""
    if type(value) is not str:
        return False
    if len(value) == 10:
        return _DATE_RE.match(value) is not None
    return len(value) >= 16 and value[10] in "Tt " and _ZONE_RE.search(value, 16) is None


def _no_zone_message(value: Any) -> str:
    shown = _shown(value) if isinstance(value, str) else repr(value)
    alone = isinstance(value, str) and len(value.strip()) <= 10
    what = "is a date alone, with no time zone" if alone else "has no time zone"
    return (
        f"{shown} {what}: weave's server stores it, but may then fail to read the project "
        "back (when the call's other time has a zone, its calls query answers 500 for the "
        "whole project); write the time in UTC with a 'Z' (e.g. '2025-01-01T00:00:00Z')"
    )


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


def check_refs(data: Mapping[str, Any]) -> Iterator[Problem]:
    """Strings the server reads as references, anywhere in a call body (values, not keys).

    Weave's server walks the whole request and rewrites every string that starts with
    `weave:///` into its internal form, refusing the request (400 "Invalid URI") when the
    string does not go on as `entity/project/...`, and refuses its internal form
    (`weave-trace-internal:///`) outright. `op_name` has its own rule. Iterative: a
    deeply nested YAML value must not exhaust the stack.
    """
    stack = [(str(k), v) for k, v in reversed(list(data.items())) if k != "op_name"]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if value.startswith(OP_REF_PREFIX):
                if value.count("/", len(OP_REF_PREFIX)) < 2:
                    yield (
                        path,
                        "ref",
                        f"{_shown(value)}: the server reads a weave:/// string as a "
                        "reference, and refuses one that is not weave:///entity/project/...",
                    )
            elif value.startswith(INTERNAL_REF_PREFIX):
                yield (
                    path,
                    "ref",
                    f"{_shown(value)}: the server refuses its internal reference form in "
                    "uploads; write weave:///entity/project/... instead",
                )
        elif isinstance(value, Mapping):
            stack.extend((f"{path}.{k}", v) for k, v in reversed(list(value.items())))
        elif isinstance(value, list | tuple):
            stack.extend((f"{path}.{i}", value[i]) for i in range(len(value) - 1, -1, -1))


def describe_value(value: Any) -> str:
    """How a refused value is named in a message (`got ...`): its type for a container,
    the value itself, cut at 40 characters, for a scalar."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
