"""A call's halves as the rows the store writes: values in column order, times in one
fixed-width UTC form (so text order is time order), JSON with integers beyond 64 bits exact."""

from __future__ import annotations

import datetime
import functools
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from tracecli.diagnostics import TracecliError
from tracecli.store.exact_json import dumps_exact
from tracecli.store.summary_ints import weave_counts

if TYPE_CHECKING:
    from pydantic import TypeAdapter


class StoreError(TracecliError):
    """The store cannot be opened or a record cannot be stored; a usage/config error."""

    exit_code = 2


@functools.cache
def _datetime_adapter() -> TypeAdapter[datetime.datetime]:
    from pydantic import TypeAdapter  # start-up: see _lax_datetime

    return TypeAdapter(datetime.datetime)


def _lax_datetime(value: Any) -> datetime.datetime | None:
    """pydantic's reading of a time that is no ISO text (a number, `2025-01-01 00:00:00 +0000`),
    None when it refuses it. pydantic is imported, and its reader built, on first use: most
    times are ISO text, and they cost an upload to the store a third of its start-up."""
    from pydantic import ValidationError

    try:
        return _datetime_adapter().validate_python(value)
    except ValidationError:
        return None


def to_ts(value: Any, field: str = "started_at") -> str:
    """Any datetime pydantic accepts → fixed-width UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ`.

    Fixed width so that text order is time order (the started_at index sorts by it); naive
    datetimes are taken as UTC, as the Weave server does.
    """
    if type(value) is str and (stored := already_utc(value)) is not None:
        return stored
    dt: datetime.datetime | None
    if isinstance(value, datetime.datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.datetime.fromisoformat(value)
        except ValueError:
            dt = _lax_datetime(value)
    else:
        dt = _lax_datetime(value)
    if dt is None:
        raise StoreError(f"{field}: not a datetime: {value!r}", exit_code=1)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.UTC)
    elif dt.utcoffset():
        dt = dt.astimezone(datetime.UTC)
    return dt.isoformat(timespec="microseconds")[:26] + "Z"


def already_utc(value: str) -> str | None:
    """The stored form of a time written `...SS.ffffffZ` (itself) or `...SSZ` (its fraction
    written out), when the text is a real instant; None sends anything else down the general
    path. Upload sends times as the file wrote them, nearly always in one of these forms, and
    formatting each again cost ~1 us a half (the separators are read in one call: twice a
    call, every call). Other UTC forms (`_other_utc`: `+00:00`, a shorter fraction) are read
    after these two."""
    n = len(value)
    if n == 27 and value[26] == "Z":  # (separators at 4, 7, 10, 13, 16 and 19: one slice)
        if value[4:20:3] != "--T::." or not value[20:26].isdigit():
            return None
    elif n == 29 and value[23:] == "+00:00":  # milliseconds and an offset (JavaScript's)
        if value[4:20:3] != "--T::." or not value[20:23].isdigit():
            return None
        try:
            _fromisoformat(value)
        except ValueError:
            return None
        return value[:23] + "000Z"
    elif n != 20 or value[4:20:3] != "--T::Z":
        return _other_utc(value)  # (a week date, 2025-W41-4, is as long as a date)
    try:
        _fromisoformat(value)  # ASCII digits only, a day that exists, hours below 24
    except ValueError:
        return None
    return value if n == 27 else value[:19] + ".000000Z"


def _other_utc(value: str) -> str | None:
    """The stored form of a UTC time written with a `+00:00` (or `-00:00`) offset, or with
    a fraction of 1 to 6 digits (`...SS.fff+00:00`: how JavaScript's `toISOString`, Java
    and many loggers write): its fraction padded to six digits and `Z` for the offset, what
    the general path makes of it (`datetime` reads it as an instant of offset zero), without
    formatting the time again. Without this, a file whose times all look so (~one in three
    of the common styles) sent every request body of an upload to the store down the
    general path: ~14 us a call more. None for anything else."""
    if value.endswith(("+00:00", "-00:00")):
        head = value[:-6]
    elif value.endswith("Z"):
        head = value[:-1]
    else:
        return None
    m = len(head)
    if m == 19:
        fraction = ""
    elif 21 <= m <= 26 and head[19] == ".":
        fraction = head[20:]
        if not (fraction.isdigit() and fraction.isascii()):
            return None
    else:
        return None
    if head[4:19:3] != "--T::":
        return None
    try:
        _fromisoformat(value)  # ASCII digits only, a day that exists, hours below 24
    except ValueError:
        return None
    return f"{head[:19]}.{fraction:0<6}Z"


_fromisoformat = datetime.datetime.fromisoformat


def _json(value: Any) -> str:
    """Stored JSON text: integers beyond 64 bits exact, as weave's server keeps them (orjson
    tried here first, one call less for every JSON field of every call)."""
    try:
        return _orjson_dumps(value).decode()
    except _ORJSON_REFUSES:
        return dumps_exact(value).decode()


_orjson_dumps = orjson.dumps
_ORJSON_REFUSES = (orjson.JSONEncodeError, TypeError)


def required(d: Mapping[str, Any], key: str, what: str) -> Any:
    value = d.get(key)
    if value is None:
        raise StoreError(f"{what} {d.get('id') or ''}: missing {key}".replace("  ", " "), 1)
    return value


def start_row(s: Mapping[str, Any]) -> tuple[Any, ...]:
    """A StartedCallSchemaForInsert dict → its values in START_COLUMNS order.

    A start without id or trace_id gets fresh ones, as the hosted server does. Written out
    field by field (required() only when a field is missing, `{}` without encoding it): this
    runs for every call an upload stores.
    """
    get = s.get
    project_id = get("project_id")
    if project_id is None:
        required(s, "project_id", "call start")
    call_id = get("id") or str(uuid.uuid4())
    trace_id = get("trace_id") or str(uuid.uuid4())
    op_name = get("op_name")
    if op_name is None:
        required(s, "op_name", "call start")
    started_at = get("started_at")
    if started_at is None:
        required(s, "started_at", "call start")
    started_at = to_ts(started_at)
    attributes = get("attributes")
    inputs = get("inputs")
    otel_dump = get("otel_dump")
    return (
        project_id,
        call_id,
        trace_id,
        op_name,
        get("display_name"),
        get("parent_id"),
        get("thread_id"),
        get("turn_id"),
        started_at,
        _json(attributes) if attributes else "{}",
        _json(inputs) if inputs else "{}",
        None if otel_dump is None else _json(otel_dump),
        get("wb_user_id"),
        get("wb_run_id"),
        get("wb_run_step"),
    )


def end_values(e: Mapping[str, Any]) -> tuple[Any, ...]:
    """The end half of a call (EndedCallSchemaForInsert or completed) in END_COLUMNS order."""
    get = e.get
    ended_at = get("ended_at")
    if ended_at is None:
        required(e, "ended_at", "call end")
    ended_at = to_ts(ended_at, "ended_at")
    output = get("output")
    summary = get("summary")
    return (
        ended_at,
        get("exception"),
        None if output is None else _json(output),
        _json(weave_counts(summary)) if summary else "{}",
        get("wb_run_step_end"),
    )


def end_row(e: Mapping[str, Any], values: tuple[Any, ...]) -> tuple[Any, ...]:
    """An EndedCallSchemaForInsert dict and its `end_values` → its project_id and id, then
    those values (the row of pending_ends; an update of calls reorders it)."""
    return (required(e, "project_id", "call end"), required(e, "id", "call end"), *values)


def complete_row(c: Mapping[str, Any]) -> tuple[Any, ...]:
    if c.get("id") is None or c.get("trace_id") is None:
        for key in ("id", "trace_id"):
            required(c, key, "completed call")
    return start_row(c) + end_values(c)
