"""The pure part of re-checking what a server holds after a 500 (tracecli.targets.reconcile)."""

from __future__ import annotations

import orjson

from tracecli.targets.reconcile import (
    ItemKey,
    by_project,
    chunk_keys,
    is_stored,
    item_key,
    parse_stored,
    split_stored,
    stored_query,
)
from tracecli.wire.chunking import Chunk, Unit, pack
from tracecli.wire.encode import CALL_START, UPSERT_BATCH, complete_route

P = "ent/proj"


def start_item(cid: str) -> bytes:
    return orjson.dumps({"mode": "start", "req": {"start": {"project_id": P, "id": cid}}})


def end_item(cid: str) -> bytes:
    return orjson.dumps({"mode": "end", "req": {"end": {"project_id": P, "id": cid}}})


def rec(line: int, kind: str) -> int:
    return pack(0, line, kind, "flat")


def test_item_keys_for_every_route():
    assert item_key(UPSERT_BATCH, start_item("a")) == ItemKey("start", P, "a")
    assert item_key(UPSERT_BATCH, end_item("a")) == ItemKey("end", P, "a")
    body = orjson.dumps({"start": {"project_id": P, "id": "b"}})
    assert item_key(CALL_START, body) == ItemKey("start", P, "b")
    complete = orjson.dumps({"project_id": P, "id": "c", "ended_at": "x"})
    assert item_key(complete_route(P), complete) == ItemKey("complete", P, "c")
    assert item_key(UPSERT_BATCH, b"not json") is None
    assert item_key(UPSERT_BATCH, b'{"mode": "start", "req": {"start": {"id": 3}}}') is None


def test_a_start_is_held_once_stored_an_end_or_complete_once_ended():
    running, ended = {(P, "a"): False}, {(P, "a"): True}
    for kind, want in (
        ("start", (True, True)),
        ("end", (False, True)),
        ("complete", (False, True)),
    ):
        key = ItemKey(kind, P, "a")
        assert (is_stored(key, running), is_stored(key, ended)) == want
    assert not is_stored(ItemKey("start", P, "zz"), ended)
    assert not is_stored(ItemKey("start", "other/proj", "a"), ended)


def test_split_keeps_records_with_what_is_left():
    chunk = Chunk(UPSERT_BATCH)
    chunk.add(
        Unit(UPSERT_BATCH, (start_item("a"), end_item("a")), (rec(1, "start"), rec(2, "end")))
    )
    chunk.add(
        Unit(UPSERT_BATCH, (start_item("b"), end_item("b")), (rec(3, "start"), rec(4, "end")))
    )
    chunk.add(Unit(UPSERT_BATCH, (start_item("c"),), (rec(5, "start"),)))
    # a: stored whole; b: its start landed before the failure; c: nothing
    held, rest = split_stored(chunk, {(P, "a"): True, (P, "b"): False})
    assert held.units == 1 and list(held.recs) == [rec(1, "start"), rec(2, "end")]
    assert rest.units == 2 and rest.items == [end_item("b"), start_item("c")]
    assert list(rest.recs) == [rec(3, "start"), rec(4, "end"), rec(5, "start")]
    assert orjson.loads(rest.body())["batch"][0]["mode"] == "end"


def test_query_and_answer():
    assert chunk_keys(Chunk(UPSERT_BATCH)) == []
    keys = [ItemKey("start", P, "a"), ItemKey("end", P, "a"), ItemKey("start", "o/p", "b")]
    assert by_project(keys) == {P: ["a"], "o/p": ["b"]}
    q = orjson.loads(stored_query(P, ["a", "b"]))
    assert q["filter"] == {"call_ids": ["a", "b"]} and q["limit"] == 2
    lines = [
        orjson.dumps({"id": "a", "project_id": P, "ended_at": None}),
        orjson.dumps({"id": "b", "project_id": P, "ended_at": "2026-01-01T00:00:00Z"}),
        b"garbage",
    ]
    assert parse_stored(lines) == {(P, "a"): False, (P, "b"): True}
