"""HashIndex: the compact hash → ordinal map behind the cross-record checks."""

from __future__ import annotations

import random
from array import array

import pytest

from tracecli import idindex
from tracecli.idindex import HashIndex, _merge


def test_finds_every_key_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idindex, "RECENT_MAX", 64)  # many freezes and merges
    rng = random.Random(1)
    hashes = array("q")
    index = HashIndex(hashes)
    keys = [rng.randrange(-(2**63), 2**63) for _ in range(5000)]
    # same top 32 bits, different low bits: the prefix lookup must check the full hash
    keys += [(keys[0] & ~0xFFFFFFFF) | i for i in range(1, 50)]
    for k in keys:
        assert index.get(k) is None
        hashes.append(k)
        index.add(k, len(hashes) - 1)
    assert len(index) == len(keys)
    assert len(index._blocks) <= 12
    for i, k in enumerate(keys):
        assert index.get(k) == i
    present = set(keys)
    for _ in range(5000):
        k = rng.randrange(-(2**63), 2**63)
        if k not in present:
            assert index.get(k) is None


def test_merge_keeps_order_and_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idindex, "_MERGE_CHUNK", 7)
    rng = random.Random(2)
    for _ in range(50):
        a = sorted(rng.sample(range(-1000, 1000), rng.randrange(0, 60)))
        b = sorted(set(rng.sample(range(-1000, 1000), rng.randrange(0, 60))) - set(a))
        assert list(_merge(array("q", a), array("q", b))) == sorted(a + b)
