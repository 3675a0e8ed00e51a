"""The facts of a record that the cross-record rules judge: its times (as the server reads
them, compared in order), its kind, id, trace and parent, and the id of a record that
failed its schema (so its other half is refused with it). Pure functions, shared by the
`CrossChecker` and by the block workers that compute the facts ahead of it."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Mapping
from typing import Any

from tracecli.check.records import Record
from tracecli.diagnostics import Diagnostic, Location, Severity
from tracecli.schema.fastcheck import Facts, same_layout

_fromiso = datetime.datetime.fromisoformat
# what the time-order warning adds: why it is no error
STORED_NEGATIVE = "weave's server stores the call so, with a negative latency"


def timestamp(value: Any) -> float | None:
    """Seconds since the epoch for a call time as the server reads it (naive = UTC).

    Canonical RFC 3339 strings take the fast C parser; anything else goes through
    pydantic, which is what the server uses, so `1760000000` or `"2025-10-09"` mean here
    what they mean there. None when the value is not a time at all.
    """
    if value is None:
        return None
    dt: datetime.datetime | None
    if type(value) is str and len(value) >= 20 and value[10] == "T":
        try:
            dt = _fromiso(value)
        except ValueError:
            dt = _as_pydantic_reads(value)
    else:
        dt = _as_pydantic_reads(value)
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.UTC)
    try:
        return dt.timestamp()
    except (OverflowError, ValueError):
        return None


@functools.cache
def _datetime_adapter() -> Any:
    # imported here for start-up time: canonical times never need pydantic
    from pydantic import TypeAdapter

    return TypeAdapter(datetime.datetime)


def _as_pydantic_reads(value: Any) -> datetime.datetime | None:
    """The time pydantic (so the server) reads in a value, or None when it reads none."""
    from pydantic import ValidationError

    try:
        dt: datetime.datetime = _datetime_adapter().validate_python(value)
    except ValidationError:
        return None
    return dt


def _iso(ts: float) -> str:
    try:
        when = datetime.datetime.fromtimestamp(ts, datetime.UTC)
    except (OverflowError, ValueError, OSError):
        return repr(ts)
    text = when.isoformat(timespec="microseconds").replace("+00:00", "")
    return text.rstrip("0").rstrip(".") + "Z"


def check_times(
    start: Mapping[str, Any], end: Mapping[str, Any], loc: Location
) -> Diagnostic | None:
    """The time-order warning for one call's two halves (at the end's location), if any.

    For `upload`, which pairs a start with its end itself.
    """
    started = timestamp(start.get("started_at"))
    ended = timestamp(end.get("ended_at"))
    if started is None or ended is None or ended >= started:
        return None
    return time_order(loc.path, loc.line, "ended_at", ended, started, None)


def time_order(
    path: str, line: int, field: str, ended: Any, started: Any, other: str | None
) -> Diagnostic:
    """The time-order warning; `ended`/`started` as epoch floats or time strings.

    A warning, not an error: weave's server stores such a call as it is (through every
    write route), with a negative latency, so tracecli sends it unchanged; `--strict`
    makes it an error, as it does every warning.
    """
    ended = ended if type(ended) is float else timestamp(ended) or 0.0
    started = started if type(started) is float else timestamp(started) or 0.0
    where = f" ({other})" if other else ""
    if field == "ended_at":
        msg = f"{_iso(ended)} is before the call's started_at {_iso(started)}{where}"
    else:
        msg = f"{_iso(started)} is after the call's ended_at {_iso(ended)}{where}"
    msg += f": {STORED_NEGATIVE}"
    return Diagnostic(path, line, field, "time-order", Severity.WARNING, msg)


def ended_before(ended: Any, started: Any) -> bool:
    """Whether `ended` is before `started` (epoch floats, or time strings as written).

    Two canonical strings of the same layout and zone (`fastcheck.same_layout`) compare as
    strings; anything else is parsed first. Unknown or unparseable times are never "before".
    """
    if type(ended) is str and type(started) is str and same_layout(ended, started):
        return ended < started
    e = ended if type(ended) is float else timestamp(ended)
    s = started if type(started) is float else timestamp(started)
    return e is not None and s is not None and e < s


def call_facts(rec: Record, line: int = 0) -> Facts:
    """The facts of a valid record (its times as epoch seconds), at `line`."""
    d = rec.data
    if rec.kind == "freeplay":
        return Facts(line, "freeplay", None, None, None, None, None)
    started = timestamp(d.get("started_at"))
    ended = timestamp(d.get("ended_at")) if rec.kind != "start" else None
    if rec.kind == "end":
        return Facts(line, "end", d.get("id"), None, None, started, ended)
    return Facts(line, rec.kind, d.get("id"), d.get("trace_id"), d.get("parent_id"), started, ended)


def refused_id(value: Any) -> tuple[str | None, str | None]:
    """(kind, id) of a raw record that failed its schema, when they can be made out."""
    if not isinstance(value, dict):
        return None, None
    kind: Any = None
    body: Any = value
    t = value.get("type")
    if t is not None:
        kind = (
            {"start": "start", "end": "end", "call": "complete"}.get(t)
            if isinstance(t, str)
            else None
        )
    elif "mode" in value and "req" in value:
        kind = value.get("mode")
        req = value.get("req")
        body = req.get(kind) if isinstance(req, dict) and isinstance(kind, str) else None
    elif len(value) == 1 and ("start" in value or "end" in value):
        kind = "start" if "start" in value else "end"
        body = value[kind]
    elif "op_name" in value and "ended_at" in value:
        kind = "complete"
    cid = body.get("id") if isinstance(body, dict) else None
    if kind not in ("start", "end", "complete"):
        kind = None
    return kind, cid if isinstance(cid, str) else None
