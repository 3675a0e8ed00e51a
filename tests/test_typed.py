"""The typed decoder (`schema.typed`, `upload.typed_lines`) answers as orjson + the fast path.

validate reads each line with msgspec first and falls back on orjson, the fast path and
the full check for any line it does not vouch for. The contract: a block checked with the
typed decoder gives exactly what it gives without it (the same entries, the same pairs),
whatever the bytes: duplicate keys, NaN, numbers beyond a double, integers beyond 64
bits, lone surrogates, bytes that are not UTF-8, deep nesting, nulls present or absent,
escaped keys, references. And the typed path must be taken for the records people write,
in every shape and style, or it is not worth its keep.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.sweeps import examples
from tests.support.validate_kit import body, complete, end, new_id, start
from tracecli.check.pairpack import unpack_pairs
from tracecli.schema import typed
from tracecli.schema.fields import COMPLETED_FIELDS, ENDED_FIELDS, STARTED_FIELDS
from tracecli.upload import validate_blocks as vb
from tracecli.upload.fastpath import fast_facts
from tracecli.upload.lines import find_ref
from tracecli.upload.typed_lines import block_bytes, shape_of, typed_line
from tracecli.wire.wideints import DEEP_BRACKETS

CID, TID = "6cad4a26-8d11-4ece-9738-f7d93d9c1724", "0123456789abcdef0123456789abcdef"
START = json.dumps(start(CID, TID)).encode()
END = json.dumps(end(CID)).encode()


@contextmanager
def _untyped() -> Iterator[None]:
    """validate's blocks without the typed decoder: every line read by orjson."""
    saved = vb.SHAPES
    vb.SHAPES = dict.fromkeys(saved)  # type: ignore[misc]
    try:
        yield
    finally:
        vb.SHAPES = saved  # type: ignore[misc]


@contextmanager
def _counting() -> Iterator[list[int]]:
    """The lines the typed decoder did not vouch for (read by orjson), by number."""
    seen: list[int] = []
    real = vb._orjson_line

    def spy(n: int, *args: Any) -> Any:
        seen.append(n)
        return real(n, *args)

    vb._orjson_line = spy  # type: ignore[assignment]
    try:
        yield seen
    finally:
        vb._orjson_line = real  # type: ignore[assignment]


def _slow_lines(data: bytes) -> list[int]:
    with _counting() as slow:
        _outcome(data)
    return slow


def _outcome(data: bytes) -> tuple[Any, ...]:
    vb._bulk.skip = 0  # (the flat records' block loop tried on every block: see test_validate_bulk)
    got = vb.check_lines(data, "t.jsonl", True)
    pairs = unpack_pairs(got.pairs) if got.pairs is not None else []
    return got.lines, got.records, got.entries, pairs


def _same(data: bytes) -> tuple[Any, ...]:
    """check_lines of `data` with and without the typed decoder: must be equal."""
    typed_way = _outcome(data)
    with _untyped():
        orjson_way = _outcome(data)
    assert typed_way == orjson_way, data[:300]
    for line in data.split(b"\n"):
        for shape in typed.SHAPES:  # decoded whole (for upload), the same answer
            lean, whole = typed_line(line, shape), typed_line(line, shape, whole=True)
            if lean is not None:
                assert whole is not None and whole.facts == lean.facts, line[:300]
            elif whole is not None:  # the lean decoder may be the more cautious one
                _as_the_full_check_says(line, whole.facts)
    return typed_way


def _as_the_full_check_says(line: bytes, facts: Any) -> None:
    """A line the whole decode vouches for and the lean one does not (a duplicate key whose
    earlier value has another type: the lean decoder checks each value as it comes, the
    whole one keeps the last): the orjson way must find the same facts, with nothing to
    report (its times settled to epoch seconds by the block: ids compared)."""
    with _untyped():
        got = vb.check_lines(line + b"\n", "t.jsonl", True)
    (entry,) = got.entries
    assert type(entry) is type(facts) and entry[1:5] == facts[1:5], line[:300]


def _block(*lines: bytes) -> bytes:
    return b"".join(line + b"\n" for line in lines)


# ------------------------------------------------------------------ taken where it should be
def _shapes(cid: str) -> dict[str, list[bytes]]:
    s, e = start(cid, TID), end(cid)
    dumps = json.dumps
    return {
        "flat": [dumps(s).encode(), dumps(e).encode()],
        "batch": [
            dumps({"mode": "start", "req": {"start": body(s)}}).encode(),
            dumps({"mode": "end", "req": {"end": body(e)}}).encode(),
        ],
        "request": [dumps({"start": body(s)}).encode(), dumps({"end": body(e)}).encode()],
        "complete": [dumps(complete(cid, TID)).encode()],
        "flat call": [dumps({"type": "call", **complete(cid, TID)}).encode()],
    }


@pytest.mark.parametrize("shape", ["flat", "batch", "request", "complete", "flat call"])
def test_every_shape_takes_the_typed_path(shape: str) -> None:
    lines = [line for _ in range(3) for line in _shapes(new_id())[shape]]
    got = _same(_block(*lines))
    # (the general loop reads the first line of a shape other than flat by orjson, which
    # names the shape; the bulk loops, `validate_bulk` and `validate_calls`, take these
    # blocks whole)
    assert _slow_lines(_block(*lines)) == []
    assert got[2] == [] or all(type(e).__name__ == "Facts" for e in got[2])
    if shape in ("flat", "batch", "request"):
        assert len(got[3]) == 3  # each call one pair: the fast path's facts


def _sorted(line: bytes, compact: bool = True) -> bytes:
    """`line` with its keys sorted ("type" after "trace_id"), as `sort_keys=True` writes."""
    value = orjson.loads(line)
    return (
        orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        if compact
        else json.dumps(value, sort_keys=True).encode()
    )


@pytest.mark.parametrize("compact", [True, False])
def test_a_late_type_takes_the_typed_path_in_one_pass(compact: bool) -> None:
    """Keys sorted: decoded by the Struct of the kind the bytes name, "type" a field."""
    cid = new_id()
    lines = [
        _sorted(line, compact) for line in _shapes(cid)["flat"] + _shapes(new_id())["flat call"]
    ]
    assert not lines[0].startswith(b'{"type"')
    got = _same(_block(*lines))
    assert _slow_lines(_block(*lines)) == [] and len(got[3]) == 1
    for line, name in zip(lines, ("Start", "End", "Call"), strict=True):
        i = line.rfind(typed.TYPE_KEY) + len(typed.TYPE_KEY)
        record = typed.UNTAGGED[line[i : i + 3]](line)
        assert type(record).__name__ == f"Flat{name}Untagged"


@pytest.mark.parametrize(
    "edit",
    [
        (b"inputs", b'{"type": "end"}'),  # a "type" inside a value, last: a wrong guess
        (b"inputs", b'{"type": "start"}'),
        (b"inputs", b'{"type": "call"}'),
        (b"inputs", b'{"type": "other"}'),
        (b"type", b'"end"'),  # two "type" keys: the last counts, in both readers
        (b"type", b'"start"'),
        (b"type", b'"call"'),
        (b"type", b"null"),
        (b"type", b' "start"'),
        (b"typ\\u0065", b'"end"'),
    ],
)
def test_a_late_type_that_misleads_reads_the_same_both_ways(edit: tuple[bytes, bytes]) -> None:
    for base in (START, END, json.dumps({"type": "call", **complete(CID, TID)}).encode()):
        line = _with(_sorted(base), *edit)
        _same(_block(line, END))
        _same(_block(_sorted(START), line))


def test_a_file_that_changes_shape_follows_it() -> None:
    one, two = _shapes(new_id()), _shapes(new_id())
    lines = one["batch"] + two["flat"] + one["request"][:1] + two["complete"]
    _same(_block(*lines))
    assert _slow_lines(_block(*lines)) == [1, 3, 5, 6]  # each the first of its shape


def test_a_freeplay_file_goes_to_orjson_once_per_line_not_twice() -> None:
    freeplay = json.dumps({"session_id": "s", "messages": [{"role": "user"}]}).encode()
    _same(_block(freeplay, freeplay, START, END))
    assert _slow_lines(_block(freeplay, freeplay, START, END)) == [
        1,
        2,
        3,
    ]  # after a record of no Weave shape, orjson names the next


# ------------------------------------------------------------------ what msgspec reads otherwise
def _with(line: bytes, key: bytes, value: bytes) -> bytes:
    """`line` (a JSON object) with `"key": value` added last, as bytes (duplicates too)."""
    return line[:-1] + b', "' + key + b'": ' + value + b"}"


ODD_VALUES = [
    b"NaN",
    b"-Infinity",
    b"1e400",
    b"-1E+400",
    b"1.5e0309",
    b"0.00001e400",
    b"1e-400",
    b"-1e-400",
    b"1e308",
    b"1e309",
    b"1.7976931348623157e308",
    b"1.7976931348623159e308",
    b"[1e400]",
    b"[1, 1E400 ]",
    b'{"1e400": 2e441}',
    b'"2e441 1e400"',
    b"9" * 400 + b".5",
    b"-" + b"9" * 400,
    b"1" + b"0" * 400,
    b"18446744073709551616",
    b"-9223372036854775809",
    b"123456789012345678901234567890",
    b'"\\ud800"',
    b'"\\udc00\\ud800"',
    b'"\\ud83d\\ude00"',
    b'"\xff"',
    b'"\xed\xa0\x80"',
    b'"\xc0\x80"',
    b'"caf\xc3\xa9"',
    b'"tab\there"',
    b'"x\x01"',
    b'"weave:///acme/agents/op/x:1"',
    b'"weave:///nope"',
    b'"\\u0077eave:///nope"',
    b'"weave"',
    b'{"weave": 1}',
    b'"a weave:///acme/agents/op/x:1"',
    b"[" * 300 + b"]" * 300,
    b"[" * 1100 + b"]" * 1100,
    b"{" + b'"a":{' * 260 + b"}" * 261,
    b'{"a": 1, "a": 2}',
    b"[1, 2,]",
    b"tru",
    b"01",
    b'"\\x"',
]


@pytest.mark.parametrize("value", ODD_VALUES, ids=range(len(ODD_VALUES)))
@pytest.mark.parametrize("where", ["inputs", "attributes", "output", "summary"])
def test_odd_values_inside_free_form_fields(where: str, value: bytes) -> None:
    rec = start(CID, TID) if where in ("inputs", "attributes") else end(CID)
    if where == "summary":
        rec["summary"] = {"weave": {"latency_ms": 5}, "usage": {"m": {"requests": 1}}}
    line = json.dumps(rec).encode()
    field = b'"' + where.encode() + b'": {'
    i = line.index(field) + len(field)
    odd = line[:i] + b'"x": ' + value + b", " + line[i:]
    other = END if rec["type"] == "start" else START
    _same(_block(other, odd, other))


def _typed_vouches(line: bytes) -> bool:
    return typed_line(line, "flat", 1) is not None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (b"id", b'"not an id"'),  # the last of two keys counts, in both readers
        (b"id", json.dumps(new_id()).encode()),
        (b"type", b'"end"'),
        (b"type", b'"start"'),
        (b"typ\\u0065", b'"end"'),  # an escaped key is the same key
        (b"\\u0069d", b'"x"'),
        (b"parent_id", b"null"),
        (b"display_name", b"null"),
        (b"display_name", b'""'),
        (b"display_name", json.dumps("\U0001f600" * 1024).encode()),
        (b"display_name", json.dumps("\U0001f600" * 1025).encode()),
        (b"otel_dump", b"null"),
        (b"otel_dump", b"{}"),
        (b"otel_dump", b"[]"),
        (b"attributes", b"null"),
        (b"inputs", b"[]"),
        (b"inputs", b'"x"'),
        (b"wb_run_step", b"-1"),
        (b"wb_run_step", b"9223372036854775807"),
        (b"wb_run_step", b"9223372036854775808"),
        (b"wb_run_step", b"1.0"),
        (b"wb_run_step", b"true"),
        (b"wb_run_id", b'"acme/agents/run1"'),
        (b"wb_run_id", b'"a:b"'),
        (b"thread_id", b"7"),
        (b"is_eval", b"true"),
        (b"ended_at", b"null"),
        (b"started_at", b'"2026-03-02T09:14:05+05:30"'),
        (b"started_at", b'"2026-02-30T09:14:05Z"'),
        (b"started_at", b'"2026-03-02 09:14:05.5Z"'),
        (b"started_at", b"1772442845"),
        (b"op_name", b'"weave:///acme/agents/op/agent.run:abc"'),
        (b"op_name", json.dumps("x" * 129).encode()),
        (b"colour", b'"red"'),
    ],
)
def test_keys_and_values_of_a_start(key: bytes, value: bytes) -> None:
    line = _with(START, key, value)
    _same(_block(line, END))
    _same(_block(END, line))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (b"summary", b"null"),
        (b"summary", b"{}"),
        (b"summary", b'{"usage": null}'),
        (b"summary", b'{"usage": {"m": {"prompt_tokens": "3"}}}'),
        (b"summary", b'{"usage": {"m": {"cost": "3", "requests": null}}}'),
        (b"summary", b'{"usage": {"m": {"prompt_tokens": 1e3}}}'),
        (b"summary", b'{"usage": {"m": {"prompt_tokens": 18446744073709551616}}}'),
        (b"summary", b'{"usage": {"m": {"prompt_tokens": -1}}}'),
        (b"summary", b'{"usage": {"m": 3}}'),
        (b"summary", b'{"usage": {"m": {}}, "usage": 3}'),
        (b"summary", b'{"status_counts": {"success": 2, "error": 0}}'),
        (b"summary", b'{"status_counts": {"ok": 2}}'),
        (b"summary", b'{"status_counts": {"success": true}}'),
        (b"summary", b'{"weave": {"status": "success"}, "other": [1, {"x": null}]}'),
        (b"exception", b"null"),
        (b"exception", b'"boom"'),
        (b"exception", b"{}"),
        (b"output", b"null"),
        (b"output", b"12"),
        (b"trace_id", b"null"),
        (b"trace_id", json.dumps(TID).encode()),
        (b"trace_id", b'"nope"'),
        (b"is_eval", b"null"),
        (b"is_eval", b"1"),
        (b"started_at", b"null"),
        (b"started_at", b'"2026-03-02T09:14:07Z"'),
        (b"wb_run_step_end", b"3"),
        (b"op_name", b'"agent.run"'),
        (b"ended_at", b'"2026-03-02T09:14:06.5+00:00"'),
    ],
)
def test_keys_and_values_of_an_end(key: bytes, value: bytes) -> None:
    line = _with(END, key, value)
    _same(_block(START, line))
    _same(_block(line))


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"   ",
        b"[]",
        b'"start"',
        b"12",
        b"null",
        b"{}",
        START + b" x",
        START[:-1] + b",}",
        START + b"\r",
        b"\t " + START + b" ",
        b'{"type": "start"}',
        b'{"type": null, "mode": "start"}',
        b'{"mode": "start", "req": {"start": {}, "end": {}}}',
        b'{"mode": "end", "req": {"start": ' + json.dumps(body(start(CID, TID))).encode() + b"}}",
        b'{"mode": "start", "req": {"start": '
        + json.dumps(body(start(CID, TID))).encode()
        + b'}, "extra": 1}',
        b'{"start": ' + json.dumps(body(start(CID, TID))).encode() + b', "end": {}}',
        b'{"start": null}',
        b"\xef\xbb\xbf" + START,
    ],
)
def test_lines_that_are_not_what_they_seem(line: bytes) -> None:
    _same(_block(line, START, END))
    _same(_block(START, line, END))


def test_the_typed_path_is_taken_for_plain_lines() -> None:
    """Not vacuous: the lines the tests above vary are vouched for as they are."""
    assert _typed_vouches(START) and _typed_vouches(END)
    assert _typed_vouches(_with(START, b"parent_id", json.dumps(new_id()).encode()))
    assert not _typed_vouches(_with(START, b"inputs", b'{"x": 1e400}'))
    assert not _typed_vouches(_with(START, b"inputs", b'{"x": "\xff"}'))
    assert _typed_vouches(_with(START, b"inputs", b'{"x": "caf\xc3\xa9 1e400"}'))
    assert _typed_vouches(_with(START, b"inputs", b'{"x": "2e441058-8c5c-4f33"}'))
    # a reference is a string that begins `"weave`: only those send a block's lines to
    # `plain_refs`, and one that is not the server's form keeps its line off the typed path
    assert _typed_vouches(_with(START, b"inputs", b'{"x": "a weave:///nope", "my_weave": 1}'))
    assert not _typed_vouches(_with(START, b"inputs", b'{"x": "weave:///nope"}'))
    assert not _typed_vouches(_with(START, b"inputs", b'{"weave": 1}'))
    assert not block_bytes(b'{"x": "a weave"}\n').refs
    assert block_bytes(b'{"x": "weave"}\n').refs


@pytest.mark.parametrize(
    ("block", "refs"),
    [
        (b'{"x": "a weave"}\n{"y": "weave:///e/p/op/f:1"}\n', True),  # quoted after a bare
        (b'{"x": "a weave", "weave_y": "weave"}\n', True),
        (b'{"x": "a weave", "y_weave": 1}\n{"z": "WEAVE", "w": "weav"}\n', False),
        (b"weave\n", False),  # (the bare one at the block's first byte)
        (b'"weave"\n', True),
        (b'{"x": "\\u0077eave:///e/p/op/f:1"}\n', True),  # an escaped letter
        (b'{"x": "caf\xc3\xa9", "y": "weavE"}\n', False),
    ],
)
def test_the_block_search_finds_quoted_references_only(block: bytes, refs: bool) -> None:
    """`refs` says a block holds a `"weave` (or an escaped letter of it), as a search of
    each line would: a bare `weave` found first does not count, a quoted one after it does."""
    assert block_bytes(block).refs is refs
    assert any(find_ref(line) for line in block.splitlines()) is refs


_REF_BITS = st.sampled_from(
    [b"weave", b'"weave', b'"', b"w", b"eave", b"\\u0077", b"E", b"0", b" ", b"x", b"\n"]
)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(_REF_BITS, max_size=12))
def test_the_block_search_for_references_is_the_lines_search(bits: list[bytes]) -> None:
    """Whatever the bytes around them, the block's `refs` is what `lines.find_ref` says of
    its lines (the typed path reads a line without `plain_refs` only when it is False)."""
    block = b"".join(bits) + b"\n"
    assert block_bytes(block).refs is any(find_ref(line) for line in block.split(b"\n"))


def test_the_block_search_names_the_lines_of_big_exponents() -> None:
    """Hits in ids' hex are ruled out; the lines of the others are named, however many
    hits come before them or stand side by side."""
    lines = [
        b'{"id": "2e441058-8c5c", "x": 1e400}',
        b'{"id": "2e441058-8c5c", "x": "1e400"}',
        b'{"x": [1e308, 1E+309,-1e-400]}',
        b'{"x": 1e0000}',
        b'{"x": "2e4410582e441"}',
        b'{"x": 1.5e0309\t}',
    ]
    assert block_bytes(b"\n".join(lines) + b"\n").numbers == {1, 3, 4, 6}
    assert block_bytes(b"\n".join(lines[1::2]) + b"\n").numbers == {2, 3}


def test_the_structs_hold_the_schemas_fields() -> None:
    fields = {cls: set(cls.__struct_fields__) for cls in typed._CHECKS}
    assert fields[typed.FlatStart] == set(STARTED_FIELDS)
    assert fields[typed.FlatEnd] == {*ENDED_FIELDS, "trace_id", "is_eval"}
    assert fields[typed.FlatCall] == fields[typed.CompleteBody] == set(COMPLETED_FIELDS)
    late = {
        type(typed.UNTAGGED[k](_sorted(line))): k for k, line in ((b'"st', START), (b'"en', END))
    }
    assert [fields[cls] for cls in late] == [
        {*STARTED_FIELDS, "type"},
        {*fields[typed.FlatEnd], "type"},
    ]


def test_a_whole_body_keeps_what_it_says() -> None:
    """Decoded whole (for upload), a body tells absent from null and keeps its summary."""
    summary = b'{"usage": {"m": {"requests": 1}}, "costs": {"m": [1, 2.5]}}'
    line = _with(_with(END, b"summary", summary), b"exception", b"null")
    got = typed_line(line, "flat", whole=True)
    assert got is not None
    assert bytes(got.body.summary) == summary and got.body.exception is None
    assert got.body.wb_run_step_end is msgspec.UNSET and got.body.trace_id is msgspec.UNSET
    lean = typed_line(line, "flat")
    assert lean is not None and lean.facts == got.facts and lean.body.trace_id is None
    assert typed_line(_with(END, b"summary", b'{"usage": null}'), "flat", whole=True) is None


def test_typed_call_keeps_the_body_and_its_bytes() -> None:
    line = _block(json.dumps({"start": body(start(CID, TID))}).encode())[:-1]
    got = typed_line(line, "request", whole=True)
    assert got is not None and got.shape == "request"
    assert got.facts == fast_facts(orjson.loads(START))
    assert bytes(got.body.inputs) == b'{"question": "where is my order?"}'
    assert shape_of(orjson.loads(START)) == "flat" and shape_of([]) is None


# ------------------------------------------------------------------ any bytes near a record
fragments = st.sampled_from(
    [
        *ODD_VALUES[:24],
        b"null",
        b"{}",
        b"[]",
        b'""',
        b"0",
        b"-0",
        b"1.5",
        b"1e5",
        b"1E+99",
        b"true",
        b'"2026-03-02T09:14:05Z"',
        json.dumps(new_id()).encode(),
        json.dumps(TID).encode(),
    ]
)
keys = st.sampled_from(
    [k.encode() for k in (*STARTED_FIELDS, *ENDED_FIELDS, "type", "is_eval", "mode", "x")]
)


@settings(max_examples=examples(300), deadline=None)
@given(
    base=st.sampled_from([START, END, json.dumps(complete(CID, TID)).encode()]),
    edits=st.lists(st.tuples(keys, fragments), max_size=3),
    compact=st.booleans(),
    late=st.booleans(),
)
def test_any_edit_of_a_record_reads_the_same_both_ways(
    base: bytes, edits: list[tuple[bytes, bytes]], compact: bool, late: bool
) -> None:
    line = base
    if compact or late:  # late: keys sorted, "type" after "trace_id"
        line = orjson.dumps(orjson.loads(line), option=orjson.OPT_SORT_KEYS if late else 0)
    for key, value in edits:
        line = _with(line, key, value)
    _same(_block(START, line, END))


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("extra", [-2, -1, 0, 1])
def test_nesting_at_the_edge(bom: bytes, extra: int) -> None:
    """Brackets are counted in the block's translated bytes, by each line's offset: lines
    with about as many as deep nesting needs, after a byte-order mark or not."""
    line = json.dumps(start(CID, TID, inputs={"x": 0})).encode()
    depth = DEEP_BRACKETS - line.count(b"{") - line.count(b"[") + extra
    deep = line.replace(b'"x": 0', b'"x": ' + b"[" * depth + b"]" * depth)
    assert (deep.count(b"[") + deep.count(b"{") >= DEEP_BRACKETS) == (extra >= 0)
    _same(bom + _block(deep, END, deep, START))
    _same(bom + _block(START, deep, END))
