"""The usual call of an upload, from its block's `Pair` to its request, in one tight loop.

Nearly every call of a real file is a start and its end read in the same block, both
valid, with nothing for the cross-record checks to say: the reading process then only
registers its id, joins the start's bytes with the end's fields and appends that to the
open chunk of its project. The general path (`Run._pair`) builds two `Half`s, a `Unit`
and a list of diagnostics for it first, several microseconds per call on the one process
that every record passes through. `QuickPairs.take` does the same work without them and
hands anything else back to the general path, untouched:

- a pair with a flag (a start holding an end field, an end with fields a completed call
  drops), a line an earlier run stored (resume), a mode other than auto/complete;
- a pair the cross-record checks would say something about (`feed_pair_quiet` says
  False and changes nothing: `feed_pair` then says it, in the same order as before).

The requests are byte for byte the general path's: the same join (`join_objects`), the
same packed records (`chunking.pack`, its bits computed once per file) and the same
chunks (`Chunker.add_call` is `Chunker.add` for such a unit). Under `--project` a pair
whose records named another project carries their project_id as read in its unit's
`extra`, as `units.pair_unit` gives it, so that a refused call goes to the rejected file
as it was written (`originals`).
"""

from __future__ import annotations

from collections.abc import Collection
from itertools import repeat
from operator import getitem

from tracecli.upload.pair_cols import Columns
from tracecli.upload.quick_run import RunSender, as_read
from tracecli.wire.chunking import REC

_LINE = REC["line"]
QUICK_MODES = frozenset({"auto", "complete"})  # where a pair is one completed-call item
RUN_MIN = 4  # a run of fewer pairs goes one by one (the columns cost more than they save)


class QuickPairs(RunSender):
    """The quick path of one upload run (see the module's docstring); its runs of pairs
    go at once through `RunSender.send` (tracecli.upload.quick_run)."""

    __slots__ = ()

    def take(
        self,
        block: Columns,
        k: int,
        src: int,
        path: str,
        base: int,
        acked: Collection[int],
    ) -> int:
        """Send the block's entries from `k` while they are plain pairs; the index of the
        first entry left to the general path (`k` when it is the first).

        A run of pairs goes at once when all of it is quiet (`RunSender.send`), else one
        by one up to the first pair the general path must see."""
        bits = self._file_bits(src)
        j = self._run_end(block, k)
        if j - k >= RUN_MIN and self.send(block, k, j, path, base, acked, bits):
            return j
        starts, ends = bits
        line_shift, line_max = _LINE.shift, _LINE.mask
        quiet = self.checker.feed_pair_quiet
        deferred = self.checker.deferred
        add_call = self.chunker.add_call
        routes = self.routes
        items, cols, merged = block.items, block.cols, block.merged
        n = len(items)
        while k < n:
            e = items[k]
            if type(e) is not int:  # (a pair's place holds its index in the columns)
                break
            row = map(getitem, cols, repeat(e))  # its fields by name in Pair's order
            line, cid, project, tid, pid, started, ended, end_line, s_shape, s_body, s_flag, \
                s_orig, e_shape, _, tail, e_flag, e_orig = row  # fmt: skip
            if s_flag or e_flag:
                break
            line_s = base + line
            line_e = base + end_line
            if line_e > line_max or (acked and (line_s in acked or line_e in acked)):
                break
            if not quiet(path, line_s, cid, tid, pid, started, ended):
                break
            route = routes[project]
            # `join_objects(s_body, tail)`, the completed call (joined in the worker when
            # the block is `merged`: see `pair_cols`)
            if merged or len(tail) <= 2:
                item = s_body
            elif len(s_body) <= 2:
                item = tail
            else:
                item = s_body[:-1] + b"," + tail[1:]
            closed = add_call(
                route,
                item,
                starts[s_shape] | line_s << line_shift,
                ends[e_shape] | line_e << line_shift,
                None if s_orig is None and e_orig is None else as_read(s_orig, e_orig),
            )
            if closed:
                for chunk in closed:
                    self._submit(chunk)
            if deferred:
                self._late(self.checker.drain())
            k += 1
        return k


def quick_modes(mode: str) -> bool:
    """Whether `--mode` sends a pair as one completed-call item (the quick path's)."""
    return mode in QUICK_MODES
