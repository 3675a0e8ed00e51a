"""Chunk bounds and the byte-joined encoding (pure functions; the wire is tested end to end)."""

from __future__ import annotations

from array import array

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracecli.schema.fields import END_FIELDS
from tracecli.wire.chunking import (
    KINDS,
    SHAPES,
    SINGLE,
    Chunk,
    Chunker,
    Unit,
    count_ends,
    journal_lines,
    pack,
    unpack,
)
from tracecli.wire.encode import (
    batch_body,
    batch_end,
    batch_start,
    complete_from,
    complete_route,
    join_objects,
    split_complete,
    split_end,
)


def unit(n_bytes: int = 10, route: str = "/r", parts: int = 1, line: int = 1) -> Unit:
    rec = pack(0, line, "complete", "complete")
    return Unit(route, tuple(b"x" * n_bytes for _ in range(parts)), (rec,))


def test_chunks_close_at_the_item_count() -> None:
    c = Chunker(max_items=3, max_bytes=10_000)
    out = [ch for _ in range(7) for ch in c.add(unit())]
    out += c.flush()
    assert [ch.nitems for ch in out] == [3, 3, 1]


def test_a_start_and_its_end_stay_in_one_chunk() -> None:
    c = Chunker(max_items=3, max_bytes=10_000)
    out = c.add(unit(parts=2)) + c.add(unit(parts=2)) + c.flush()
    assert [ch.units for ch in out] == [1, 1]


def test_chunks_close_at_the_byte_bound_and_the_body_respects_it() -> None:
    c = Chunker(max_items=1000, max_bytes=1000)
    out = [ch for _ in range(50) for ch in c.add(unit(100))] + c.flush()
    assert sum(ch.units for ch in out) == 50
    for ch in out:
        assert len(ch.body()) <= 1000
        assert len(ch.body()) <= ch.nbytes <= len(ch.body()) + 1  # counted with a comma each


def test_a_unit_larger_than_the_bound_goes_alone() -> None:
    c = Chunker(max_items=1000, max_bytes=1000)
    out = c.add(unit(10)) + c.add(unit(5000)) + c.add(unit(10)) + c.flush()
    assert [ch.units for ch in out] == [1, 1, 1]
    assert out[1].nbytes > 1000


def test_routes_are_chunked_apart() -> None:
    c = Chunker(max_items=2, max_bytes=10_000)
    out = c.add(unit(route="/a")) + c.add(unit(route="/b")) + c.add(unit(route="/a"))
    assert [ch.route for ch in out] == ["/a"]
    assert sorted(ch.route for ch in c.flush()) == ["/b"]


def test_single_units_are_one_request_each() -> None:
    c = Chunker()
    rec = pack(0, 1, "start", "flat")
    out = c.add(Unit(SINGLE, (b"{}",), (rec,), None, ("/call/start",)))
    assert len(out) == 1 and out[0].route == SINGLE and out[0].steps == ("/call/start",)


def test_split_halves_keep_every_unit_once() -> None:
    ch = Chunk("/r")
    units = [unit(parts=1 + i % 2, line=i) for i in range(7)]
    units[3].extra = "kept"
    for u in units:
        ch.add(u)
    a, b = ch.split()
    assert list(a.iter_units()) + list(b.iter_units()) == units
    assert (a.units, b.units) == (3, 4)
    assert b.extras == {0: "kept"}


@given(
    st.integers(0, 2**19 - 1),
    st.integers(0, 2**40 - 1),
    st.sampled_from(KINDS),
    st.sampled_from(SHAPES),
)
def test_pack_unpack(src: int, line: int, kind: str, shape: str) -> None:
    assert unpack(pack(src, line, kind, shape)) == (src, line, kind, shape)


def test_chunker_rejects_nonsense_bounds() -> None:
    with pytest.raises(ValueError):
        Chunker(max_items=0)
    with pytest.raises(ValueError):
        Chunker(max_bytes=0)


# -- encoding -------------------------------------------------------------------------------

START = {
    "project_id": "e/p",
    "id": "a",
    "op_name": "op",
    "trace_id": "t",
    "started_at": "2025-01-01T00:00:00Z",
    "attributes": {},
    "inputs": {"q": "é\u2028"},
}
END = {
    "project_id": "e/p",
    "id": "a",
    "ended_at": "2025-01-01T00:00:01Z",
    "exception": None,
    "output": [1, {"x": None}],
    "summary": {"usage": {}},
    "started_at": "ignored for a completed call",
}


def test_complete_is_the_start_with_the_end_fields() -> None:
    rest, tail = split_end(END)
    got = orjson.loads(complete_from(orjson.dumps(START), False, tail))
    assert got == {**START, **{k: END[k] for k in END_FIELDS if k in END}}
    assert orjson.loads(join_objects(rest, tail)) == END


def test_a_start_holding_an_end_field_merges_with_the_end_winning() -> None:
    start = {**START, "output": "from the start"}
    _, tail = split_end(END)
    got = orjson.loads(complete_from(orjson.dumps(start), True, tail))
    assert got["output"] == END["output"]
    assert list(got).count("output") == 1


def test_split_complete_gives_back_the_halves() -> None:
    _, tail = split_end(END)
    full = complete_from(orjson.dumps(START), False, tail)
    s, rest, t = split_complete(full)
    assert orjson.loads(s) == START
    assert orjson.loads(join_objects(rest, t)) == {
        "project_id": "e/p",
        "id": "a",
        **{k: END[k] for k in END_FIELDS if k in END},
    }


def test_bodies_are_the_documented_shapes() -> None:
    s = orjson.dumps(START)
    e = orjson.dumps(END)
    body = orjson.loads(batch_body([batch_start(s), batch_end(e)]))
    assert body == {
        "batch": [{"mode": "start", "req": {"start": START}}, {"mode": "end", "req": {"end": END}}]
    }
    assert orjson.loads(batch_body([])) == {"batch": []}


def test_complete_route_quotes_the_path_parts() -> None:
    assert complete_route("acme/agents") == "/v2/acme/agents/calls/complete"
    assert complete_route("a b/c?d") == "/v2/a%20b/c%3Fd/calls/complete"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@pytest.mark.slow
@given(
    st.dictionaries(st.text(), json_values, max_size=5),
    st.dictionaries(st.sampled_from(END_FIELDS), json_values, min_size=1),
)
def test_join_objects_is_dict_union(a: dict, b: dict) -> None:
    a = {k: v for k, v in a.items() if k not in b}
    assert orjson.loads(join_objects(orjson.dumps(a), orjson.dumps(b))) == {**a, **b}


@pytest.mark.slow
@given(
    st.text(max_size=8),
    st.text(max_size=8),
    st.dictionaries(st.sampled_from([*END_FIELDS, "started_at", "x"]), json_values, max_size=6),
    st.booleans(),
)
def test_split_end_parts_join_back_to_the_end(
    project: str, cid: str, rest: dict, ids_first: bool
) -> None:
    end = {"project_id": project, "id": cid, **rest} if ids_first else {**rest, "id": cid}
    body, tail = split_end(end)
    assert orjson.loads(join_objects(body, tail)) == end
    assert set(orjson.loads(tail)) == {k for k in end if k in END_FIELDS}


@given(st.lists(st.binary(max_size=6), max_size=6), st.booleans())
def test_batch_body_is_the_items_joined_in_a_batch(items: list[bytes], as_list: bool) -> None:
    """One copy of the items (the opening and closing joined to the first and last)."""
    want = b'{"batch":[' + b",".join(items) + b"]}"
    assert batch_body(items if as_list else iter(items)) == want


_REC = st.builds(
    pack,
    st.integers(0, (1 << 20) - 1),
    st.integers(0, (1 << 40) - 1),
    st.sampled_from(KINDS),
    st.sampled_from(SHAPES),
)


@given(st.lists(_REC, max_size=40))
def test_count_ends_of_a_chunks_records_is_the_count_of_their_kinds(recs: list[int]) -> None:
    """A chunk's records (an array) are counted from their low bytes; a list, one by one."""
    want = sum(unpack(r).kind == "end" for r in recs)
    assert count_ends(array("Q", recs)) == want == count_ends(recs)


@given(st.lists(_REC, min_size=1, max_size=30), st.sampled_from([1, 2, 1 << 20]))
def test_journal_lines_of_a_chunks_records_by_input(recs: list[int], srcs: int) -> None:
    """A chunk's records (an array) tested for one input by their bytes: the same lines
    by input as one by one, whether they share their input or not."""
    recs = [pack(unpack(r).src % srcs, unpack(r).line, "end", "flat") for r in recs]
    want: dict[int, list[int]] = {}
    for r in recs:
        want.setdefault(unpack(r).src, []).append(unpack(r).line)
    assert journal_lines(array("Q", recs)) == want == journal_lines(recs)
