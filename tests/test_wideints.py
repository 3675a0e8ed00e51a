"""Integers beyond 64 bits: accepted and kept exact end to end (tracecli.wideints)."""

from __future__ import annotations

import json

import orjson

from tracecli.encode import dumps, loads, split_complete
from tracecli.wideints import may_hold_wide_ints, wide_ints

BIG = 123456789012345678901234567890


def test_only_integers_outside_orjsons_exact_range_are_named():
    assert not may_hold_wide_ints(b'{"a": 123456789012345678, "id": "0123-4567"}')
    assert may_hold_wide_ints(b'{"a": 1234567890123456789}')
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
