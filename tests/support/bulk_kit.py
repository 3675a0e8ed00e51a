"""validate's block loops held to the general loop: one block read both ways.

`upload.validate_blocks` tries its bulk loops (`bulk_lines`, `bulk_calls`) before the general
loop; a bulk loop answers a block or gives it up. These helpers read a block as validate does,
then again with one bulk loop patched out, and want the same `Checked`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tracecli.check.pairpack import unpack_pairs
from tracecli.schema import fastcheck
from tracecli.upload import validate_blocks as vb

# (started, ended, whether it ended first): times of one layout and zone, which a bulk loop
# compares as text, and of two offsets or two layouts, which it must not
ENDED_FIRST = [
    ("2026-03-02T10:00:00+01:00", "2026-03-02T09:30:00+00:00", False),  # one layout,
    ("2026-03-02T09:30:00+00:00", "2026-03-02T10:00:00+01:00", True),  # two offsets
    ("2026-03-02T09:30:00+05:30", "2026-03-02T09:29:59+05:30", True),  # one offset
    ("2026-03-02T09:30:00.5Z", "2026-03-02T09:30:00.4Z", True),
    ("2026-03-02T09:30:00.5Z", "2026-03-02T09:30:01.0Z", False),
    ("2026-03-02T09:30:00Z", "2026-03-02T09:30:00.5Z", False),  # two layouts
    ("2026-03-02T09:30:00.5Z", "2026-03-02T09:30:00Z", True),
]


@contextmanager
def without_loop(name: str) -> Iterator[None]:
    """validate's blocks with the bulk loop `name` (of validate_blocks) giving up every block."""
    real = getattr(vb, name)
    setattr(vb, name, lambda *a: None)
    try:
        yield
    finally:
        setattr(vb, name, real)


def outcome(data: bytes) -> tuple[Any, ...]:
    """What validate's worker makes of one block: lines, records, entries, pairs."""
    vb._bulk.skip = 0
    got = vb.check_lines(data, "t.jsonl", True)
    return got.lines, got.records, got.entries, unpack_pairs(got.pairs)


def same_both_ways(data: bytes, loop: str, took: bool) -> bool:
    """The block with and without the bulk loop `loop`: equal outcomes; returns `took`
    (whether that loop answered the block, as the caller found)."""
    fastcheck._ok_call_ids.clear()  # (the caches change no answer: nor may they here)
    fastcheck._minutes.clear()
    bulk_way = outcome(data)
    with without_loop(loop):
        general_way = outcome(data)
    assert bulk_way == general_way, data[:400]
    return took
