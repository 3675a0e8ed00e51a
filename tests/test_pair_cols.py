"""A block's pairs as columns (`tracecli.upload.pair_cols`): what the reading process gets
back from a worker is the block's entries, in order, each pair at its place."""

from __future__ import annotations

import pickle
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.sweeps import examples
from tracecli.check.cross_pairs import quiet_facts
from tracecli.diagnostics import Severity
from tracecli.upload.blocks import Bad, Entry, FreeplayRecord, Ok, Pair, Prepared
from tracecli.upload.pair_cols import columns_of, entries_of, pair_at
from tracecli.wire.encode import join_objects


def _ok(n: int) -> Ok:
    return Ok(n, "start", "flat", f"c{n}", "e/p", "t", None, "2026-01-01T00:00:00Z", None,
              b'{"id":"c%d"}' % n, b"", False, None, ())  # fmt: skip


def _pair(n: int) -> Pair:
    # (the project and the shapes most often alike through a block, as in a real file)
    return Pair(n, f"c{n}", "e/p" if n % 11 else "e/q", "t", None if n % 3 else "c0",
                "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", n + 1,
                "flat" if n % 13 else "batch", b'{"id":"c%d"}' % n, n % 5 == 0, None,
                "flat" if n % 17 else "request", b'{"id":"c%d"}' % n, b'{"ended_at":"x"}', False,
                "orig" if n % 7 else None)  # fmt: skip


def _entry(kind: str, n: int) -> Entry:
    if kind == "ok":
        return _ok(n)
    if kind == "bad":
        return Bad(n, {"x": n}, (("(record)", "json", Severity.ERROR, "not JSON"),), None)
    if kind == "freeplay":
        return FreeplayRecord(n, {"n": n})
    return _pair(n)


_KINDS = st.lists(st.sampled_from(["ok", "bad", "freeplay", "pair", "pair", "pair"]), max_size=40)


@settings(max_examples=examples(200), deadline=None)
@given(_KINDS)
def test_a_block_comes_back_with_its_entries_and_its_pairs_as_columns(kinds: list[str]) -> None:
    entries = [_entry(k, n) for n, k in enumerate(kinds, 1)]
    got = Prepared(len(kinds) + 2, len(kinds), entries)
    back = pickle.loads(pickle.dumps(got))
    assert (back.lines, back.records) == (got.lines, got.records)
    block = back.columns()
    pairs = [e for e in entries if type(e) is Pair]
    assert [pair_at(block, p) for p in range(len(pairs))] == pairs
    if pairs:  # joined in the worker: each call's item, what the general path would send
        assert block.merged
        assert block.vouched == quiet_facts(*([p[i] for p in pairs] for i in (3, 5, 6)))
        assert list(block.cols[9]) == [join_objects(p.start_body, p.end_tail) for p in pairs]
    assert len(block.items) == len(block.codes) == len(entries)
    p = 0
    for item, e in zip(block.items, entries, strict=True):
        if type(e) is Pair:  # its place holds its index in the columns
            assert item == p and pair_at(block, p) == e and type(pair_at(block, p)) is Pair
            p += 1
        else:
            assert item == e and type(item) is type(e)
    assert back.entries == entries
    assert [type(e) for e in back.entries] == [type(e) for e in entries]
    # the same block made in this process (no worker) reads the same
    here = columns_of(entries)
    assert (here.items, here.codes) == (block.items, block.codes)
    assert [list(c) for c in here.cols] == [list(c) for c in block.cols]
    assert here.merged == block.merged
    assert entries_of(here) == entries


def test_a_block_read_back_pickles_again_the_same() -> None:
    entries: list[Any] = [_pair(1), _ok(3), _pair(4), _pair(6)]
    back = pickle.loads(pickle.dumps(pickle.loads(pickle.dumps(Prepared(7, 6, entries)))))
    assert back.entries == entries and back.columns().items == [0, entries[1], 1, 2]


_BODY = st.sampled_from([b"{}", b'{"a":1}', b'{"a":"}"}', b'{"b":[1,{}]}', b"{ }", b'{"x":2} '])


@settings(max_examples=examples(300), deadline=None)
@given(bodies=st.lists(st.tuples(_BODY, _BODY), min_size=1, max_size=8))
def test_a_merged_block_gives_each_pairs_bodies_back_exactly(
    bodies: list[tuple[bytes, bytes]],
) -> None:
    """Each pair's item is joined in the worker only when every body and tail of the block
    gives itself back from the item (objects with fields); else the block is left as it
    was. Either way the pairs read back are the pairs, and the quick path's item is
    `join_objects` of the two."""
    entries: list[Entry] = [
        _pair(n)._replace(start_body=s, end_tail=t) for n, (s, t) in enumerate(bodies, 1)
    ]
    block = pickle.loads(pickle.dumps(Prepared(20, 16, entries))).columns()
    assert entries_of(block) == entries
    assert block.merged == all(len(s) > 2 and len(t) > 2 and s[-1:] == b"}" for s, t in bodies)
    if block.merged:
        assert list(block.cols[9]) == [join_objects(s, t) for s, t in bodies]
