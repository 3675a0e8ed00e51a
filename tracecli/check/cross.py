"""Rules across records and files: duplicate ids, time order, trees, unpaired halves.

One `CrossChecker` sees every valid record of a run in input order (a start in one file
pairs with its end in another), for `validate` and for `upload` alike, so both judge a
file the same way. `feed` answers what is known as soon as a record arrives, about that
record; what can only be known later (a child read before its parent, an end with no
start, a start with no end) comes from `drain` and `finish`.

Memory: a file of a million calls must validate in well under 150 MB, so nothing here
keeps id strings. Every distinct id gets an *ordinal*; per ordinal we keep its trace's
64-bit hash, where it was first seen and a flags byte (17 bytes), and `HashIndex` (see
its docstring for the collision trade-off) maps the id's hash to its ordinal in 12 more.
Only what pairing must hold is kept beyond that: calls still open (until their end), ends
whose start has not been read yet, and children whose parent has not been read yet.
"""

from __future__ import annotations

from array import array
from typing import Any

from tracecli.check.cross_pairs import _ENDED, _NO_TRACE, _REFUSED, _STARTED, PairFeeds
from tracecli.check.facts import call_facts, ended_before, refused_id, time_order
from tracecli.check.idindex import HashIndex
from tracecli.check.passes import EarlierPasses
from tracecli.check.records import Record
from tracecli.diagnostics import Diagnostic, Location, Severity
from tracecli.packing import BitFields

# where a call was first read, in one slot of an array("q"): its file (index) and line
_WHERE = BitFields(bits=63, line=40, path=23)
_unpack_where = _WHERE.unpack


class CrossChecker(PairFeeds):
    """Cross-record rules for one run of `validate` or `upload`, in input order.

    `strict` makes an end without its start an error (the other warnings stay warnings
    here; `validate --strict` promotes every warning itself). `passes`: what the earlier
    passes of `upload --follow` read (see check/passes.py), for a pass of one.
    """

    def __init__(self, strict: bool = False, passes: EarlierPasses | None = None) -> None:
        self.strict = strict
        self.passes = passes
        self._traces = array("q")  # ordinal → hash of its trace id (0 when unknown)
        self._locs = array("q")  # ordinal → where it was first seen (`_WHERE`)
        self._flags = bytearray()
        self._index = HashIndex()
        self._paths: list[str] = []
        self._path_ids: dict[str, int] = {}
        self._open: dict[int, tuple[int, float | None]] = {}  # hash → (ordinal, started)
        self._early_ends: dict[int, tuple[int, float | None]] = {}  # ends before starts
        self._orphans: dict[int, list[int]] = {}  # parent hash → children's ordinals
        self._deferred: list[Diagnostic] = []
        self._last_path: str | None = None
        self._last_base = 0
        self.calls = 0  # distinct calls: completed, paired or still open (and Freeplay)

    # -- where -------------------------------------------------------------------------
    def _pack(self, path: str, line: int) -> int:
        """`_WHERE` of a line of `path`: the file's bits (packed, checked, once per file)
        with the line added (a line needs 40 bits only past a trillion lines)."""
        if path is self._last_path:
            return self._last_base | line
        i = self._path_ids.get(path)
        if i is None:
            i = self._path_ids[path] = len(self._paths)
            self._paths.append(path)
        self._last_path = path
        self._last_base = _WHERE.pack(0, i)
        return self._last_base | line

    def _where(self, packed: int) -> tuple[str, int]:
        line, i = _unpack_where(packed)
        return self._paths[i], line

    def _at(self, ordinal: int) -> str:
        path, line = self._where(self._locs[ordinal])
        return f"{path}:{line}"

    def _new(self, h: int, trace: int, packed: int, flags: int) -> int:
        o = len(self._traces)
        self._traces.append(trace)
        self._locs.append(packed)
        self._flags.append(flags)
        self._index.add(h, o)
        return o

    # -- input -------------------------------------------------------------------------
    def feed(self, rec: Record) -> list[Diagnostic]:
        """Diagnostics about `rec` that are known now (it must have passed its schema)."""
        out: list[Diagnostic] = []
        _, kind, cid, tid, pid, started, ended = call_facts(rec)  # by name, in Facts' order
        self.feed_call(rec.loc.path, rec.loc.line, kind, cid, tid, pid, started, ended, out)
        return out

    def note_refused(self, loc: Location, value: Any) -> None:
        """A record failed its schema: its id must not cause follow-on warnings."""
        _kind, cid = refused_id(value)
        if cid is not None:
            self.note_refused_id(loc.path, loc.line, cid)

    def note_refused_id(self, path: str, line: int, cid: str) -> None:
        h = hash(cid)
        o = self._index.get(h)
        if o is None:
            self._new(h, _NO_TRACE, self._pack(path, line), _REFUSED)
        else:
            self._flags[o] |= _REFUSED

    def feed_call(
        self,
        path: str,
        line: int,
        kind: str,
        cid: Any,
        tid: Any,
        pid: Any,
        started: float | None,
        ended: float | None,
        out: list[Diagnostic],
    ) -> None:
        """The facts of one valid record (see `call_facts`); diagnostics go to `out`."""
        if kind == "freeplay":
            self.calls += 1
            return
        if type(cid) is not str:
            return  # only a start may lack an id, and tracecli refuses that already
        h = hash(cid)
        if kind == "end":
            self._end(path, line, h, cid, started, ended, out)
            return
        trace = hash(tid) if type(tid) is str else _NO_TRACE
        if started is not None and ended is not None and ended_before(ended, started):
            out.append(time_order(path, line, "ended_at", ended, started, None))
        packed = self._pack(path, line)
        o = self._index.get(h)
        if o is None:
            o = self._new(h, trace, packed, _STARTED | (_ENDED if kind == "complete" else 0))
        else:
            flags = self._flags[o]
            if flags & _STARTED:
                out.append(self._dup_start(path, line, cid, o))
                return
            # seen before only as an early end and/or in a refused record
            if kind == "complete" and flags & _ENDED and not flags & _REFUSED:
                out.append(self._dup_end(path, line, cid, o))
                return
            early = self._early_ends.pop(h, None)
            if early is not None and kind == "start":
                early_ended = early[1]
                if (
                    started is not None
                    and early_ended is not None
                    and ended_before(early_ended, started)
                ):
                    out.append(
                        time_order(
                            path, line, "started_at", early_ended, started, f"end at {self._at(o)}"
                        )
                    )
                kind = "paired"
            self._traces[o] = trace
            self._locs[o] = packed
            self._flags[o] = flags | _STARTED | (_ENDED if kind == "complete" else 0)
        self.calls += 1
        if kind == "start":
            self._open[h] = (o, started)
        self._link(path, line, o, trace, h, pid, out)

    def _end(
        self,
        path: str,
        line: int,
        h: int,
        cid: str,
        own_started: float | None,
        ended: float | None,
        out: list[Diagnostic],
    ) -> None:
        if own_started is not None and ended is not None and ended_before(ended, own_started):
            out.append(time_order(path, line, "ended_at", ended, own_started, None))
        opened = self._open.pop(h, None)
        if opened is not None:
            o, started = opened
            self._flags[o] |= _ENDED
            if started is not None and ended is not None and ended_before(ended, started):
                out.append(
                    time_order(path, line, "ended_at", ended, started, f"start at {self._at(o)}")
                )
            return
        known = self._index.get(h)
        if known is None:
            self._early_ends[h] = (self._new(h, _NO_TRACE, self._pack(path, line), _ENDED), ended)
            return
        o = known
        flags = self._flags[o]
        if flags & _ENDED:  # (only a valid end sets it: two ends, whatever the start was)
            out.append(self._dup_end(path, line, cid, o))
        else:
            self._flags[o] = flags | _ENDED

    def _dup_start(self, path: str, line: int, cid: str, o: int) -> Diagnostic:
        """A second call with this id. Ids are keyed alone, not by project: the hosted
        server would keep two projects' calls apart, but weave's SQLite server (a primary
        key on the id) and `upload --project` (one project for all) would not, so an id
        must be unique across all the inputs; the message says so when the files differ,
        where that is what the user most likely did (the same traces in two projects)."""
        other_path, other_line = self._where(self._locs[o])
        msg = f"call id {cid} is already used by the call at {other_path}:{other_line}"
        if other_path != path:
            msg += (
                "; call ids must be unique across all the inputs, even between projects "
                "(weave's SQLite server keys calls by id alone)"
            )
        return Diagnostic(path, line, "id", "duplicate-id", Severity.ERROR, msg)

    def _dup_end(self, path: str, line: int, cid: str, o: int) -> Diagnostic:
        return Diagnostic(
            path,
            line,
            "id",
            "duplicate-id",
            Severity.ERROR,
            f"call id {cid} already has an end (at {self._at(o)})",
        )

    def _link(
        self, path: str, line: int, o: int, trace: int, h: int, pid: Any, out: list[Diagnostic]
    ) -> None:
        """A call just registered meets its family: its parent (known, or waited for) and
        the children read before it."""
        if pid is not None and type(pid) is str:
            self._parent(path, line, o, trace, pid, out)
        if self._orphans:
            children = self._orphans.pop(h, None)
            if children is not None:
                self._adopt(o, trace, children)

    def _parent(
        self, path: str, line: int, o: int, trace: int, pid: str, out: list[Diagnostic]
    ) -> None:
        self._parent_hash(o, trace, hash(pid), out)

    def _parent_hash(self, o: int, trace: int, ph: int, out: list[Diagnostic]) -> None:
        opened = self._open.get(ph)
        if opened is not None:
            po: int | None = opened[0]
        else:
            po = self._index.recent.get(ph)
            if po is None:
                po = self._index.get(ph)
        if po is not None:
            pflags = self._flags[po]
            if pflags & _STARTED:
                ptrace = self._traces[po]
                if ptrace != trace and ptrace != _NO_TRACE and trace != _NO_TRACE:
                    out.append(self._mismatch(o, po))
                return
            if pflags & _REFUSED:
                return
        self._orphans.setdefault(ph, []).append(o)

    def _adopt(self, po: int, ptrace: int, children: list[int]) -> None:
        for c in children:
            ctrace = self._traces[c]
            if ctrace != ptrace and ctrace != _NO_TRACE and ptrace != _NO_TRACE:
                self._deferred.append(self._mismatch(c, po))

    def _mismatch(self, child: int, parent: int) -> Diagnostic:
        what = f"differs from the trace_id of its parent call (at {self._at(parent)})"
        return self._about(child, "trace_id", "trace-mismatch", Severity.ERROR, what)

    def _about(self, o: int, field: str, code: str, severity: Severity, what: str) -> Diagnostic:
        """A diagnostic at the place call `o` was first read."""
        path, line = self._where(self._locs[o])
        return Diagnostic(path, line, field, code, severity, what)

    # -- output ------------------------------------------------------------------------
    @property
    def deferred(self) -> list[Diagnostic]:
        """What `drain` would give now: a caller that drains after every record tests
        this (always the same list) rather than making an empty list each time."""
        return self._deferred

    def drain(self) -> list[Diagnostic]:
        """Diagnostics found since the last call about records fed earlier."""
        out = self._deferred[:]
        self._deferred.clear()
        return out

    def finish(self) -> list[Diagnostic]:
        """Everything left once all inputs are read: unpaired halves, missing parents."""
        out = self.drain()
        flags = self._flags
        passes = self.passes
        if passes is not None:  # what this pass read is in the inputs of the next ones
            passes.read(h for h, o in self._index.items() if flags[o] & (_REFUSED | _STARTED))
        end_sev = Severity.ERROR if self.strict else Severity.WARNING
        for h, (o, _) in self._early_ends.items():
            if not flags[o] & (_REFUSED | _STARTED):
                if passes is not None and passes.knows(h):
                    continue  # its start was read by an earlier pass
                what = "the start of this call is not in the inputs"
                out.append(self._about(o, "id", "end-without-start", end_sev, what))
        for o, _ in self._open.values():
            if not flags[o] & _REFUSED:
                what = "call has no end in the inputs: it stays running"
                out.append(self._about(o, "id", "running-call", Severity.WARNING, what))
        for ph, children in self._orphans.items():
            po = self._index.get(ph)
            if po is not None and flags[po] & (_REFUSED | _STARTED):
                continue
            if passes is not None and passes.knows(ph):
                continue  # read by an earlier pass
            what = "the parent call is not in the inputs"
            about = [
                self._about(c, "parent_id", "missing-parent", Severity.WARNING, what)
                for c in children
            ]
            if passes is None:
                out.extend(about)
            else:  # said by a pass after `passes.wait` unless the parent comes (`due`)
                passes.hold(ph, about)
        self._early_ends.clear()
        self._open.clear()
        self._orphans.clear()
        out.sort(key=lambda d: (self._path_ids.get(d.path, -1), d.line))
        return out
