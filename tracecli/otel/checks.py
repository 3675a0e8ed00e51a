"""OTLP-level checks beyond one field: duplicate span ids, missing parents (a span's time
order: times.py).

Pure functions and one small ledger, each answering in the project's `Diagnostic` shape
(file, line, a field path such as `resourceSpans[0].scopeSpans[1].spans[3].spanId`), so
`convert` (and later `validate`/`upload`) report OTLP problems like any other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from tracecli.diagnostics import Diagnostic, Location, Severity


class SpanIds(Protocol):
    """What the id ledger reads of a span (a `Span`; `add_ids` takes the ids themselves)."""

    @property
    def span_id(self) -> str: ...
    @property
    def parent_id(self) -> str | None: ...
    @property
    def trace_id(self) -> str: ...


class Passes(Protocol):
    """What the earlier passes of `upload --follow` read (`tracecli.check.passes`): a
    parent read by one is in the inputs; a parent not read yet may be written later."""

    def knows(self, h: int) -> bool: ...
    def read(self, hashes: Iterable[int]) -> None: ...
    def hold(self, parent: int, diags: list[Diagnostic]) -> None: ...


# codes, stable for scripts
FIELD = "otlp-field"  # a field protobuf/weave cannot read (bad id, integer, value type)
SHAPE = "otlp-shape"  # not an ExportTraceServiceRequest
DUPLICATE = "otlp-duplicate-span"
MISSING_PARENT = "otlp-missing-parent"
TIME_ORDER = "otlp-end-before-start"
NO_PROJECT = "otlp-no-project"
REFUSED = "otlp-weave-refuses"  # weave's server fails or rejects the span


@dataclass
class _Pending:
    loc: Location
    where: str
    trace_id: str
    children: int = 1


@dataclass
class SpanLedger:
    """Span ids seen so far, and parents named but not (yet) seen.

    Children usually come before their parents (a span is written when it ends), so a
    missing parent can only be told at the end of all inputs: `missing_parents()`.
    Weave keys a call by its span id alone, so ids are compared across traces too.
    Memory: one id per span (held as an int) plus the parents still awaited.
    """

    _seen: dict[int, Location] = field(default_factory=dict)
    _awaited: dict[int, _Pending] = field(default_factory=dict)

    def add(self, loc: Location, where: str, span: SpanIds) -> Diagnostic | None:
        """Record a span; a span id read before is an error (weave would store one call)."""
        return self.add_ids(loc, where, span.span_id, span.parent_id, span.trace_id)

    def add_ids(
        self, loc: Location, where: str, span_id: str, parent_id: str | None, trace_id: str
    ) -> Diagnostic | None:
        """`add` for a span's ids as they are (what a worker sends back of a span)."""
        key = int(span_id, 16)
        first = self._seen.get(key)
        if first is not None:
            return Diagnostic.at(
                loc,
                DUPLICATE,
                f"span id {span_id} already read at {first.path}:{first.line}; "
                "this copy is left out",
                f"{where}.spanId",
            )
        self._seen[key] = loc
        self._awaited.pop(key, None)
        if parent_id is not None:
            parent = int(parent_id, 16)
            if parent not in self._seen:
                pending = self._awaited.get(parent)
                if pending is None:
                    self._awaited[parent] = _Pending(loc, f"{where}.parentSpanId", trace_id)
                else:
                    pending.children += 1
        return None

    def missing_parents(self, passes: Passes | None = None) -> list[Diagnostic]:
        """Parents named by some span and found in none of the inputs (warnings). A pass
        of `upload --follow` (`passes`) leaves out those an earlier pass read and holds
        the others for a later pass to read (span ids as the ints the ledger keys by)."""
        if passes is not None:
            passes.read(self._seen)
        out = []
        for parent, p in self._awaited.items():
            if passes is not None and passes.knows(parent):
                continue
            more = f" (and {p.children - 1} more spans)" if p.children > 1 else ""
            d = Diagnostic.at(
                p.loc,
                MISSING_PARENT,
                f"parent span {parent:016x} of trace {p.trace_id} is not in the inputs"
                f"{more}: its call will show without its parent",
                p.where,
                Severity.WARNING,
            )
            if passes is None:
                out.append(d)
            else:
                passes.hold(parent, [d])
        return out
