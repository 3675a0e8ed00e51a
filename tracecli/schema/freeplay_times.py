"""A Freeplay trace's `start_time`/`end_time`: what Freeplay reads, and what it only warns of.

Apart from the other rules (schema/freeplay.py) because they follow Freeplay's reference
server closely: it reads a trace time with pydantic's strict datetime from JSON, stores one
without a UTC offset (with a warning of its own), and fails (500) on a record whose one time
has an offset and the other none.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from tracecli.schema.rules import describe_value

Problem = tuple[str, str, str]  # (field, code, message), as schema/freeplay.py's

MS_THRESHOLD = 1e11  # epoch seconds reach 1e11 in the year 5138; ms passed it in 1973
EXAMPLE_ISO = "2026-01-01T12:00:00.125000+00:00"
NO_ZONE = "time-no-zone"  # a trace time without a UTC offset (the code of weave's too)
TIME_ORDER = "time-order"  # a record that ends before it starts (the code of weave's too)
_STORED = "Freeplay's reference server stores the record so (with a warning of its own)"


def epoch_order(call_info: dict[str, Any]) -> Iterator[Problem]:
    """A completion's `call_info` that ends before it starts (epoch seconds, both valid): a
    warning, as for a Weave call, since Freeplay's reference server stores it so."""
    start, end = _seconds(call_info.get("start_time")), _seconds(call_info.get("end_time"))
    if start is not None and end is not None and end < start:
        shown = (call_info["end_time"], call_info["start_time"])
        yield (
            "call_info.end_time",
            TIME_ORDER,
            f"{shown[0]!r} is before start_time {shown[1]!r}: {_STORED}",
        )


def _seconds(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
        return float(value)
    return None


def trace_times(body: dict[str, Any]) -> Iterator[Problem]:
    """A trace's `start_time`/`end_time`: ISO 8601 date-times Freeplay reads.

    The API's type is an RFC 3339 date-time, which carries a UTC offset, and the SDK always
    sends one; Freeplay's reference server (pydantic, strict) also stores a time without
    one, with a warning of its own, so such a time is a `time-no-zone` warning here and
    is sent unchanged, as weave's zoneless times are. When one of the two times has an
    offset and the other has none, the reference server fails on the record (a 500: it
    compares them, and Python cannot compare the two kinds): an error, saying so. A trace
    that ends before it starts is a `time-order` warning, as a Weave call's."""
    zoneless: list[tuple[str, str, datetime]] = []
    zoned = ""
    read: list[datetime] = []
    for key in ("start_time", "end_time"):
        value: Any = body.get(key)
        parsed, problem = _iso_time(value)
        if problem is not None:
            yield (key, "freeplay.iso_time", problem)
        elif parsed is not None and parsed.tzinfo is None:
            zoneless.append((key, value, parsed))
        elif parsed is not None:
            zoned = key
        if parsed is not None:
            read.append(parsed)
    if len(read) == 2 and not (zoned and zoneless) and read[1] < read[0]:
        shown = (repr(body["end_time"]), repr(body["start_time"]))
        yield ("end_time", TIME_ORDER, f"{shown[0]} is before start_time {shown[1]}: {_STORED}")
    for key, value, parsed in zoneless:
        fix = parsed.replace(tzinfo=UTC).isoformat()
        if zoned:
            yield (
                key,
                "freeplay.iso_time",
                f"{value!r} has no UTC offset but {zoned} has one: Freeplay's reference "
                "server fails on such a record (500: it compares the two); give both an "
                f"offset, e.g. {fix!r}",
            )
        else:
            yield (
                key,
                NO_ZONE,
                f"{value!r} has no UTC offset: Freeplay's reference server stores it as "
                "written (with a warning: the API's date-time is RFC 3339, which has one, "
                "and the SDK always sends one); upload sends it unchanged (if it is UTC, "
                f"write {fix!r})",
            )


def _iso_time(value: Any) -> tuple[datetime | None, str | None]:
    """(the time a trace time reads as, None) or (None, why it is not one Freeplay reads)."""
    if value is None:
        return None, None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > MS_THRESHOLD else value
        try:
            iso = datetime.fromtimestamp(seconds, UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            iso = EXAMPLE_ISO
        return None, f"trace times are ISO 8601 strings, not epoch numbers: use {iso!r}"
    if not isinstance(value, str):
        got = describe_value(value)
        return None, f"must be an ISO 8601 date-time string, e.g. {EXAMPLE_ISO!r}, got {got}"
    parsed = parse_iso(value)
    why = _freeplay_refuses(value) if parsed is not None else None
    if parsed is None or why is not None:
        reason = f" ({why})" if why else ""
        got = describe_value(value)
        return None, f"not an ISO 8601 date-time, e.g. {EXAMPLE_ISO!r}, got {got}{reason}"
    return parsed, None


@functools.cache
def _freeplay_datetime() -> Any:
    """How Freeplay's reference server reads a trace time: pydantic's datetime, strict,
    from JSON (stricter than `datetime.fromisoformat`: no date alone, no `+00`)."""
    return TypeAdapter(Annotated[datetime, Field(strict=True)])


def _freeplay_refuses(value: str) -> str | None:
    """Why Freeplay's reference server refuses this time (pydantic's words), or None."""
    try:
        _freeplay_datetime().validate_json(json.dumps(value))
    except ValidationError as exc:
        msg = str(exc.errors(include_url=False)[0]["msg"])
        return msg.removeprefix("Input should be a valid datetime, ")
    return None


def parse_iso(value: str) -> datetime | None:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
