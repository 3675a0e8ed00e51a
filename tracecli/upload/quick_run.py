"""A run of usual calls sent at once: upload's quick path by columns, not pair by pair.

`QuickPairs.take` (tracecli.upload.quick) handles a block's usual pairs one at a time:
registered in the checker, joined, appended to their chunk, ~25k instructions a call in
the one process every record passes through. A block's pairs mostly come in long runs
(a few hundred between two lone halves), and what the quick path does to each can be
done to the run's columns instead: the checks by `CrossChecker.feed_pairs_quiet`, the
packed records by C-level maps, the chunks filled by slices (`Chunker.add_calls`).

All or nothing: `RunSender.send` answers False, having changed nothing, when any pair of
the run would leave the quick path (a flag, a line an earlier run stored, a line beyond
the packed field, another project than the first's, anything the checker would say);
the caller then goes one by one, which answers that pair as before. The project_id as
read of a pair whose project `--project` replaced goes with its unit (`as_read`). What
is sent is byte for byte what one by one sends: the same items, records, chunks and
originals, in the same order (a test holds the two paths equal).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Sequence
from itertools import repeat
from operator import getitem, lshift, or_
from typing import Any, cast

from tracecli.check.cross import CrossChecker
from tracecli.diagnostics import Diagnostic
from tracecli.upload.pair_cols import PAIR_CODE, Columns
from tracecli.upload.units import Routes
from tracecli.wire.chunking import REC, SHAPES, Chunk, Chunker, pack

_LINE = REC["line"]
_BUT_LAST, _BUT_FIRST = repeat(slice(None, -1)), repeat(slice(1, None))  # [:-1], [1:]
_COMMA_JOIN = b",".join
_NOT_PAIR = re.compile(b"[^" + re.escape(bytes((PAIR_CODE,))) + b"]")  # in a block's codes


class RunSender:
    """Finds a block's runs of pairs and sends a run at once (see the module's docstring);
    the state the quick path keeps per upload run (`QuickPairs` adds the one-by-one loop)."""

    __slots__ = ("_bits", "_late", "_submit", "checker", "chunker", "routes")

    def __init__(
        self,
        checker: CrossChecker,
        chunker: Chunker,
        submit: Callable[[Chunk], object],
        late: Callable[[Sequence[Diagnostic]], None],
        routes: Routes,  # project → its calls/complete route (shared with the run)
    ) -> None:
        self.checker = checker
        self.chunker = chunker
        self.routes = routes
        self._submit = submit
        self._late = late
        self._bits: dict[int, tuple[dict[str, int], dict[str, int]]] = {}

    def _file_bits(self, src: int) -> tuple[dict[str, int], dict[str, int]]:
        """A start's and an end's packed record at line 0 of input `src`, by shape."""
        bits = self._bits.get(src)
        if bits is None:
            starts = {shape: pack(src, 0, "start", shape) for shape in SHAPES}
            ends = {shape: pack(src, 0, "end", shape) for shape in SHAPES}
            bits = self._bits[src] = (starts, ends)
        return bits

    @staticmethod
    def _run_end(block: Columns, k: int) -> int:
        """Where the run of pairs from entry `k` ends (from the block's type codes)."""
        m = _NOT_PAIR.search(block.codes, k)
        return len(block.codes) if m is None else m.start()

    def send(
        self,
        block: Columns,
        k: int,
        j: int,
        path: str,
        base: int,
        acked: Collection[int],
        bits: tuple[dict[str, int], dict[str, int]],
    ) -> bool:
        """Send the pairs `block.items[k:j]` (all pairs) if every one is a usual call."""
        m = j - k
        p = cast(int, block.items[k])  # the run's first pair in the columns
        cols = block.cols
        if p or len(cols[0]) != m:  # the run's columns, in Pair's order
            cols = [c[p : p + m] for c in cols]
        lines, cids, projects, tids, pids, starteds, endeds, end_lines, s_shapes, s_bodies, \
            s_flags, s_origs, e_shapes, _, tails, e_flags, e_origs = cols  # fmt: skip
        if any(s_flags) or any(e_flags):
            return False
        if projects.count(projects[0]) != m:
            return False
        if base + max(max(lines), max(end_lines)) > _LINE.mask:
            return False
        line_s = list(map(base.__add__, lines))
        line_e = list(map(base.__add__, end_lines))
        if acked and (any(map(acked.__contains__, line_s)) or any(map(acked.__contains__, line_e))):
            return False
        checker = self.checker
        vouched = block.vouched  # (the worker looked at the trace ids and the times)
        if not checker.feed_pairs_quiet(
            path, base, lines, cids, tids, pids, starteds, endeds, vouched
        ):
            return False
        recs = _records(bits, line_s, line_e, s_shapes, e_shapes)
        # the calls' items, joined in the worker (`pair_cols.merge`), else here
        items = s_bodies if block.merged else _joined(s_bodies, tails)
        extras = _extras(s_origs, e_origs)
        for chunk in self.chunker.add_calls(self.routes[projects[0]], items, recs, extras):
            self._submit(chunk)
        if checker.deferred:
            self._late(checker.drain())
        return True


def as_read(s_orig: str | None, e_orig: str | None) -> tuple[Any, None]:
    """A pair's unit's `extra` when --project replaced a project_id: each half's as read
    (None where it named that project), as `units.pair_unit` gives it (no clash here)."""
    return ((s_orig, e_orig), None)


def _extras(s_origs: Sequence[str | None], e_origs: Sequence[str | None]) -> list[Any] | None:
    """Each pair's unit's `extra` (`as_read`; None where neither half's project was
    replaced), or None for the whole run when none was (no --project, or the file's own).
    One tuple per distinct couple, shared: a file names one project, nearly always."""
    m = len(s_origs)
    if s_origs.count(None) == m and e_origs.count(None) == m:
        return None
    both = list(zip(s_origs, e_origs, strict=True))
    made = {k: None if k == (None, None) else as_read(*k) for k in set(both)}
    return list(map(made.__getitem__, both))


def _records(
    bits: tuple[dict[str, int], dict[str, int]],
    line_s: list[int],
    line_e: list[int],
    s_shapes: Sequence[str],
    e_shapes: Sequence[str],
) -> list[int]:
    """Each pair's start and end `pack`ed (interleaved), from the file's bits per shape."""
    starts, ends = bits
    shift = repeat(_LINE.shift)
    s_bits = map(starts.__getitem__, s_shapes)
    e_bits = map(ends.__getitem__, e_shapes)
    recs = [0] * (2 * len(line_s))
    recs[0::2] = map(or_, s_bits, map(lshift, line_s, shift))
    recs[1::2] = map(or_, e_bits, map(lshift, line_e, shift))
    return recs


def _joined(bodies: Sequence[bytes], tails: Sequence[bytes]) -> list[bytes]:
    """`join_objects(body, tail)` of each pair: the completed call's item."""
    if min(map(len, bodies)) > 2 and min(map(len, tails)) > 2:  # the usual: both hold fields
        # s[:-1] + b"," + t[1:] by C-level maps: one copy fewer (`join` of the two slices)
        # and no bytecode per pair, ~0.75k instructions a pair fewer
        heads, rests = map(getitem, bodies, _BUT_LAST), map(getitem, tails, _BUT_FIRST)
        both = cast(Iterator[tuple[bytes, bytes]], zip(heads, rests, strict=True))
        return list(map(_COMMA_JOIN, both))
    return [
        s if len(t) <= 2 else t if len(s) <= 2 else s[:-1] + b"," + t[1:]
        for s, t in zip(bodies, tails, strict=True)
    ]
