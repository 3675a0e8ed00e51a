"""What the passes of `upload --follow` know of each other's calls, for the cross checks.

Each pass of a follow is an ordinary upload with its own `CrossChecker`, reading only what
is new in the files. Alone, a pass would call a parent "not in the inputs" when an earlier
pass read it, and when it is still to be written: a completed call is written when it
ends, so a child is often read a pass before its parent. So the passes share this:

- the calls earlier passes read (a start, a completed call, or a record refused with that
  id), as the hashes the checker keys ids by: a parent or a start among them is in the
  inputs. At most `KNOWN_MAX` of them (8 bytes and a set slot each); past that the set
  starts again, and a child of a call read that long ago may be warned about (falsely).
- the "parent call is not in the inputs" warnings of the passes, held until the parent is
  read (then dropped) or `wait` seconds have gone by (then said, by the next pass to end,
  or when the follow stops): the same patience a start has for its end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from tracecli.diagnostics import Diagnostic

KNOWN_MAX = 1 << 18  # ~262k call ids of earlier passes (~20 MB at most)
HELD_MAX = 10_000  # warnings held back at once; beyond, all are said at once


class EarlierPasses:
    """The calls earlier passes of one follow read, and the warnings held for a parent."""

    __slots__ = ("_clock", "_held", "known", "wait")

    def __init__(self, wait: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.wait = wait
        self.known: set[int] = set()
        self._held: dict[int, list[tuple[float, Diagnostic]]] = {}  # parent hash → warnings
        self._clock = clock

    def knows(self, h: int) -> bool:
        return h in self.known

    def read(self, hashes: Iterable[int]) -> None:
        """A pass read these calls: they are in the inputs, for the passes after it, and
        the warnings held for them as parents are dropped."""
        known = self.known
        held = self._held
        add = known.add
        for h in hashes:  # one at a time: a first pass over a big file stays within bounds
            add(h)
            if len(known) > KNOWN_MAX:
                known.clear()
            if held:
                held.pop(h, None)

    def hold(self, parent: int, diags: list[Diagnostic]) -> None:
        """Hold warnings about children of `parent`, a call not read yet."""
        now = self._clock()
        self._held.setdefault(parent, []).extend((now, d) for d in diags)

    def due(self) -> list[Diagnostic]:
        """The warnings held `wait` seconds or longer (all, when more than `HELD_MAX` are
        held), no longer held."""
        if sum(map(len, self._held.values())) > HELD_MAX:
            return self.rest()
        limit = self._clock() - self.wait
        out: list[Diagnostic] = []
        for h in list(self._held):
            held = self._held[h]
            out.extend(d for t, d in held if t <= limit)
            kept = [(t, d) for t, d in held if t > limit]
            if kept:
                self._held[h] = kept
            else:
                del self._held[h]
        return out

    def rest(self) -> list[Diagnostic]:
        """Every warning still held, no longer held (the follow stops, or holds too many)."""
        out = [d for held in self._held.values() for _, d in held]
        self._held.clear()
        return out
