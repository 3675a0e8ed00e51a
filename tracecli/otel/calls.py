"""OTLP lines → Weave completed calls, line by line, for `validate` and `upload`.

`convert` writes the calls to a file; `validate` and `upload` read OTLP files directly and
hand the calls on to the checks and the sender they use for Weave files. This is the part
they share: one line's spans decoded and checked at the OTLP level (field paths, duplicate
span ids across lines and files, a project; a span that ends before it starts is a call
like any other, which the call checks warn about), each either a call or a refusal
that carries the span as it was read (a one-span `ExportTraceServiceRequest`, which the
rejected file holds so that a fixed line can be uploaded again).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tracecli.diagnostics import Diagnostic, Location
from tracecli.otel.checks import NO_PROJECT, REFUSED, Passes, SpanLedger
from tracecli.otel.read import Unread, spans_of_request
from tracecli.otel.to_weave import MappingError, span_to_call


@dataclass(frozen=True, slots=True)
class Call:
    """A span converted: the call (JSON values) and where the span was read."""

    loc: Location
    where: str  # the span's field path within its line
    call: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Refusal:
    """A span (or a part of a line) left out: why, and the part as it was read."""

    diagnostic: Diagnostic
    original: Any  # a one-span request (or the line, when no span can be told)
    spans: int


_STEP = re.compile(r"(resourceSpans|scopeSpans|spans)\[(\d+)\]")


def original_at(value: Any, where: str) -> Any:
    """The part of a line a field path points into, as a request of its own: the span with
    its resource and scope (or the whole resource or scope when the path ends there)."""
    steps = [(m.group(1), int(m.group(2))) for m in _STEP.finditer(where)]
    if not steps or not isinstance(value, dict):
        return value
    try:
        spans: Any = value.get("resourceSpans", value.get("resource_spans"))
        rs = spans[steps[0][1]]
        if len(steps) == 1:
            return {"resourceSpans": [rs]}
        scopes = rs.get("scopeSpans", rs.get("scope_spans"))
        ss = scopes[steps[1][1]]
        shell = {k: v for k, v in rs.items() if k not in ("scopeSpans", "scope_spans")}
        if len(steps) == 2:
            return {"resourceSpans": [{**shell, "scopeSpans": [ss]}]}
        span = ss["spans"][steps[2][1]]
        scope = {k: v for k, v in ss.items() if k != "spans"}
        return {"resourceSpans": [{**shell, "scopeSpans": [{**scope, "spans": [span]}]}]}
    except (AttributeError, IndexError, KeyError, TypeError):
        return value


def span_original(value: Any, span_id: str) -> Any:
    """The span of a line with this (lowercase hex) id, as a one-span request; the line
    when no span has it."""
    for item in spans_of_request(Location("", 0), value):
        if not isinstance(item, Unread) and item.span.span_id == span_id:
            return original_at(value, item.where)
    return value


class SpanCalls:
    """The conversion state of one run: span ids seen (duplicates, parents never read) and
    the files told they lack a project."""

    def __init__(self, project: str | None) -> None:
        self.project = project
        self.ledger = SpanLedger()
        self._no_project_in: set[str] = set()

    def of_line(self, loc: Location, value: Any) -> Iterator[Call | Refusal]:
        """Each span of one line (an ExportTraceServiceRequest), in order."""
        for item in spans_of_request(loc, value):
            if isinstance(item, Unread):
                d = item.diagnostic
                yield Refusal(d, original_at(value, d.field), item.spans)
                continue
            where, span = item.where, item.span
            refused = self.ledger.add(loc, where, span)
            if refused is None:
                project = item.project_id or self.project
                if project is None:
                    refused = self.no_project(loc, where)
                else:
                    try:
                        yield Call(loc, where, span_to_call(span, project))
                        continue
                    except MappingError as exc:
                        refused = Diagnostic.at(loc, REFUSED, str(exc), exc.field(where))
            yield Refusal(refused, original_at(value, where), 1)

    def no_project(self, loc: Location, where: str) -> Diagnostic:
        """A span of a resource without wandb.* attributes, and no --project."""
        first = loc.path not in self._no_project_in
        self._no_project_in.add(loc.path)
        message = (
            "no project: the resource has no wandb.entity/wandb.project attributes; give "
            "--project entity/project"
        )
        if not first:
            message = "no project (see the first span of this file)"
        return Diagnostic.at(loc, NO_PROJECT, message, where)

    def finish(self, passes: Passes | None = None) -> list[Diagnostic]:
        """What only the end of all inputs tells: parents found in none of them (see
        `SpanLedger.missing_parents` for `passes`)."""
        return self.ledger.missing_parents(passes)
