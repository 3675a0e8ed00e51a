"""JSON text in a span's attributes nested past what weave's server reads back or stores.

weave loads every attribute string that starts with `[` or `{` as JSON
(`nesting.load_json_text`), so text nested N levels becomes a value its call holds N levels
deep plus where it lies: `otel_dump.attributes.<key>` is N + 2 for a key without dots, one
more per dot. weave's server stores a call nested past `READ_DEPTH` but then cannot read
the project back, and fails (500) past about `STORE_DEPTH`: the limits of a Weave JSONL
record (`tracecli.wire.wideints.deep_fields`), applied here to the span's call.

The exact check walks the whole call, so it is made only for a span one of whose texts
could nest that deep: `load_json_text` counts (`DEEP_TEXTS`) a text long enough to hold
`SUSPECT` levels with as many `[` and `{` (a count at C speed, of long texts only), and
the readers mark the span (`Span.deep`) whose attributes, events or resource loaded one.
A key of more than ~50 dotted parts nests as deep with less text: not looked for.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from tracecli.diagnostics import Diagnostic, Location, Severity
from tracecli.otel.spans import Span
from tracecli.wire.wideints import Deep, _shorten, deep_fields, deep_message, depth

DEPTH = "depth"  # the code of a JSONL record's deep value, the same here


class DeepText(NamedTuple):
    """A span's attribute whose JSON text its call nests too deep."""

    field: str  # relative to the span (to its resourceSpans entry: `on_resource`)
    on_resource: bool
    call_field: str  # where the call holds it (shortened)
    deep: Deep  # the verdict on the call (levels, limit, stored)

    def at(self, where: str) -> str:
        """The attribute's field path in its line, the span's being `where`."""
        if self.on_resource:
            return f"{where.split('.scopeSpans[')[0]}.{self.field}"
        return f"{where}.{self.field}"

    def message(self) -> str:
        return f"JSON text that weave loads as the call's {self.call_field}, which " + (
            deep_message(self.deep)
        )


def deep_text(span: Span, call: dict[str, Any]) -> DeepText | None:
    """The attribute of a span marked `deep` that makes its call nest past what weave's
    server reads back (the worst of the call's fields; `stored` False past what it
    stores); None when the call nests no deeper than that."""
    found = deep_fields(call)
    if not found:
        return None
    worst = max(found, key=lambda d: (not d.stored, d.levels))
    dump = call.get("otel_dump")
    path = depth(dump)[1] if type(dump) is dict else ""
    field, on_resource = _attribute(span, path.split(".")) if path else ("attributes", False)
    shown = _shorten(f"otel_dump.{path}") if path else worst.field
    return DeepText(field, on_resource, shown, worst)


def _attribute(span: Span, parts: list[str]) -> tuple[str, bool]:
    """The attribute a path of the call's `otel_dump` lies in (its index where the span's
    keys are known), and whether it is the resource's."""
    head = parts[0]
    if head == "resource":
        return "resource.attributes", True
    if head in ("events", "links") and len(parts) > 1:
        return f"{head}[{parts[1]}].attributes", False
    index = -1
    for i, key in enumerate(span.keys or ()):
        split = key.split(".")
        if parts[1 : 1 + len(split)] == split:
            index = i  # (the last of equal keys: the one weave keeps)
    return (f"attributes[{index}].value" if index >= 0 else "attributes"), False


def deep_warning(loc: Location, where: str, span: Span, call: dict[str, Any]) -> Diagnostic | None:
    """The warning for a span (marked `deep`) whose call weave's server stores but cannot
    read back; None for any other (one past what it stores: `span_to_call` refused it)."""
    if not span.deep:
        return None
    found = deep_text(span, call)
    if found is None or not found.deep.stored:
        return None
    return Diagnostic.at(loc, DEPTH, found.message(), found.at(where), Severity.WARNING)
