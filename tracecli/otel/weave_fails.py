"""`upload --mode otel`: a span weave's server fails on is refused before it is sent.

That mode sends spans as read, and weave converts them on its side. A span whose values
its conversion cannot take (a `wandb.display_name` that is no string, a run step that is no
integer, bytes in the inputs, ...) makes weave's server answer 500 for the whole request:
retried, it fails again, and every span of its chunk was left unsent. The other modes
convert the span here and refuse it (`otlp-weave-refuses`, naming what weave fails on);
this makes the same conversion to tell the same, at the same line and field path.
"""

from __future__ import annotations

from tracecli.diagnostics import Diagnostic, Location
from tracecli.otel.checks import REFUSED
from tracecli.otel.convert import encode_call
from tracecli.otel.spans import Span
from tracecli.otel.to_weave import MappingError, check_span, plain_call, span_to_call


def weave_fails_on(loc: Location, where: str, span: Span, project: str) -> Diagnostic | None:
    """The refusal the other modes give a span weave's server fails on; None for a span
    it takes. The usual span is only checked (`check_span`: its picks and what weave
    reads of them), as no call is sent; one whose picks may hold a value JSON cannot carry
    (bytes: weave fails too) has its call made and encoded, as the other modes do."""
    try:
        if plain_call(span):
            check_span(span, project)
        else:
            encode_call(span_to_call(span, project))
    except MappingError as exc:
        return Diagnostic.at(loc, REFUSED, str(exc), exc.field(where))
    return None
