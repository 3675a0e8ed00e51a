"""HashIndex: the compact hash → ordinal map behind the cross-record checks."""

from __future__ import annotations

import random
from array import array

import pytest

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
