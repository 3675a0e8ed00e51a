"""Values orjson cannot read or write as they are (tracecli.wire.wideints): kept as weave's
server reads them, exact integers beyond 64 bits above all."""

from __future__ import annotations

import json

import orjson

from tracecli.journal.rejected import record_line
from tracecli.wire.encode import dumps, loads, split_complete
from tracecli.wire.wideints import (
    NonFinite,
    deep_fields,
    exact_loads,
    may_hold_wide_ints,
    odd_values,
    wide_ints,
)

BIG = 123456789012345678901234567890


def test_only_integers_outside_orjsons_exact_range_are_named():
    assert not may_hold_wide_ints(b'{"a": 123456789012345678, "id": "0123-4567"}')
    assert not may_hold_wide_ints(b'{"a": 9999999999999999999}')  # 19 digits fit u64
    assert may_hold_wide_ints(b'{"a": -1234567890123456789}')
    assert may_hold_wide_ints(b'{"a": 12345678901234567890}')
    raw = json.dumps(
        {"a": {"b": [1, BIG]}, "ok": 2**64 - 1, "neg": -(2**63) - 1, "f": 0.12345678901234567891}
    ).encode()
    assert sorted(wide_ints(raw)) == [("a.b.1", BIG), ("neg", -(2**63) - 1)]
    assert wide_ints(b'{"s": "12345678901234567890123"}') == []  # a string is kept as it is
    assert orjson.loads(b"18446744073709551615") == 2**64 - 1  # the edge orjson keeps


def test_encoding_keeps_the_digits_and_reads_them_back() -> None:
    body = {"project_id": "e/p", "id": "x", "inputs": {"seed": BIG, "neg": -(2**70)}}
    wire = dumps(body)
    assert str(BIG).encode() in wire and str(-(2**70)).encode() in wire
    assert loads(wire) == body
    start, _rest, _tail = split_complete(dumps({**body, "output": BIG, "summary": {}}))
    assert loads(start)["inputs"]["seed"] == BIG


def test_what_orjson_cannot_write_is_written_as_weaves_server_reads_it() -> None:
    value = exact_loads(b'{"a": NaN, "b": [Infinity, 1e400, -0.0], "s": "\\ud800", "n": 1}')
    assert type(value["a"]) is NonFinite and value["a"].text == "NaN"
    assert [o.code for o in odd_values(value)] == ["non-finite"] * 3 + ["surrogate"]
    assert loads(dumps(value)) == {"a": None, "b": [None, None, -0.0], "s": "\ud800", "n": 1}
    deep: object = 1
    for _ in range(400):
        deep = {"k": deep}
    assert loads(dumps({"deep": deep, "big": BIG})) == {"deep": deep, "big": BIG}


def test_the_rejected_file_holds_what_was_read() -> None:
    """orjson cannot write these: Python's json writes them back as the user wrote them."""
    raw = b'{"a": NaN, "big": 123456789012345678901234567890, "s": "\\ud800", "d": ' + (
        b"[" * 300 + b"1" + b"]" * 300 + b"}"
    )
    value = exact_loads(raw)
    line = record_line({**value, "_tracecli": {"line": 1}})
    again = exact_loads(line)
    assert again["big"] == BIG and again["s"] == "\ud800" and again["d"] == value["d"]
    assert again["a"] != again["a"]  # NaN, as read
    too_deep: object = 1
    for _ in range(1500):
        too_deep = [too_deep]
    line = record_line({"d": too_deep, "_tracecli": {"line": 2}})
    assert orjson.loads(line)["_tracecli"]["line"] == 2  # its body cannot be written


def test_depth_is_measured_per_field_as_the_server_reads_it() -> None:
    def nest(n: int) -> object:
        v: object = 1
        for _ in range(n):
            v = [v]
        return v

    assert deep_fields({"output": nest(254), "inputs": {"x": nest(254)}}) == []
    found = deep_fields({"output": nest(255), "inputs": {"x": nest(255)}})
    assert [(d.field.split(".")[0], d.levels, d.stored) for d in found] == [
        ("output", 255, True),
        ("inputs", 256, True),
    ]
    assert not deep_fields({"inputs": {"x": nest(600)}})[0].stored
