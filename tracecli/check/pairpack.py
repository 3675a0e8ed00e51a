"""A block's start/end pairs packed for the trip from a worker to the checking process.

`validate` pairs the starts and ends that sit in one block of lines in its workers; the
process that runs the cross-record checks needs of each pair little more than three
hashes and two line numbers. Sent as tuples of strings, pickling them both ways cost a
fifth of a run's CPU; as a few flat buffers it costs next to nothing. The ids are hashed
in the worker, with the hash the checking process uses: a worker is forked from it, so
`hash(str)` is the same function there (`validate` checks that before using a pool).
The strings travel too, joined, for the rare block whose pairs must be checked one by
one (an id seen before): `unpack_pairs` gives the `Pair`s back.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from struct import pack
from typing import Any, NamedTuple

from tracecli.packing import join_column, split_column
from tracecli.schema.fastcheck import Facts

NO_PARENT = -1  # never a hash: CPython's hash() cannot return -1


class Pair(NamedTuple):
    """A start and its end, in the same block, as the checking process needs them."""

    line: int
    id: str
    trace_id: str
    parent_id: str | None
    started: str
    ended: str
    end_line: int
    ended_first: bool  # the block compared the times: the end is before the start


class Packed(NamedTuple):
    """A block's pairs as columns: numbers in arrays, strings joined."""

    lines: array[int]
    end_lines: array[int]
    id_hashes: array[int]
    trace_hashes: array[int]
    parent_hashes: array[int]  # NO_PARENT: none
    ids: str  # join_column'd
    trace_ids: str
    parent_ids: str  # "" where there is none
    started: str
    ended: str
    bad: list[tuple[int, str, str]]  # (index, started, ended) of the pairs that end first


def pack_halves(halves: Sequence[tuple[Facts, str, int, bool]]) -> Packed | None:
    """The pairs of a block's fast path (ids and times are checked ASCII strings, without
    newlines), packed; None for none.

    A pair as the block's loop keeps it: (the start's `Facts`, the end's ended_at, the
    end's line, whether the end is before the start). Taken apart here a column at a
    time, in C (zip), rather than field by field for each pair in that loop, where
    reading a named tuple's fields costs several times what indexing a plain one does.
    """
    if not halves:
        return None
    starts, ens, end_lines, bads = zip(*halves, strict=True)
    return pack_columns(zip(*starts, strict=True), ens, end_lines, bads)


def pack_columns(
    starts: Iterable[Sequence[Any]],
    ens: Sequence[str],
    end_lines: Sequence[int],
    bads: Iterable[bool],
) -> Packed:
    """`pack_halves` from columns: `starts`, the starts' `Facts` fields a column each
    (`zip(*starts)`), `ens` the ends' times, `end_lines` their lines, `bads` whether each
    ended first (compared to the starts' times: a loop that has the columns already
    compares them in C, `map(lt, ...)`, with no tuple a pair in between)."""
    lines, _, ids, tids, pids, sts, _ = starts
    bads = list(bads)
    bad = [(i, sts[i], ens[i]) for i, b in enumerate(bads) if b] if any(bads) else []
    return Packed(
        array("I", lines),
        array("I", end_lines),
        _int64s(list(map(hash, ids))),
        _int64s(list(map(hash, tids))),
        _int64s(list(map(_NO_PARENT_GET, pids, map(hash, pids)))),
        join_column(ids),
        join_column(tids),
        join_column(map(_NONE_AS_EMPTY, pids, pids)),
        join_column(sts),
        join_column(ens),
        bad,
    )


# a parent's hash, NO_PARENT for none, in C: `{None: NO_PARENT}.get(parent, hash(parent))`
_NO_PARENT_GET = {None: NO_PARENT}.get
_NONE_AS_EMPTY = {None: ""}.get  # a parent's id, "" for none: `get(parent, parent)`


def _int64s(values: list[int]) -> array[int]:
    """`array("q", values)`, through `struct`: the array sets each item through a format
    string parsed again (`PyArg_Parse`), ~0.6k instructions an item; struct parses its
    format once."""
    return array("q", pack(f"{len(values)}q", *values))


def unpack_pairs(packed: Packed | None) -> list[Pair]:
    """The pairs `pack_halves` took, as `Pair`s."""
    if not packed:
        return []
    bads = {i for i, _, _ in packed.bad}
    return [
        Pair(line, cid, tid, None if ph == NO_PARENT else pid, st, en, end, i in bads)
        for i, (line, cid, tid, ph, pid, st, en, end) in enumerate(
            zip(
                packed.lines,
                split_column(packed.ids),
                split_column(packed.trace_ids),
                packed.parent_hashes,
                split_column(packed.parent_ids),
                split_column(packed.started),
                split_column(packed.ended),
                packed.end_lines,
                strict=True,
            )
        )
    ]
