"""A call's halves as the rows the store writes: values in column order, times in one
fixed-width UTC form (so text order is time order), JSON with integers beyond 64 bits exact."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from tracecli.diagnostics import TracecliError
from tracecli.store.exact_json import dumps_exact


class StoreError(TracecliError):
    """The store cannot be opened or a record cannot be stored; a usage/config error."""

    exit_code = 2


_DATETIME = TypeAdapter(datetime.datetime)


def to_ts(value: Any, field: str = "started_at") -> str:
    """Any datetime pydantic accepts → fixed-width UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ`.

    Fixed width so that text order is time order (the started_at index sorts by it); naive
    datetimes are taken as UTC, as the Weave server does.
    """
    if type(value) is str and (stored := _already_utc(value)) is not None:
        return stored
    try:
        if isinstance(value, datetime.datetime):
            dt = value
        elif isinstance(value, str):
            try:
                dt = datetime.datetime.fromisoformat(value)
            except ValueError:
                dt = _DATETIME.validate_python(value)
        else:
            dt = _DATETIME.validate_python(value)
    except ValidationError:
        raise StoreError(f"{field}: not a datetime: {value!r}", exit_code=1) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.UTC)
    elif dt.utcoffset():
        dt = dt.astimezone(datetime.UTC)
    return dt.isoformat(timespec="microseconds")[:26] + "Z"


def _already_utc(value: str) -> str | None:
    """The stored form of a time written `...SS.ffffffZ` (itself) or `...SSZ` (its fraction
    written out), when the text is a real instant; None sends anything else down the general
    path. Upload sends times as the file wrote them, nearly always in one of these forms, and
    formatting each again cost ~1 us a half."""
    n = len(value)
    if n == 27:
        if value[19] != "." or not value[20:26].isdigit():
            return None
    elif n != 20:
        return None
    if value[n - 1] != "Z" or value[10] != "T" or value[4] != "-" or value[7] != "-":
        return None  # (a week date, 2025-W41-4, is as long as a date)
    if value[13] != ":" or value[16] != ":":
        return None
    try:
        _fromisoformat(value)  # ASCII digits only, a day that exists, hours below 24
    except ValueError:
        return None
    return value if n == 27 else value[:19] + ".000000Z"


_fromisoformat = datetime.datetime.fromisoformat


def _json(value: Any) -> str:
    """Stored JSON text: integers beyond 64 bits exact, as weave's server keeps them."""
    return dumps_exact(value).decode()


def _json_or_none(value: Any) -> str | None:
    return None if value is None else _json(value)


def required(d: Mapping[str, Any], key: str, what: str) -> Any:
    value = d.get(key)
    if value is None:
        raise StoreError(f"{what} {d.get('id') or ''}: missing {key}".replace("  ", " "), 1)
    return value


def start_row(s: Mapping[str, Any]) -> tuple[Any, ...]:
    """A StartedCallSchemaForInsert dict → its values in START_COLUMNS order.

    A start without id or trace_id gets fresh ones, as the hosted server does.
    """
    return (
        required(s, "project_id", "call start"),
        s.get("id") or str(uuid.uuid4()),
        s.get("trace_id") or str(uuid.uuid4()),
        required(s, "op_name", "call start"),
        s.get("display_name"),
        s.get("parent_id"),
        s.get("thread_id"),
        s.get("turn_id"),
        to_ts(required(s, "started_at", "call start")),
        _json(s.get("attributes") or {}),
        _json(s.get("inputs") or {}),
        _json_or_none(s.get("otel_dump")),
        s.get("wb_user_id"),
        s.get("wb_run_id"),
        s.get("wb_run_step"),
    )


def end_values(e: Mapping[str, Any]) -> tuple[Any, ...]:
    """The end half of a call (EndedCallSchemaForInsert or completed) in END_COLUMNS order."""
    return (
        to_ts(required(e, "ended_at", "call end"), "ended_at"),
        e.get("exception"),
        _json_or_none(e.get("output")),
        _json(e.get("summary") or {}),
        e.get("wb_run_step_end"),
    )


def complete_row(c: Mapping[str, Any]) -> tuple[Any, ...]:
    for key in ("id", "trace_id"):
        required(c, key, "completed call")
    return start_row(c) + end_values(c)
