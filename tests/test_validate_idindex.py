"""HashIndex: the compact hash → ordinal map behind the cross-record checks."""

from __future__ import annotations

import random
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.sweeps import examples
from tracecli.check import idindex
from tracecli.check.idindex import HashIndex, _merge


def test_finds_every_key_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idindex, "RECENT_MAX", 64)  # many freezes and merges
    rng = random.Random(1)
    index = HashIndex()
    keys = [rng.randrange(-(2**63), 2**63) for _ in range(5000)]
    # neighbours in the sorted blocks: the lookup must match the whole hash
    keys += [keys[0] + i for i in range(1, 50)]
    for ordinal, k in enumerate(keys):
        assert index.get(k) is None
        assert not index.any_of([k])
        index.add(k, ordinal)
    assert len(index) == len(keys)
    assert index.frozen
    assert len(index._blocks) <= idindex._MAX_BLOCKS
    for ordinal, k in enumerate(keys):
        assert index.get(k) == ordinal
    assert index.any_of([1, 2, keys[100]])
    present = set(keys)
    for _ in range(5000):
        k = rng.randrange(-(2**63), 2**63)
        if k not in present:
            assert index.get(k) is None


def test_bulk_filling_then_freezing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idindex, "RECENT_MAX", 100)
    index = HashIndex()
    index.recent.update((k * 7919, k) for k in range(250))
    index.freeze_if_full()
    assert index.recent == {} and index.frozen
    assert [index.get(k * 7919) for k in range(250)] == list(range(250))


def test_merge_keeps_order_and_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idindex, "_MERGE_CHUNK", 7)
    rng = random.Random(2)
    for _ in range(50):
        a = sorted(rng.sample(range(-1000, 1000), rng.randrange(0, 60)))
        b = sorted(set(rng.sample(range(-1000, 1000), rng.randrange(0, 60))) - set(a))
        ordinal = {x: i for i, x in enumerate(rng.sample(a + b, len(a + b)))}
        block_a = (array("q", a), array("I", [ordinal[x] for x in a]))
        block_b = (array("q", b), array("I", [ordinal[x] for x in b]))
        keys, ords = _merge(block_a, block_b)
        assert list(keys) == sorted(a + b)
        assert list(ords) == [ordinal[x] for x in sorted(a + b)]


_HASHES = st.one_of(
    st.integers(-(2**63), 2**63 - 1),  # what hash(str) gives
    st.integers(-300, 300),  # small ints: all in one corner of the bitmap
    st.sampled_from([-(2**63), 2**63 - 1, -1, 0, 1 << 41, -(1 << 41), (1 << 38) - 1]),
)


@settings(max_examples=examples(200), deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["add", "get", "any_of", "bulk"]), st.lists(_HASHES, max_size=6)),
        max_size=120,
    ),
    recent_max=st.sampled_from([1, 2, 4, 9]),
    merge_chunk=st.sampled_from([1, 2, 5]),
)
def test_answers_like_a_dict(
    ops: list[tuple[str, list[int]]], recent_max: int, merge_chunk: int
) -> None:
    """Across freezes and merges (tiny `recent`, few blocks), the index answers as a dict."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(idindex, "RECENT_MAX", recent_max)
        mp.setattr(idindex, "_MAX_BLOCKS", 3)
        mp.setattr(idindex, "_MERGE_CHUNK", merge_chunk)
        index, model = HashIndex(), dict[int, int]()
        for op, hs in ops:
            if op == "get":
                for h in hs:
                    assert index.get(h) == model.get(h)
            elif op == "any_of":
                outside = [h for h in hs if h not in index.recent]
                assert index.any_of(outside) == any(h in model for h in outside)
            else:
                fresh = list(dict.fromkeys(h for h in hs if h not in model))
                for h in fresh:  # the callers add only what they looked up and missed
                    model[h] = len(model)
                    if op == "add":
                        index.add(h, model[h])
                    else:
                        index.recent[h] = model[h]
                if op == "bulk":
                    index.freeze_if_full()
            assert len(index) == len(model)
        assert all(index.get(h) == o for h, o in model.items())
        assert index.frozen == (len(model) >= recent_max)
