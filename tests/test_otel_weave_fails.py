"""`upload --mode otel` refuses the spans weave's server fails on without making their calls.

`weave_fails_on` made each span's whole call (`span_to_call`: picks, `otel_span`, times,
the summary) to find the few weave fails on; it now runs only the picks and the checks of
what weave reads of them (`check_span`), and makes the call only for a span whose picks
may hold bytes. Its verdicts are held here to the whole call's, span by span: the
committed fixtures' spans and hand-made ones for each refusal. (The slow tests of
test_otel_producers.py hold them to weave-ref's answers.)
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.otel_spans import bare_span, fixture_spans
from tracecli.diagnostics import Diagnostic, Location
from tracecli.otel.anyvalue import FieldError
from tracecli.otel.checks import REFUSED
from tracecli.otel.convert import encode_call
from tracecli.otel.spans import Resource, decode_span
from tracecli.otel.to_weave import MappingError, plain_call, span_to_call
from tracecli.otel.weave_fails import weave_fails_on

LOC = Location("f.jsonl", 1)


def kv(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


def text(s: str) -> dict[str, Any]:
    return {"stringValue": s}


def number(n: int) -> dict[str, Any]:
    return {"intValue": str(n)}


BYTES = {"bytesValue": "aGVsbG8="}
# attribute lists weave's server fails on (or takes, beside them), one per span
HAND_MADE: list[list[dict[str, Any]]] = [
    [kv("wandb.display_name", number(5))],
    [kv("wandb.thread_id", number(3))],
    [kv("gen_ai.conversation.id", number(3))],
    [kv("wandb.wb_run_id", number(3))],
    [kv("wandb.wb_run_step", text("x"))],
    [kv("wandb.wb_run_step", number(-1))],
    [kv("wandb.wb_run_step_end", text("2.0"))],
    [kv("input.value", BYTES)],
    [kv("output", {"doubleValue": 1.5})],
    [kv("output", {"doubleValue": 1.5}), kv("input.value", text("hi"))],
    [kv("gen_ai.usage.input_tokens", text("7"))],
    [kv("gen_ai.usage.input_tokens", {"doubleValue": 7.0})],
    [kv("gen_ai.request.model", number(4))],
    [kv("model_parameters", {"arrayValue": {"values": [text("m")]}})],
    [kv("wandb.attributes", {"arrayValue": {"values": [number(1)]}})],
    [kv("wandb.attributes", text('{"a": 1}'))],
    [kv("fingerprint", BYTES)],  # bytes no pick reads: weave takes it
    [kv("fingerprint", BYTES), kv("gen_ai.usage.input_tokens", text("x"))],
    [kv("input.value", text('{"x": NaN}'))],
    [kv("wandb.display_name", text("d" * 2000))],
    [kv("gen_ai.usage.input_tokens", number(3)), kv("gen_ai.usage.output_tokens", number(4))],
]
# 128+ characters: weave shortens them, and fails on the one that ends in delimiters
NAMES = ["a" * 120 + " " * 10, "a," * 70, "a" * 130, "x. " * 50 + "y"]


def the_whole_calls_verdict(span: dict[str, Any]) -> Diagnostic | None:
    """What `weave_fails_on` answered by making the call (its code before this change)."""
    decoded = decode_span(span, Resource())
    try:
        call = span_to_call(decoded, "e/p")
        if not plain_call(decoded):
            encode_call(call)
    except MappingError as exc:
        return Diagnostic.at(LOC, REFUSED, str(exc), "spans[0]")
    return None


def spans() -> list[dict[str, Any]]:
    out = list(fixture_spans())
    for n, attrs in enumerate(HAND_MADE):
        out.append({**bare_span(f"{n + 1:016x}"), "attributes": attrs})
    for n, name in enumerate(NAMES):
        out.append({**bare_span(f"{n + 1:08x}00000000"), "name": name})
    return out


def test_the_verdicts_are_the_whole_calls() -> None:
    refused = 0
    for span in spans():
        try:
            decode_span(span, Resource())
        except FieldError:
            continue  # (refused before weave's mapping: not this check's)
        expected = the_whole_calls_verdict(span)
        got = weave_fails_on(LOC, "spans[0]", decode_span(span, Resource()), "e/p")
        assert got == expected, (span.get("name"), span.get("attributes"))
        refused += got is not None
    assert refused == 12  # (the hand-made spans weave fails on, the fixtures' none)


@pytest.mark.parametrize("attrs", HAND_MADE[:3])
def test_a_refusal_names_what_weave_fails_on(attrs: list[dict[str, Any]]) -> None:
    span = decode_span({**bare_span("00000000000000aa"), "attributes": attrs}, Resource())
    got = weave_fails_on(LOC, "spans[0]", span, "e/p")
    assert got is not None and "not a string: weave fails on it" in got.message
