"""Pairing: starts meet their ends in any order, across files, within a memory budget."""

from __future__ import annotations

import random

import pytest

from tracecli.check.pairing import DUPLICATE, Half, Pairer, pack, unpack


def half(kind: str, cid: str, project: str = "e/p", line: int = 1, size: int = 10) -> Half:
    return Half(kind, cid, project, b"{" + b"x" * size + b"}", b"", False, 0, line, "flat")


def test_start_then_end_pairs() -> None:
    p = Pairer()
    assert p.match(half("start", "a")) is None
    other = p.match(half("end", "a", line=2))
    assert isinstance(other, Half) and other.kind == "start" and other.line == 1
    assert p.open_count == 0
    assert list(p.leftovers()) == []


def test_end_before_start_pairs_too() -> None:
    p = Pairer()
    assert p.match(half("end", "a")) is None
    other = p.match(half("start", "a", line=9))
    assert isinstance(other, Half) and other.kind == "end"


def test_same_id_in_two_projects_are_two_calls() -> None:
    p = Pairer()
    assert p.match(half("start", "a", "e/one")) is None
    assert p.match(half("end", "a", "e/two")) is None
    assert p.open_count == 2


def test_second_start_with_same_id_is_duplicate_and_first_stays() -> None:
    p = Pairer()
    p.match(half("start", "a", line=1))
    assert p.match(half("start", "a", line=5)) is DUPLICATE
    other = p.match(half("end", "a", line=7))
    assert isinstance(other, Half) and other.line == 1


def test_leftovers_are_the_unpaired_halves() -> None:
    p = Pairer()
    p.match(half("start", "a"))
    p.match(half("end", "b"))
    p.match(half("start", "c"))
    p.match(half("end", "c"))
    assert sorted((h.kind, h.call_id) for h in p.leftovers()) == [("end", "b"), ("start", "a")]
    assert p.open_count == 0


@pytest.mark.parametrize("seed", [1, 2])
def test_spills_to_disk_past_the_budget_and_still_pairs_everything(seed: int) -> None:
    """10k calls open at once with a budget for ~100: most go to disk, none is lost."""
    rng = random.Random(seed)
    ids = [f"{i:032x}" for i in range(10_000)]
    with Pairer(memory_budget=100 * 300) as p:
        for i in ids:
            assert p.match(half("start", i, size=50)) is None
        assert p.spilled > 9_000
        assert p.open_count == 10_000
        assert p.peak_open == 10_000
        rng.shuffle(ids)
        keep = ids[:50]  # these stay unpaired
        for i in ids[50:]:
            other = p.match(half("end", i, size=50))
            assert isinstance(other, Half) and other.call_id == i and other.kind == "start"
            assert other.body == b"{" + b"x" * 50 + b"}"
        left = sorted(h.call_id for h in p.leftovers())
        assert left == sorted(keep)
        assert p.open_count == 0


def test_spilled_half_keeps_every_field() -> None:
    with Pairer(memory_budget=1) as p:
        h = Half("start", "a", "e/p", b'{"a":1}', b"", True, 3, 42, "batch", True, "x/y")
        p.match(h)
        p.match(half("start", "b"))  # pushes more to disk
        assert p.spilled >= 1
        other = p.match(half("end", "a"))
        assert other == h


def test_close_removes_the_spill_file(tmp_path) -> None:
    p = Pairer(memory_budget=1, spill_dir=str(tmp_path))
    for i in range(10):
        p.match(half("start", str(i)))
    assert list(tmp_path.iterdir())
    p.close()
    assert not list(tmp_path.iterdir())


def test_pack_keeps_every_field() -> None:
    for h in (
        Half(
            "end",
            "é-id",
            "ent/proj",
            b'{"id":"x"}',
            b'{"ended_at":"t"}',
            True,
            7,
            2**40 - 1,
            "request",
            False,
            None,
        ),
        Half("start", "a", "e/p", b"{}", b"", False, 0, 1, "flat", True, "orig/proj"),
        Half("complete", "c", "e/p", b"{}", b"", False, 2**32 - 1, 0, "complete"),
    ):
        assert unpack(pack(h)) == h
