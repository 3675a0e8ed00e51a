"""A block's entries as the reading process takes them: its pairs as columns.

Nearly every call of a real file is one `Pair` entry (a start and its end from one
block), and the reading process takes a block's runs of pairs by their columns
(`quick_run.RunSender.send`: the ids, the times, the bodies, each as one sequence). A
worker used to pickle each `Pair` as a row, the reading process to rebuild it as a
`Pair` and then to turn the run's rows back into columns (`zip`): two tuples built and
one taken apart per call for nothing. Here a block's pairs travel as their 17 columns
(one tuple each), and the block's list holds, where a pair stands, its index in them
(an `int`); the other entries stay as they are. A pair that does go one by one is built
from the columns when it is met (`pair_at`).

A pair goes to the server as one completed call, its start's body joined with its end's
fields (`wire.encode.join_objects`): that join (two copies of ~1 KB a call) is made where
the columns are made, in the worker, not in the reading process. A block's columns then
hold in `start_body`'s place each call's item and in `end_tail`'s the length of the start's
body within it (`Columns.merged`), from which `pair_at` gives both back exactly; nothing
more crosses the pipe.
"""

from __future__ import annotations

import gc
from array import array
from collections.abc import Callable, Iterator, Sequence
from itertools import compress, repeat
from operator import getitem
from pickle import loads as _pickle_loads
from typing import Any, NamedTuple, TypeAlias, cast

from tracecli.check.cross_pairs import quiet_facts
from tracecli.upload.block_entries import CODE, TYPES, Entry, Pair, new_pair
from tracecli.upload.flat_pickle import dumps_flat

__all__ = [
    "PAIR_CODE",
    "Columns",
    "Item",
    "Prepared",
    "columns_of",
    "entries_of",
    "pair_at",
    "split",
]

PAIR_CODE = CODE[Pair]
_PAIRS = bytes(int(i == PAIR_CODE) for i in range(256))  # a type code -> 1 for a pair
_OTHERS = bytes(int(i != PAIR_CODE) for i in range(256))  # -> 1 for any other entry
_PAIR_BYTE = bytes((PAIR_CODE,))

# the columns that hold one value throughout a block nearly always (the project, the
# shapes, the project_id as read: None, or the file's under --project): such a column is
# pickled as that value once, in a list (`_alike`), spared a string decoded and freed per
# pair in the reading process
_ALIKE = tuple(
    Pair._fields.index(f) for f in ("project", "start_shape", "end_shape", "start_orig", "end_orig")
)

_TRACE, _STARTED, _ENDED = (Pair._fields.index(f) for f in ("trace_id", "started", "ended"))
_BODY = Pair._fields.index("start_body")  # of a merged block: each call's item
_TAIL = Pair._fields.index("end_tail")  # of a merged block: its start body's length in it
_BUT_LAST, _BUT_FIRST = repeat(slice(None, -1)), repeat(slice(1, None))  # [:-1], [1:]
_COMMA_JOIN = b",".join
_FIRST, _LAST = repeat(0), repeat(-1)

Item: TypeAlias = "Entry | int"  # an entry, or where a pair stands its index in the columns


class Columns(NamedTuple):
    """A block's entries with its pairs as columns (see the module)."""

    items: list[Item]  # the entries in order; a pair's place holds its index in `cols`
    cols: Sequence[Sequence[Any]]  # the pairs' fields, one sequence per field of `Pair`
    codes: bytes  # each entry's type code (`block_entries.CODE`), one byte each
    # `cols` holds each call's item where `start_body` stands, and the start body's length
    # in it where `end_tail` stands (see the module; `pair_at` gives both back)
    merged: bool = False
    # every pair's trace id a string and its times in order (`cross_pairs.quiet_facts`),
    # found where the columns were made: the reading process's run path need not look
    vouched: bool = False


def split(entries: list[Entry]) -> tuple[bytes, list[Entry], list[tuple[Any, ...]], bool, bool]:
    """(type codes, the entries that are not pairs, the pairs' columns, merged, vouched)
    of a block, at C speed (what a worker pickles): see `merge` and `Columns.vouched`."""
    codes = bytes(map(CODE.__getitem__, map(type, entries)))
    n = codes.count(_PAIR_BYTE)
    if not n:
        return codes, entries, [], False, False
    pairs = compress(entries, codes.translate(_PAIRS))
    others = list(compress(entries, codes.translate(_OTHERS))) if n != len(entries) else []
    cols = list(zip(*pairs, strict=True))
    vouched = quiet_facts(cols[_TRACE], cols[_STARTED], cols[_ENDED])
    return codes, others, cols, merge(cols), vouched


def merge(cols: list[tuple[Any, ...]]) -> bool:
    """Each pair's completed-call item in `start_body`'s column, its start body's length
    in `end_tail`'s (`join_objects(body, tail)`: `body[:-1] + b"," + tail[1:]`), by C-level
    maps; True when done. Not done (False, nothing changed) unless every body and tail is
    an object with fields (the usual), so that `pair_at` gives both back byte for byte."""
    bodies, tails = cols[_BODY], cols[_TAIL]
    n = len(bodies)
    if not (
        set(map(type, bodies)) == {bytes} == set(map(type, tails))
        and min(map(len, bodies)) > 2
        and min(map(len, tails)) > 2
        and bytes(map(getitem, bodies, _LAST)) == b"}" * n  # (each byte an int)
        and bytes(map(getitem, tails, _FIRST)) == b"{" * n
    ):
        return False
    heads, rests = map(getitem, bodies, _BUT_LAST), map(getitem, tails, _BUT_FIRST)
    both = cast(Iterator[tuple[bytes, bytes]], zip(heads, rests, strict=True))
    cols[_BODY] = tuple(map(_COMMA_JOIN, both))
    # the lengths as one array: pickled as one bytes, not an int each
    cols[_TAIL] = cast(tuple[Any, ...], array("I", map(len, bodies)))
    return True


def joined(
    codes: bytes, others: Any, cols: Sequence[Sequence[Any]], merged: bool, vouched: bool
) -> Columns:
    """The block's `Columns` from `split`'s parts (`others`: an iterable of them, in order)."""
    if not cols:  # (a block with no pair: its entries as they are)
        return Columns(list(others), cols, codes)
    o: Iterator[Any] = iter(others)
    # by type code (a dict's method: a tuple's __getitem__ is a slower call): a pair's
    # place takes the next index
    sources = {code: o for code in range(len(TYPES))}
    sources[PAIR_CODE] = iter(range(len(cols[0])))
    items = list(map(next, map(sources.__getitem__, codes)))
    return Columns(items, cols, codes, merged, vouched)


def columns_of(entries: list[Entry]) -> Columns:
    """A block's entries (made in this process) as `Columns`."""
    return joined(*split(entries))


def pair_at(block: Columns, p: int) -> Pair:
    """The `Pair` of index `p` in a block's columns."""
    cols = block.cols
    row = list(map(getitem, cols, [p] * len(cols)))
    if block.merged:  # the start's body and the end's tail, from the call's item
        item, n = row[_BODY], row[_TAIL]
        row[_BODY], row[_TAIL] = item[: n - 1] + b"}", b"{" + item[n:]
    return new_pair(tuple(row))


def entries_of(block: Columns) -> list[Entry]:
    """The block's entries, every pair built (for callers that want them all)."""
    return [pair_at(block, e) if isinstance(e, int) else e for e in block.items]


class Prepared:
    """A block's outcome (`blocks.prepare_lines`): its lines, its records and its entries.

    Pickled (from a worker back to the reading process) as plain tuples and a type code
    per entry, its pairs as columns (see the module), rebuilt at C speed: pickling each
    named tuple as itself costs a Python call both ways, ~1.5 µs per record, which
    measured 8-10% of an upload's CPU time. Those are pickled without pickle's memo
    (`flat_pickle`), into one bytes the pool's own pickle copies as it is: the memo was
    half of what pickling a block cost, both ways. Read back, it holds the block as
    `Columns` (what the reading process takes); `entries` builds the pairs on demand.
    """

    __slots__ = ("_block", "_entries", "lines", "records")

    def __init__(
        self, lines: int, records: int, entries: list[Entry] | None, block: Columns | None = None
    ) -> None:
        self.lines = lines
        self.records = records
        self._entries = entries
        self._block = block

    @property
    def entries(self) -> list[Entry]:
        if self._entries is None:
            assert self._block is not None
            self._entries = entries_of(self._block)
        return self._entries

    def columns(self) -> Columns:
        """The block as the reading process takes it (its pairs as columns)."""
        if self._block is None:
            self._block = columns_of(self.entries)
        return self._block

    def __reduce__(self) -> tuple[Any, ...]:
        codes, others, cols, merged, vouched = split(self.entries)
        flat = dumps_flat((codes, list(map(tuple, others)), _alike(cols), merged, vouched))
        return (_unpickled, (self.lines, self.records, flat))


def _alike(cols: list[tuple[Any, ...]]) -> list[Any]:
    """The pairs' columns as pickled: each of `_ALIKE`'s that holds one value throughout
    as that value in a list of one (a column of values is a tuple)."""
    out: list[Any] = cols
    for i in _ALIKE if cols else ():
        c = cols[i]
        if c.count(c[0]) == len(c):
            out = out if out is not cols else list(cols)
            out[i] = [c[0]]
    return out


def _unpickled(lines: int, records: int, flat: bytes) -> Prepared:
    """`Prepared.__reduce__`'s inverse, the garbage collector paused meanwhile (as over a
    block in the worker): the block's thousands of new tuples hold no cycle, and its
    passes over them cost a third of reading them back."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return _rebuild(lines, records, *_pickle_loads(flat))
    finally:
        if paused:
            gc.enable()


def _rebuild(
    lines: int,
    records: int,
    codes: bytes,
    rows: list[tuple[Any, ...]],
    cols: list[Any],
    merged: bool,
    vouched: bool,
) -> Prepared:
    new = cast(Callable[[type, tuple[Any, ...]], Entry], tuple.__new__)
    if cols:  # the columns `_alike` wrote once: a value for each pair again
        m = codes.count(_PAIR_BYTE)
        for i in _ALIKE:
            if type(cols[i]) is list:
                cols[i] = (cols[i][0],) * m
    types = map(TYPES.__getitem__, codes.translate(None, _PAIR_BYTE) if cols else codes)
    return Prepared(
        lines, records, None, joined(codes, map(new, types, rows), cols, merged, vouched)
    )
