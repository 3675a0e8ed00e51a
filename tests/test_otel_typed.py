"""The typed reading of OTLP lines (`tracecli.otel.typed`) is the usual reading.

Where `typed_spans` answers, its spans are those `spans_of_request` reads from orjson's
reading of the same line; and a block mapped with it (`map_lines`, upload and validate) is
the block mapped without it: the same entries, refusals and diagnostics, for the usual
spans, spans changed in the ways the usual reader cares about, and lines written in odd
ways (escapes, big numbers, duplicate keys, bytes that are not UTF-8, unknown fields).
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.otel_spans import ANY_VALUES as _ANY_VALUES
from tests.support.otel_spans import ATTRIBUTE_LISTS as _attribute_lists
from tests.support.otel_spans import CHANGES as _CHANGES
from tests.support.otel_spans import SPANS as _SPANS
from tests.support.otel_spans import same_values as _same
from tests.support.sweeps import examples
from tracecli.diagnostics import Location
from tracecli.otel import typed
from tracecli.otel.attrlist import quick_attributes
from tracecli.otel.read import spans_of_request
from tracecli.otel.typed import KeyValue, typed_attributes, typed_spans
from tracecli.upload import otlp_map

FIXTURES = Path(__file__).parent / "otel_fixtures"
LOC = Location("spans.jsonl", 7)
_typed_list = msgspec.json.Decoder(list[KeyValue]).decode


def _span_view(s: Any) -> Any:
    """A decoded span as comparable values: its fields, with the types of its values."""
    d = s.span.__dict__.copy()
    d["dump"] = s.span.otel_dump()
    d["resource"] = s.span.resource.dump() if s.span.resource else None
    return (s.loc, s.where, s.project_id, d)


def _same_spans(raw: bytes) -> bool:
    """typed_spans says nothing, or what the usual reading says."""
    typed = typed_spans(LOC, raw)
    if typed is None:
        return True
    usual = list(spans_of_request(LOC, orjson.loads(raw)))
    got, want = [_span_view(s) for s in typed], [_span_view(s) for s in usual]
    assert _same(got, want), (got, want)
    return False


def _mapped(lines: list[tuple[int, bytes]], validate: bool, typed: bool) -> str:
    real = otlp_map.typed_rows
    if not typed:
        otlp_map.typed_rows = lambda raw: None  # type: ignore[assignment]
    try:
        return repr(otlp_map.map_lines(lines, "spans.jsonl", "e/p", validate).lines)
    finally:
        otlp_map.typed_rows = real


def _same_mapping(raws: list[bytes]) -> None:
    lines = list(enumerate(raws, 1))
    for validate in (False, True):
        assert _mapped(lines, validate, True) == _mapped(lines, validate, False)


@settings(max_examples=examples(400))
@given(_attribute_lists)
def test_typed_attributes_are_quick_attributes(items: list[dict[str, Any]]) -> None:
    raw = orjson.dumps(items)
    try:
        _typed_list(raw)
    except msgspec.DecodeError:
        return  # not the usual list (NaN as text, an integer as a number): not typed
    for _ in range(3):  # each shape nested key by key, then by its built function
        typed = typed_attributes(_typed_list(raw))
        if typed is None:
            continue
        usual = quick_attributes(orjson.loads(raw))
        assert usual is not None
        assert _same(typed.values, usual.values), (typed.values, usual.values)
        assert (typed.impure, typed.keys) == (usual.impure, usual.keys)


# the values of a list that shares another's keys: other kinds, odd values, none, two kinds
_ODD_VALUES = st.one_of(
    _ANY_VALUES,
    st.sampled_from(
        [
            {},
            {"stringValue": "a", "intValue": "1"},
            {"intValue": "-1"},
            {"intValue": "1" * 19},
            {"intValue": ""},
            {"intValue": "\u0661"},
            {"doubleValue": 1},
            {"bytesValue": "AAE="},
            {"bytesValue": "!"},
            {"stringValue": "[1e400]"},
            {"stringValue": '{"a": NaN}'},
            {"stringValue": "[" + "1" * 30 + "]"},
        ]
    ),
)


@settings(max_examples=examples(400))
@given(_attribute_lists.filter(len), st.data())
def test_a_shapes_reader_reads_as_the_general_loop(
    items: list[dict[str, Any]], data: st.DataObject
) -> None:
    """A list of a shape met before is read by the shape's function (`typed_plan`): the
    same reading as the general loop's, for lists of its keys with any values, or none
    (a value of another kind, two kinds, no value, a value it cannot read)."""
    keys = [kv["key"] for kv in items]
    other = [{"key": k, "value": data.draw(_ODD_VALUES)} for k in keys]
    for kv, keep in zip(
        other,
        data.draw(st.lists(st.sampled_from([False] * 7 + [True]), min_size=len(keys))),
        strict=False,
    ):
        if keep:
            kv.pop("value")  # (a KeyValue without its value)
    try:
        first, second = (_typed_list(orjson.dumps(x)) for x in (items, other))
    except msgspec.DecodeError:
        return  # not the usual list: not typed
    for _ in range(3):  # its shape learnt (a reader made where its list nests by a function)
        typed_attributes(first)
    for raw in (first, second, first):
        got, want = typed_attributes(raw), typed._read_attributes(raw)
        if want is None:
            assert got is None
            continue
        assert got is not None
        assert _same(got.values, want.values), (got.values, want.values)
        assert (got.impure, got.keys) == (want.impure, want.keys)


def test_the_fixtures_shapes_get_readers() -> None:
    """The usual spans' lists are read by their shapes' functions (the fast path is used)."""
    typed._READERS.clear()
    lines = gzip.decompress((FIXTURES / "agent-seed1.jsonl.gz").read_bytes()).splitlines()
    for _ in range(2):
        for raw in lines:
            assert typed_spans(LOC, raw) is not None
    assert len(typed._READERS) >= 5
    assert all(r is not typed._never for r in typed._READERS.values())
    for raw in lines:
        for s in typed_spans(LOC, raw) or ():
            assert s.span.keys is None or not s.span.keys or s.span.keys in typed._READERS


def _line(spans: list[dict[str, Any]], resource: Any = None, scope: Any = None) -> bytes:
    rs: dict[str, Any] = {"scopeSpans": [{"scope": scope or {"name": "s"}, "spans": spans}]}
    if resource is not None:
        rs["resource"] = resource
    return orjson.dumps({"resourceSpans": [rs]})


_RESOURCES = st.sampled_from(
    [
        None,
        {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
        {"attributes": [{"key": "wandb.entity", "value": {"stringValue": "e"}},
                        {"key": "wandb.project", "value": {"stringValue": "p"}}]},
        {"attributes": [{"key": "a", "value": {}}]},
        {"attributes": [{"key": "a", "value": {"bytesValue": "AAE="}}]},
        {"droppedAttributesCount": 2},
        {"attributes": "x"},
        [],
    ]
)  # fmt: skip


@settings(max_examples=examples(300))
@given(
    st.lists(
        st.tuples(st.sampled_from(range(len(_SPANS))), st.lists(_CHANGES, max_size=3)),
        min_size=1,
        max_size=3,
    ),
    _RESOURCES,
    st.sampled_from([None, {"name": "s", "version": "1"}, {"name": "s", "attributes": []}]),
)
def test_typed_lines_are_the_usual_lines(
    spans: list[tuple[int, list[tuple[str, Any]]]], resource: Any, scope: Any
) -> None:
    raw = _line([{**_SPANS[n], **dict(changes)} for n, changes in spans], resource, scope)
    _same_spans(raw)
    _same_mapping([raw])


def _fixture_lines() -> list[bytes]:
    out: list[bytes] = []
    for name in ("agent-seed1.jsonl.gz", "conventions.jsonl", "wb_run_id.jsonl"):
        data = (FIXTURES / name).read_bytes()
        out.extend((gzip.decompress(data) if name.endswith(".gz") else data).splitlines())
    return out


def test_the_fixtures_usual_lines_are_read_typed() -> None:
    """The typed reading does answer for the usual lines (else it would only cost)."""
    lines = _fixture_lines()
    agent = gzip.decompress((FIXTURES / "agent-seed1.jsonl.gz").read_bytes()).splitlines()
    assert not any(_same_spans(raw) for raw in agent)  # the real SDK's lines: all typed
    assert all(typed_spans(LOC, raw) is not None for raw in agent)
    for raw in lines:
        _same_spans(raw)
    _same_mapping(lines)


_SPAN = orjson.dumps(_SPANS[0])
_ATTRS = b'"attributes":['


def _attr(text: bytes) -> tuple[bytes, bytes]:
    """An attribute (`{"key":..,"value":..}`, with its comma) put first in the span's list."""
    return _ATTRS, _ATTRS + text


def _before_status(text: bytes) -> tuple[bytes, bytes]:
    return b'"status":{', text + b'"status":{'


_ODD = [
    # (a fragment of the usual span's text, what it becomes)
    (b'"kind":', b'"kind":1.0,"kind":'),  # a duplicate key: the last one
    (b'"kind":3', b'"kind":-0'),
    (b'"kind":3', b'"kind":18446744073709551619'),  # beyond 64 bits: orjson makes a float
    (b'"flags":256', b'"flags":256000000000000000000000'),
    (b'"flags":256', b'"flags":1e400'),
    (b'"name":"', b'"name":"\\u0041\\ud83d\\ude00'),
    (b'"name":"', b'"name":"\\ud800'),  # a lone surrogate: no JSON for orjson
    (b'"name":"', b'"name":"\xff'),  # not UTF-8
    (b'"name":"', b'"name":"\x01'),  # a control character
    (b'"traceId"', b'"trace\\u0049d"'),  # a key written with an escape
    _attr(b'{"key":"big","value":{"doubleValue":1e309}},'),
    _attr(b'{"key":"big","value":{"doubleValue":18446744073709551616}},'),
    _attr(b'{"key":"n","value":{"doubleValue":5}},'),
    _attr(b'{"key":"n","value":{"intValue":5}},'),
    _attr(b'{"key":"n","value":{"intValue":"-5"}},'),
    _attr(b'{"key":"n","value":{"intValue":"\xd9\xa1"}},'),
    _attr(b'{"key":"n","value":{"doubleValue":"NaN"}},'),
    _attr(b'{"key":"n","value":{"stringValue":"a","intValue":"1"}},'),
    _attr(b'{"key":"n","value":{"stringValue":"a","stringValue":"[1]"}},'),
    _attr(b'{"key":"n","value":{"stringValue":null}},'),
    _attr(b'{"key":"n","value":{}},'),
    _attr(b'{"value":{"boolValue":true}},'),
    _attr(b'{"key":"n","value":{"bytesValue":"not base64!"}},'),
    _attr(b'{"key":"a","value":{"arrayValue":{"values":[{"doubleValue":1e400}]}}},'),
    _attr(b'{"key":"a","value":{"arrayValue":{"values":[{"intValue":"99999999999999999999"}]}}},'),
    _attr(b'{"key":"a","value":{"arrayValue":{"values":[{"stringValue":"\xff"}]}}},'),
    _attr(b'{"key":"a","value":{"arrayValue":{"values":[1e999999]}}},'),
    _attr(b'{"key":"a","value":{"kvlistValue":{"values":[{"key":"x",'
          b'"value":{"stringValue":"{\\"n\\": NaN}"}}]}}},'),
    _attr(b'{"key":"a","value":{"arrayValue":' + b"[" * 1100 + b"]" * 1100 + b"}},"),
    _attr(b'{"key":"s","value":{"stringValue":"{\\"n\\": 123456789012345678901}"}},'),
    _attr(b'{"key":"a","value":{"stringValue":"x"}},{"key":"a.b","value":{"stringValue":"y"}},'),
    _attr(b'{"key":"a","value":{"stringValue":"x"},"extra":1},'),
    (b'"status":{', b'"status":{"code":"STATUS_CODE_ERROR","message":"m"},"x":{'),
    (b'"status":{', b'"droppedAttributesCount":1,"status":{'),
    _before_status(b'"links":[],"events":[{"name":"e","timeUnixNano":"1",'
                   b'"droppedAttributesCount":4294967296}],'),
    _before_status(b'"events":[{"name":"e","timeUnixNano":"1",'
                   b'"attributes":[{"key":"k","value":{"intValue":"1"}}]}],'),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new"), _ODD, ids=[str(i) for i in range(len(_ODD))])
def test_odd_lines_are_read_as_usual(old: bytes, new: bytes) -> None:
    assert old in _SPAN
    span = _SPAN.replace(old, new, 1)
    line = b'{"resourceSpans":[{"scopeSpans":[{"spans":[' + span + b"]}]}]}"
    if typed_spans(LOC, line) is not None:
        _same_spans(line)
    _same_mapping([line, line.replace(b'"resourceSpans"', b'"resource":null,"resourceSpans"')])


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"   ",
        b"{}",
        b"[]",
        b'{"resourceSpans":[]}',
        b'{"resourceSpans":null}',
        b'{"resourceSpans":[{}]}',
        b'{"resourceSpans":[{"scopeSpans":[{}]}]}',
        b'{"resourceSpans":[{"resource":{"attributes":[{"key":"a","value":{"doubleValue":1e999}}]}}]}',
        b'{"resourceSpans":[{"resource":{"attributes":[{"key":"a","value":{"stringValue":"\xff"}}]}}]}',
        b'{"resourceSpans":[{"resource":{"x":12345678901234567890123},"scopeSpans":[]}]}',
        b'{"resourceSpans":[],"resource_spans":[]}',
        b'{"resourceSpans":[]} x',
    ],
    ids=str,
)
def test_odd_requests_are_read_as_usual(line: bytes) -> None:
    if typed_spans(LOC, line) is not None:
        _same_spans(line)
    _same_mapping([line])


def test_an_array_read_once_per_text_is_a_fresh_list_each_time() -> None:
    """Weave's look-ups may change a value in place: a span's array is its own."""
    items = _typed_list(b'[{"key":"k","value":{"arrayValue":{"values":[{"intValue":"1"}]}}}]')
    first = typed_attributes(items)
    assert first is not None
    first.values["k"].append(2)
    again = typed_attributes(_typed_list(orjson.dumps([{"key": "k", "value": {
        "arrayValue": {"values": [{"intValue": "1"}]}}}])))  # fmt: skip
    assert again is not None and again.values == {"k": [1]}


_LITERALS = [b"01", b"1.", b".5", b"+1", b"-", b"1e", b"0x10", b"Infinity", b"NaN", b"-01",
             b"00", b"-0.0e0", b"tru", b"null", b'"\\u0000"', b'"a\x00"', b" 1 ",
             b"\x0c1"]  # fmt: skip


@pytest.mark.parametrize("literal", _LITERALS, ids=repr)
def test_json_that_orjson_refuses_is_refused_as_usual(literal: bytes) -> None:
    """What orjson refuses msgspec refuses too, in every typed place: numbers, strings."""
    lines = [
        _SPAN.replace(b'"kind":3', b'"kind":' + literal, 1),
        _SPAN.replace(b'"name":"chat gpt-4o-mini"', b'"name":' + literal, 1),
        _SPAN.replace(_ATTRS, _ATTRS + b'{"key":"d","value":{"doubleValue":' + literal + b"}},"),
    ]
    wrapped = [b'{"resourceSpans":[{"scopeSpans":[{"spans":[' + s + b"]}]}]}" for s in lines]
    assert all(s != _SPAN for s in lines)
    for line in wrapped:
        if typed_spans(LOC, line) is not None:
            _same_spans(line)
    _same_mapping(wrapped)
