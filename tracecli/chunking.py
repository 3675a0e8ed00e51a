"""Group encoded calls into requests bounded by item count and by request bytes.

A `Unit` is what one call puts into one request: a completed call (one item), a start and
its end (two items, start first: they are never split apart, so an end can never reach the
server before its start), or a lone start or end. Units for the same route gather into a
`Chunk` until one more would pass `max_items` or `max_bytes`; a unit bigger than the byte
bound on its own goes alone (the server may still take it; if not, its 413 rejects it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from tracecli.encode import BATCH_OVERHEAD, batch_body
from tracecli.pairing import Half

DEFAULT_CHUNK_ITEMS = 500
DEFAULT_CHUNK_BYTES = 10 * 1024 * 1024

SINGLE = "single"  # route key of units sent as /call/start then /call/end, one call a request


@dataclass(slots=True)
class Unit:
    """One call's part of a request.

    route: where its items go (the chunk key); SINGLE for one-call-per-request routes.
    parts: encoded batch items (or, for SINGLE, one request body per entry of `steps`).
    halves: the records it carries, acknowledged or rejected with it.
    steps: for SINGLE, the route of each part, sent in order, each after the last's 2xx.
    """

    route: str
    parts: tuple[bytes, ...]
    halves: tuple[Half, ...]
    steps: tuple[str, ...] = ()

    @property
    def nbytes(self) -> int:
        return sum(len(p) for p in self.parts) + len(self.parts)  # + the commas


@dataclass(slots=True)
class Chunk:
    route: str
    units: list[Unit] = field(default_factory=list)
    nbytes: int = BATCH_OVERHEAD
    nitems: int = 0

    def body(self) -> bytes:
        return batch_body(p for u in self.units for p in u.parts)

    def add(self, unit: Unit) -> None:
        self.units.append(unit)
        self.nbytes += unit.nbytes
        self.nitems += len(unit.parts)

    def halves(self) -> Iterator[Half]:
        for u in self.units:
            yield from u.halves

    def split(self) -> tuple[Chunk, Chunk]:
        """Two chunks of (nearly) half the units each, for a 413 or to find a refused call."""
        mid = len(self.units) // 2
        a, b = Chunk(self.route), Chunk(self.route)
        for u in self.units[:mid]:
            a.add(u)
        for u in self.units[mid:]:
            b.add(u)
        return a, b


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
        chunk = self._open.get(unit.route)
        if (
            chunk is not None
            and chunk.units
            and (
                chunk.nitems + len(unit.parts) > self.max_items
                or chunk.nbytes + unit.nbytes > self.max_bytes
            )
        ):
            out.append(chunk)
            chunk = None
        if chunk is None:
            chunk = self._open[unit.route] = Chunk(unit.route)
        chunk.add(unit)
        if chunk.nitems >= self.max_items or chunk.nbytes >= self.max_bytes:
            out.append(chunk)
            del self._open[unit.route]
        return out

    def flush(self) -> list[Chunk]:
        """Every chunk still open (end of input, or before waiting on in-flight work)."""
        out = [c for c in self._open.values() if c.units]
        self._open.clear()
        return out

    @property
    def pending_units(self) -> int:
        return sum(len(c.units) for c in self._open.values())
