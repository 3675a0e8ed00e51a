"""Whether weave's server stores a span's call ending before it starts, and by which times.

Weave takes a call's times from the span's own `startTimeUnixNano`/`endTimeUnixNano`, or
from the `langfuse.startTime`/`langfuse.endTime` attributes in their place (to_weave.py),
and answers a call's latency from the times it stored. So the call ends before it starts
exactly when the times it takes do: a span whose own times are backwards but whose langfuse
times are not is stored with a positive latency (weave-ref, read back), and a span whose
langfuse times are backwards is stored with a negative one whatever its own times say.
`convert` warns of it here; `validate`, `upload` and `upload --mode otel` warn of it as the
call's `time-order`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from tracecli.diagnostics import Diagnostic, Location, Severity
from tracecli.otel.checks import TIME_ORDER
from tracecli.otel.spans import Span
from tracecli.otel.to_weave import MappingError, iso_utc
from tracecli.otel.weave_keys import iso_from_ns

# the head of the attributes weave reads in place of the span's times (SPAN_OVERRIDES): a
# span without it and with its own times in order is no question (a caller's quick test)
OVERRIDES_HEAD = "langfuse"


class Reversed(NamedTuple):
    """A span whose call ends before it starts: the call's times as `span_to_call` writes
    them, and the attribute that gave the call one of them (None: the span's own times)."""

    started_at: str
    ended_at: str
    attribute: str | None  # "langfuse.endTime" (else "langfuse.startTime") or None


def reversed_call(span: Span, call: Callable[[], Mapping[str, Any]]) -> Reversed | None:
    """The times of the span's call when it ends before it starts, else None.

    `call` makes the call (`span_to_call`, or the call already made); it is only asked for
    a span holding langfuse attributes, the only ones whose call times are not the span's
    own. A span weave cannot map (`MappingError`) has no call, so nothing to say here."""
    if OVERRIDES_HEAD not in span.attributes:
        if span.end_time_unix_nano >= span.start_time_unix_nano:
            return None
        started, ended = span.start_time, span.end_time  # weave's rounding, to microseconds
        if ended >= started:
            return None
        return Reversed(iso_utc(started), iso_utc(ended), None)
    try:
        made = call()
    except MappingError:
        return None
    started_at, ended_at = made.get("started_at"), made.get("ended_at")
    if not isinstance(started_at, str) or not isinstance(ended_at, str):
        return None
    if _instant(ended_at) >= _instant(started_at):
        return None
    if ended_at != iso_from_ns(span.end_time_unix_nano) + "Z":
        attribute: str | None = "langfuse.endTime"
    elif started_at != iso_from_ns(span.start_time_unix_nano) + "Z":
        attribute = "langfuse.startTime"
    else:
        attribute = None
    return Reversed(started_at, ended_at, attribute)


def end_before_start(loc: Location, where: str, span: Span, r: Reversed) -> Diagnostic:
    """`convert`'s warning for a span whose call ends before it starts (a warning, as for a
    Weave call's `time-order`: weave's server stores it so), at the span field that set
    the call's end (or its start)."""
    stored = "weave's server stores the call so, with a negative latency"
    if r.attribute is None:
        return Diagnostic.at(
            loc,
            TIME_ORDER,
            f"span ends before it starts (end {span.end_time_unix_nano} < start "
            f"{span.start_time_unix_nano}): {stored}",
            f"{where}.endTimeUnixNano",
            Severity.WARNING,
        )
    return Diagnostic.at(
        loc,
        TIME_ORDER,
        f"the call ends before it starts by {r.attribute}, which weave reads in place of the "
        f"span's own time: ended_at {r.ended_at} < started_at {r.started_at}: {stored}",
        attribute_field(where, span, r.attribute),
        Severity.WARNING,
    )


def _instant(text: str) -> datetime:
    """A call time as `span_to_call` writes it (ISO 8601 with `Z` or an offset) as an
    instant; one without a zone is UTC, as weave's naive span times are."""
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def attribute_field(where: str, span: Span, key: str) -> str:
    """The field path of the attribute with this key (`...attributes[3]`; the last of
    duplicates, the one read), or of the span's attributes when the key was not read as an
    attribute of its own."""
    keys = span.keys
    if keys is not None and key in keys:
        return f"{where}.attributes[{len(keys) - 1 - keys[::-1].index(key)}]"
    return f"{where}.attributes"
