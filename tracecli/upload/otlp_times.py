"""`upload --mode otel`: the time-order warning for a span sent as it was read.

The spans go unchanged to weave's `/otel/v1/traces`, which stores a call that ends before
it starts (with a negative latency). The other modes convert the span and their call checks
warn of it (`time-order`); this says the same warning, at the same line and field, of the
call weave will make of the span (`tracecli.otel.times`), so both ways of sending a file
tell the same. `--strict` makes it an error, which refuses the span, as in the other modes.
"""

from __future__ import annotations

from tracecli.check.facts import time_order
from tracecli.diagnostics import Diagnostic, Location
from tracecli.otel.spans import Span
from tracecli.otel.times import reversed_call
from tracecli.otel.to_weave import span_to_call


def span_time_order(loc: Location, span: Span, project: str, strict: bool) -> Diagnostic | None:
    """The `time-order` warning (an error with `strict`) for a span whose call weave will
    store ending before it starts; None for any other span. The span is converted only when
    it holds langfuse times (the span is sent as read: the conversion's changes to its
    decoded attributes go nowhere)."""
    backwards = reversed_call(span, lambda: span_to_call(span, project))
    if backwards is None:
        return None
    d = time_order(loc.path, loc.line, "ended_at", backwards.ended_at, backwards.started_at, None)
    return d.as_error() if strict else d
