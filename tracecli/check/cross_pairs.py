"""The pair feeds of `CrossChecker` (see tracecli.check.cross): a start and its end read
as one, one at a time (`feed_pair`, and upload's `feed_pair_quiet` for the usual call)
or a block's packed pairs at once (`feed_block`, validate's).

Apart from the checker's record-by-record rules because nearly every call of a real file
comes this way: these are the checker's hot paths, each held by a test to the answer of
feeding the start and then the end.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from operator import lt
from struct import pack
from typing import Any

from tracecli.check.entries import Diag, Entry, Refused, TimeOrder
from tracecli.check.facts import ended_before, time_order
from tracecli.check.idindex import HashIndex
from tracecli.check.pairpack import NO_PARENT, Packed, Pair, unpack_pairs
from tracecli.diagnostics import Diagnostic
from tracecli.schema.fastcheck import Facts

# flags per ordinal
_STARTED = 1  # a valid start or completed call was read (the call exists)
_ENDED = 2  # a valid end or completed call was read
_REFUSED = 4  # some record with this id failed its schema: no follow-on warnings
_NO_TRACE = 0


def _line(e: Entry | Pair) -> int:
    return e.line


def _times_in_order(starteds: Sequence[Any], endeds: Sequence[Any]) -> bool:
    """No end before its start, as `feed_pair_quiet` compares a pair's times: all
    written alike with "Z" (the usual: one length, "Z" last, the same separator at [10],
    each looked at in the times joined, by a slice) compared as text at once, else
    `ended_before`."""
    if set(map(type, starteds)) == {str} == set(map(type, endeds)):
        lens = set(map(len, starteds))
        lens.update(map(len, endeds))
        size = lens.pop() if len(lens) == 1 else 0
        if size >= 20:
            s, e = "".join(starteds), "".join(endeds)
            zs = "Z" * len(starteds)
            if (
                s[size - 1 :: size] == zs == e[size - 1 :: size]
                and len(set(s[10::size] + e[10::size])) == 1
            ):
                return not any(map(lt, endeds, starteds))
    return not any(
        ended_before(e, s)
        for s, e in zip(starteds, endeds, strict=True)
        if s is not None and e is not None
    )


def quiet_facts(tids: Sequence[Any], starteds: Sequence[Any], endeds: Sequence[Any]) -> bool:
    """Whether every pair has a trace id that is a string and no end before its start:
    the tests of `feed_pairs_quiet` that need nothing of the run, so a block's worker
    answers them once for all its pairs (`vouched`), off the reading process."""
    return set(map(type, tids)) == {str} and _times_in_order(starteds, endeds)


class PairFeeds:
    """The pair feeds; the state and the rules they use are `CrossChecker`'s."""

    _traces: array[int]
    _locs: array[int]
    _flags: bytearray
    _index: HashIndex
    _open: dict[int, tuple[int, float | None]]
    _orphans: dict[int, list[int]]
    _deferred: list[Diagnostic]
    calls: int

    # the checker's own rules, which these feeds call (defined by `CrossChecker`)
    feed_call: Callable[..., None]
    note_refused_id: Callable[[str, int, str], None]
    drain: Callable[[], list[Diagnostic]]
    _pack: Callable[[str, int], int]
    _link: Callable[..., None]
    _parent_hash: Callable[[int, int, int, list[Diagnostic]], None]
    _adopt: Callable[[int, int, list[int]], None]
    _mismatch: Callable[[int, int], Diagnostic]

    def feed_pair(
        self,
        path: str,
        line: int,
        cid: str,
        tid: Any,
        pid: Any,
        started: Any,
        ended: Any,
        end_line: int,
        out: list[Diagnostic],
    ) -> None:
        """A start at `line` and its end at `end_line` (same file), read as one.

        A block pairs the halves that sit close together before they reach the process
        that runs the checks, which halves the work here; the answer is the same as
        feeding the start and then the end.
        """
        h = hash(cid)
        index = self._index
        if h in index.recent or type(tid) is not str or index.get(h) is not None:
            self.feed_call(path, line, "start", cid, tid, pid, started, None, out)
            self.feed_call(path, end_line, "end", cid, None, None, None, ended, out)
            return
        trace = hash(tid)
        o = self._new_pair(h, trace, path, line)
        if started is not None and ended is not None and ended_before(ended, started):
            out.append(
                time_order(path, end_line, "ended_at", ended, started, f"start at {path}:{line}")
            )
        self._link(path, line, o, trace, h, pid, out)

    def _new_pair(self, h: int, trace: int, path: str, line: int) -> int:
        """Register a new call read whole (a start and its end): its ordinal."""
        o = len(self._traces)
        self._traces.append(trace)
        self._locs.append(self._pack(path, line))
        self._flags.append(_STARTED | _ENDED)
        self._index.add(h, o)
        self.calls += 1
        return o

    def feed_pair_quiet(
        self, path: str, line: int, cid: str, tid: Any, pid: Any, started: Any, ended: Any
    ) -> bool:
        """`feed_pair` for a pair it would say nothing about (the usual call): registered,
        True; else False with nothing changed, and the caller feeds it with `feed_pair`.

        Everything that could make a diagnostic about the pair itself is looked at
        before anything is registered (the id seen before, the times out of order, a
        parent of another trace), so upload's reading loop can send the call without
        building anything for its diagnostics; what is left (children read before it,
        whose trace differs) goes where `feed_pair` puts it, to `drain`.
        """
        if type(tid) is not str:
            return False
        h = hash(cid)
        index = self._index
        recent = index.recent
        frozen = index.frozen
        if h in recent or (frozen and index.get(h) is not None):
            return False
        if started is not None and ended is not None:
            if (  # `ended_before` for two times written alike with "Z" (the usual): compared
                type(ended) is str
                and type(started) is str
                and len(ended) == len(started) >= 20
                and ended[-1] == "Z" == started[-1]
                and ended[10] == started[10]
            ):
                if ended < started:
                    return False
            elif ended_before(ended, started):
                return False
        trace = hash(tid)
        ph = 0
        waits = False  # for its parent (not read yet): an orphan until then
        if pid is not None and type(pid) is str:
            if pid == cid:
                return False  # its own parent: `feed_pair` finds it once registered
            ph = hash(pid)
            opened = self._open.get(ph)
            po = opened[0] if opened is not None else recent.get(ph)
            if po is None and frozen:
                po = index.get(ph)
            if po is None:
                waits = True
            else:
                pflags = self._flags[po]
                if pflags & _STARTED:
                    ptrace = self._traces[po]
                    if ptrace != trace and ptrace != _NO_TRACE and trace != _NO_TRACE:
                        return False  # a trace mismatch: `feed_pair` says so
                else:
                    waits = not pflags & _REFUSED
        o = self._new_pair(h, trace, path, line)
        orphans = self._orphans
        if waits:
            orphans.setdefault(ph, []).append(o)
        if orphans:
            children = orphans.pop(h, None)
            if children is not None:
                self._adopt(o, trace, children)
        return True

    def feed_pairs_quiet(
        self,
        path: str,
        base: int,
        lines: Sequence[int],
        cids: Sequence[str],
        tids: Sequence[Any],
        pids: Sequence[Any],
        starteds: Sequence[Any],
        endeds: Sequence[Any],
        vouched: bool = False,
    ) -> bool:
        """`feed_pair_quiet` for a run of pairs at once (upload's block of usual calls,
        their lines relative to `base`): True when it would have said True for every one
        of them in turn (all registered, as one by one would have), else False with
        nothing changed, and the caller goes one by one. `vouched`: `quiet_facts` holds
        for the run (its block's worker said so for all the block's pairs).

        The tests are the one-by-one feed's, made on the run's columns: the ids new and
        distinct, no end before its start, every parent found with the same trace (one
        read earlier in the run counts; one read later in it does not: the caller's
        one-by-one feed then keeps the order of the orphan's adoption).
        """
        n = len(cids)
        if not vouched and not quiet_facts(tids, starteds, endeds):
            return False
        hs = list(map(hash, cids))
        fresh = set(hs)
        index = self._index
        recent = index.recent
        if len(fresh) != n or not recent.keys().isdisjoint(fresh) or index.any_of(hs):
            return False
        ths = list(map(hash, tids))
        waits = [] if pids.count(None) == n else self._run_parents(cids, pids, hs, ths)
        if waits is None:
            return False
        traces = self._traces
        o0 = len(traces)
        traces.extend(ths)
        first = self._pack(path, 0) + base  # file bits | line: the line bits are free
        self._locs.extend(map(first.__add__, lines))
        self._flags.extend(bytes((_STARTED | _ENDED,)) * n)
        recent.update(zip(hs, range(o0, o0 + n), strict=True))
        index.freeze_if_full()
        self.calls += n
        orphans = self._orphans
        for i, ph in waits:
            orphans.setdefault(ph, []).append(o0 + i)
        # children read before the run wait for some of its calls (none waits for a call
        # of the run: it was refused above): adopted in the run's order, as one by one
        adopting = fresh.intersection(orphans) if orphans else None
        if adopting:
            at = dict(zip(hs, range(n), strict=True))
            for i in sorted(map(at.__getitem__, adopting)):
                self._adopt(o0 + i, ths[i], orphans.pop(hs[i]))
        return True

    def _run_parents(
        self, cids: Sequence[str], pids: Sequence[Any], hs: list[int], ths: list[int]
    ) -> list[tuple[int, int]] | None:
        """The parents of a run of pairs, as `feed_pair_quiet` looks them up one by one:
        the (position, parent hash) of those that wait for their parent, or None when
        one pair would not be quiet."""
        opened = self._open
        index = self._index
        recent = index.recent
        frozen = index.frozen
        flags = self._flags
        traces = self._traces
        pos: dict[int, int] | None = None
        waits: list[tuple[int, int]] = []
        for i, pid in enumerate(pids):
            if pid is None or type(pid) is not str:
                continue
            if pid == cids[i]:
                return None
            ph = hash(pid)
            trace = ths[i]
            parent = opened.get(ph)
            if parent is not None:
                po = parent[0]
            else:
                if pos is None:
                    pos = dict(zip(hs, range(len(hs)), strict=True))
                j = pos.get(ph)
                if j is not None:  # a call of the run
                    if j >= i:
                        return None  # read later: it adopts this one (one by one)
                    ptrace = ths[j]
                    if ptrace != trace and ptrace != _NO_TRACE and trace != _NO_TRACE:
                        return None
                    continue
                got = recent.get(ph)
                if got is None and frozen:
                    got = index.get(ph)
                if got is None:
                    waits.append((i, ph))
                    continue
                po = got
            pflags = flags[po]
            if pflags & _STARTED:
                ptrace = traces[po]
                if ptrace != trace and ptrace != _NO_TRACE and trace != _NO_TRACE:
                    return None
            elif not pflags & _REFUSED:
                waits.append((i, ph))
        return waits

    def feed_block(
        self,
        path: str,
        base: int,
        entries: list[Entry],
        out: list[Diagnostic],
        pairs: Packed | None = None,
    ) -> None:
        """A block of `validate`'s entries and packed pairs (see `tracecli.check.entries`
        and `tracecli.check.pairpack`), whose lines are relative to `base`.

        The same diagnostics as feeding each record in turn (a test holds that), at a
        fraction of the cost: this runs once per record in one process while the workers
        share the rest. The pairs (a start and its end, all ids new in the block) are
        taken in bulk first when none of their ids is known yet, else they go through
        the exact path one by one with the other entries, in line order. The block
        compared the times within a record and within a pair already (its entries carry
        None there). Diagnostics of the block's records (`Diag` entries) go to `out` too.
        """
        todo: Sequence[Entry | Pair] = entries
        if pairs and not self._bulk_pairs(path, base, pairs, out):
            merged: list[Entry | Pair] = [*unpack_pairs(pairs), *entries]
            merged.sort(key=_line)  # stable: what shares a line keeps its order
            todo = merged
        self._pack(path, 0)  # the file takes its place in the order `finish` sorts by
        for e in todo:
            if type(e) is Facts:
                _, kind, cid, tid, pid, started, ended = e  # by name, in Facts' order
                self.feed_call(path, base + e.line, kind, cid, tid, pid, started, ended, out)
            elif type(e) is Pair:  # only when the block's pairs could not go in bulk
                line, cid, tid, pid, started, ended, end_line, _ = e  # in Pair's order
                self.feed_pair(
                    path, base + line, cid, tid, pid, started, ended, base + end_line, out
                )
            elif type(e) is Diag:
                out.append(Diagnostic(path, base + e.line, e.field, e.code, e.severity, e.message))
            elif type(e) is Refused:
                self.note_refused_id(path, base + e.line, e.call_id)
            else:
                assert type(e) is TimeOrder
                start = f"start at {path}:{base + e.start_line}" if e.start_line else None
                out.append(time_order(path, base + e.line, "ended_at", e.ended, e.started, start))
        out.extend(self.drain())

    def _bulk_pairs(self, path: str, base: int, pairs: Packed, out: list[Diagnostic]) -> bool:
        """Register a block's pairs at once; False (and nothing done) if an id is known.

        Their order among the block's other records does not matter then: a parent
        read later is adopted later, as it would have been (see `_parent`)."""
        lines, end_lines, hs, ths, phs = (
            pairs.lines, pairs.end_lines, pairs.id_hashes, pairs.trace_hashes, pairs.parent_hashes
        )  # fmt: skip
        n = len(hs)
        index = self._index
        recent = index.recent
        fresh = set(hs)
        if len(fresh) != n or not recent.keys().isdisjoint(fresh) or index.any_of(hs):
            return False
        traces = self._traces
        o0 = len(traces)
        traces.extend(ths)
        first = self._pack(path, 0) + base  # file bits | line: the line bits are free
        # (an array extended by a list sets each item through a format string, ~0.6k
        # instructions an item; struct parses its format once)
        self._locs.frombytes(pack(f"{n}q", *map(first.__add__, lines)))
        self._flags.extend(bytes((_STARTED | _ENDED,)) * n)
        recent.update(zip(hs, range(o0, o0 + n), strict=True))
        index.freeze_if_full()
        self.calls += n
        for i, started, ended in pairs.bad:
            where = f"start at {path}:{base + lines[i]}"
            out.append(time_order(path, base + end_lines[i], "ended_at", ended, started, where))
        opened = self._open
        flags = self._flags
        for i, ph in enumerate(phs):
            if ph == NO_PARENT:
                continue
            parent = opened.get(ph)
            po = parent[0] if parent is not None else recent.get(ph)
            if po is not None and flags[po] & _STARTED:
                ptrace = traces[po]
                if ptrace != ths[i] and ptrace != _NO_TRACE:
                    out.append(self._mismatch(o0 + i, po))
            else:
                self._parent_hash(o0 + i, ths[i], ph, out)
        orphans = self._orphans
        if orphans:
            for h in fresh & orphans.keys():
                o = recent[h]
                self._adopt(o, traces[o], orphans.pop(h))
        return True
