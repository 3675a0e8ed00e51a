"""Group encoded calls into requests bounded by item count and by request bytes.

A `Unit` is what one call puts into one request: a completed call (one item), a start and
its end (two items, start first: they are never split apart, so an end can never reach the
server before its start), or a lone start or end. Units for the same route gather into a
`Chunk` until one more would pass `max_items` or `max_bytes`; a unit bigger than the byte
bound on its own goes alone (the server may still take it; if not, its 413 rejects it).

A chunk keeps its calls compact: the item bytes in one list and, per record, one packed
integer (`pack`, laid out by `REC`) in an array. Queued chunks hold thousands of calls; as
Python objects (a few small ones per call) they would pin memory pools that the short-lived
dicts of the reading loop then fragment, and peak memory would grow with the requests in flight.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, repeat
from operator import add
from typing import Any, NamedTuple

from tracecli.config.fields import CHUNK_BYTES, CHUNK_SIZE
from tracecli.packing import BitFields
from tracecli.wire.encode import BATCH_OVERHEAD, batch_body

DEFAULT_CHUNK_ITEMS = CHUNK_SIZE  # the defaults of the settings (tracecli.config.fields)
DEFAULT_CHUNK_BYTES = CHUNK_BYTES

SINGLE = "single"  # route key of units sent as /call/start then /call/end, one call a request

# A record in a chunk: how it was written, its line and its input file (index).
KINDS = ("start", "end", "complete")
SHAPES = ("flat", "batch", "request", "complete")
REC = BitFields(kind=KINDS, shape=SHAPES, line=40, src=20)
_unpack = REC.unpacker("src", "line", "kind", "shape")

pack: Callable[[int, int, str, str], int] = REC.packer("src", "line", "kind", "shape")
"""pack(src, line, kind, shape): a record of a chunk as one int."""


_KIND, _LINE, _SRC = REC["kind"], REC["line"], REC["src"]
_ONES = repeat(1)
_END = KINDS.index("end")


# a packed record's low byte -> 1 when its kind is an end (kind is the lowest field)
_ENDS_BY_LOW_BYTE = bytes(int(b >> _KIND.shift & _KIND.mask == _END) for b in range(256))
_LOW_BYTE_FIRST = sys.byteorder == "little" and _KIND.shift + _KIND.width <= 8


def count_ends(recs: Sequence[int]) -> int:
    """How many of these packed records are ends (the others start or complete a call).

    A chunk's records (an array of 8-byte integers): counted in C from each one's low
    byte, where the kind is, not by a comprehension per record in a sender thread."""
    if _LOW_BYTE_FIRST and isinstance(recs, array) and recs.itemsize == 8:
        return recs.tobytes()[::8].translate(_ENDS_BY_LOW_BYTE).count(1)
    shift, mask = _KIND.shift, _KIND.mask
    return [rec >> shift & mask for rec in recs].count(_END)


# src is the top field: in a little-endian 8-byte record, the high bits of byte
# `_SRC.shift // 8` (`_SRC_LOW` keeps them) and the bytes after it
_SRC_BYTES = (
    range(_SRC.shift // 8, 8)
    if sys.byteorder == "little" and _SRC.shift + _SRC.width == 64
    else range(0)
)
_SRC_LOW = bytes(b >> (_SRC.shift % 8) for b in range(256))


def _one_src(data: bytes, n: int) -> bool:
    """Whether the `n` records in `data` (8 bytes each) share their src: each byte of the
    field the same throughout, by slices and counts in C (not two passes of min and max
    that box every record, in a sender thread that holds the reading process's lock)."""
    for j in _SRC_BYTES:
        column = data[j::8]
        if j == _SRC_BYTES.start:
            column = column.translate(_SRC_LOW)
        if column.count(column[0]) != n:
            return False
    return True


def journal_lines(recs: Sequence[int]) -> dict[int, list[int]]:
    """The input lines of these packed records, by input (what an acknowledgement
    journals): one pass per input, not one look-up per record."""
    if not recs:
        return {}
    src_shift, src_mask = _SRC.shift, _SRC.mask
    line_shift, line_mask = _LINE.shift, _LINE.mask
    if _SRC_BYTES and isinstance(recs, array) and recs.itemsize == 8:  # a chunk's records
        first = last = recs[0] >> src_shift & src_mask
        if not _one_src(recs.tobytes(), len(recs)):
            last = -1
    else:  # (src is the top field: the least and greatest share it when all do)
        first, last = min(recs) >> src_shift & src_mask, max(recs) >> src_shift & src_mask
    if first == last:
        return {first: [rec >> line_shift & line_mask for rec in recs]}
    by_src: dict[int, list[int]] = {}
    for rec in recs:
        by_src.setdefault(rec >> src_shift & src_mask, []).append(rec >> line_shift & line_mask)
    return by_src


class PackedRec(NamedTuple):
    """A record of a chunk, unpacked."""

    src: int
    line: int
    kind: str
    shape: str


def unpack(rec: int) -> PackedRec:
    return PackedRec._make(_unpack(rec))


@dataclass(slots=True)
class Unit:
    """One call's part of a request (short-lived: the chunker copies it in compact form).

    route: where its items go (the chunk key); SINGLE for one-call-per-request routes.
    parts: encoded batch items (or, for SINGLE, one request body per entry of `steps`).
    recs: the records it carries (`pack`ed), acknowledged or rejected with it.
    extra: what rebuilding the records as read needs beyond `parts` (see upload_units), or None.
    steps: for SINGLE, the route of each part, sent in order, each after the last's 2xx.
    """

    route: str
    parts: tuple[bytes, ...]
    recs: tuple[int, ...]
    extra: Any = None
    steps: tuple[str, ...] = ()

    @property
    def nbytes(self) -> int:
        return sum(map(len, self.parts)) + len(self.parts)  # + the commas


class Chunk:
    """The units of one request: items, records and where each unit's share ends."""

    __slots__ = ("extras", "item_ends", "items", "nbytes", "rec_ends", "recs", "route", "steps")

    def __init__(self, route: str) -> None:
        self.route = route
        self.items: list[bytes] = []
        self.recs = array("Q")
        self.item_ends = array("I")  # per unit: index just past its last item
        self.rec_ends = array("I")  # per unit: index just past its last record
        self.extras: dict[int, Any] = {}  # unit index → Unit.extra, when not None
        self.nbytes = BATCH_OVERHEAD
        self.steps: tuple[str, ...] = ()

    @property
    def nitems(self) -> int:
        return len(self.items)

    @property
    def units(self) -> int:
        return len(self.item_ends)

    def body(self) -> bytes:
        return batch_body(self.items)

    def add(self, unit: Unit, nbytes: int | None = None) -> None:
        if unit.extra is not None:
            self.extras[len(self.item_ends)] = unit.extra
        self.items.extend(unit.parts)
        self.recs.extend(unit.recs)
        self.item_ends.append(len(self.items))
        self.rec_ends.append(len(self.recs))
        self.nbytes += unit.nbytes if nbytes is None else nbytes
        if unit.steps:
            self.steps = unit.steps

    def unit(self, i: int) -> Unit:
        """Unit `i` as it was added."""
        i0 = self.item_ends[i - 1] if i else 0
        r0 = self.rec_ends[i - 1] if i else 0
        return Unit(
            self.route,
            tuple(self.items[i0 : self.item_ends[i]]),
            tuple(self.recs[r0 : self.rec_ends[i]]),
            self.extras.get(i),
            self.steps,
        )

    def iter_units(self) -> Iterator[Unit]:
        for i in range(self.units):
            yield self.unit(i)

    def subset(self, indices: Iterable[int]) -> Chunk:
        c = Chunk(self.route)
        for i in indices:
            c.add(self.unit(i))
        return c

    def split(self) -> tuple[Chunk, Chunk]:
        """Two chunks of (nearly) half the units each, for a 413 or to find a refused call."""
        mid = self.units // 2
        return self.subset(range(mid)), self.subset(range(mid, self.units))


class Chunker:
    """Open chunks per route; `add` returns the chunks that one more unit closed."""

    def __init__(
        self, max_items: int = DEFAULT_CHUNK_ITEMS, max_bytes: int = DEFAULT_CHUNK_BYTES
    ) -> None:
        if max_items < 1:
            raise ValueError("chunk size must be at least 1")
        if max_bytes < 1:
            raise ValueError("chunk bytes must be at least 1")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._open: dict[str, Chunk] = {}

    def add(self, unit: Unit) -> list[Chunk]:
        if unit.route == SINGLE:
            c = Chunk(SINGLE)
            c.add(unit)
            return [c]
        out: list[Chunk] = []
        size = unit.nbytes
        chunk = self._open.get(unit.route)
        if chunk is not None and (
            len(chunk.items) + len(unit.parts) > self.max_items
            or chunk.nbytes + size > self.max_bytes
        ):
            out.append(chunk)
            chunk = None
        if chunk is None:
            chunk = self._open[unit.route] = Chunk(unit.route)
        chunk.add(unit, size)
        if len(chunk.items) >= self.max_items or chunk.nbytes >= self.max_bytes:
            out.append(chunk)
            del self._open[unit.route]
        return out

    def add_call(
        self, route: str, item: bytes, start: int, end: int, extra: Any = None
    ) -> Sequence[Chunk]:
        """`add` of a Unit of one item and two records (a start and its end sent as one
        completed call), without making the Unit: what nearly every call of a file is,
        so this runs once per call. The same chunks as `add`."""
        size = len(item) + 1
        chunk = self._open.get(route)
        out: Sequence[Chunk] = ()
        if chunk is not None and (
            len(chunk.items) >= self.max_items or chunk.nbytes + size > self.max_bytes
        ):
            out = [chunk]
            chunk = None
        if chunk is None:
            chunk = self._open[route] = Chunk(route)
        items = chunk.items
        recs = chunk.recs
        if extra is not None:
            chunk.extras[len(chunk.item_ends)] = extra  # (the unit's index)
        items.append(item)
        recs.append(start)
        recs.append(end)
        chunk.item_ends.append(len(items))
        chunk.rec_ends.append(len(recs))
        chunk.nbytes += size
        if len(items) >= self.max_items or chunk.nbytes >= self.max_bytes:
            del self._open[route]
            return [*out, chunk]
        return out

    def add_calls(
        self,
        route: str,
        items: Sequence[bytes],
        recs: Sequence[int],
        extras: Sequence[Any] | None = None,
    ) -> list[Chunk]:
        """`add_call` for each of `items` in turn (`recs`: each item's start and end,
        interleaved; `extras`: each item's `extra`, or None for none), by slices: where
        each chunk closes is found on the running sum of the items' sizes, and its items
        and records are copied in one step each. The same chunks as one by one (a test
        holds that)."""
        out: list[Chunk] = []
        max_items, max_bytes = self.max_items, self.max_bytes
        sizes = list(map(add, map(len, items), _ONES))  # each item and its comma (C-level)
        n = len(items)
        i = 0
        while i < n:
            chunk = self._open.get(route)
            if chunk is None:
                chunk = self._open[route] = Chunk(route)
            had = len(chunk.items)
            room = max_items - had
            # how many of the next items fit: their running sum within the byte bound
            sums = list(accumulate(sizes[i : i + room], initial=chunk.nbytes))
            take = bisect_right(sums, max_bytes) - 1
            if take <= 0:
                if had:  # full for the next one: closed, the next goes to a new chunk
                    out.append(chunk)
                    del self._open[route]
                    continue
                take = 1  # an item beyond the bound alone goes alone
            j = i + take
            if extras is not None:  # by the units' indexes
                u, part = len(chunk.item_ends), extras[i:j]
                kept: Iterable[tuple[int, Any]] = zip(range(u, u + take), part, strict=True)
                if None in part:  # (a run mostly holds one extra for every unit: at C speed)
                    kept = (x for x in kept if x[1] is not None)
                chunk.extras.update(kept)
            chunk.items.extend(items[i:j])
            r0 = len(chunk.recs)
            chunk.recs.extend(recs[2 * i : 2 * j])
            chunk.item_ends.extend(range(had + 1, had + take + 1))
            chunk.rec_ends.extend(range(r0 + 2, r0 + 2 * take + 1, 2))
            chunk.nbytes = sums[take]
            if had + take >= max_items or chunk.nbytes >= max_bytes:
                out.append(chunk)
                del self._open[route]
            i = j
        return out

    def flush(self) -> list[Chunk]:
        """Every chunk still open (end of input)."""
        out = [c for c in self._open.values() if c.items]
        self._open.clear()
        return out
