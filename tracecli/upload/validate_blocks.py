"""Per-record work of `validate`, shaped so it can run in another process.

`validate` checks each record on its own (shape, schema, server rules) and then across
records (`checks.CrossChecker`). The first part is nearly all of the cost and needs no
shared state, so it runs on blocks of lines in a process pool; what comes back is small:
one *entry* per record or problem, in input order, with line numbers relative to the block
(`tracecli.check.entries`: `Facts` of a valid record, `Refused` for a record that failed
its schema, `Diag` for a problem of one record, `TimeOrder` for a call that ended before
it started), and the block's start/end pairs, packed (`Checked`).

Times within a record or a pair are compared here; only what crosses blocks is left to
the cross-record checks, as epoch seconds.

The serial path (small inputs, YAML, a single core) runs the very same `examine`, so both
paths give the same answer by construction.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable
from typing import Any

from tracecli.check.entries import (
    Diag,
    Entry,
    Refused,
    diag_entry,
    from_rows,
    refused_entry,
    time_entry,
    to_rows,
)
from tracecli.check.facts import call_facts, ended_before, refused_id, timestamp
from tracecli.check.pairpack import Packed, pack_halves
from tracecli.check.records import parse_record
from tracecli.diagnostics import Location, Severity
from tracecli.inputs.blocks import block_lines, range_error, read_range
from tracecli.inputs.streams import BOM, STDIN_NAME
from tracecli.schema.fastcheck import Facts, new_facts, same_layout
from tracecli.schema.typed import CHECKS, SHAPES, TYPE_KEY, UNTAGGED
from tracecli.upload.fastpath import fast_facts
from tracecli.upload.lines import NOT_JSON, broken_id, decoded, internal_error, plain_refs
from tracecli.upload.typed_lines import (
    LONG_LINE,
    NEAR_LIMIT,
    BlockBytes,
    block_bytes,
    line_clear,
    line_too_deep,
    shape_of,
)
from tracecli.upload.validate_bulk import BODIES, bulk_lines
from tracecli.upload.validate_calls import bulk_calls
from tracecli.wire.encode import SERVER_MAX_BYTES, EncodeError, MiB, dumps

Half = tuple[Facts, str, int, bool]  # a pair as the block's loop keeps it: see `pack_halves`
_REQUEST_OVERHEAD = 64  # the request around one call body: {"batch": [{"mode": ...}]}
_NEAR_LIMIT = NEAR_LIMIT  # raw lines longer than this are measured (orjson's path)


def examine(value: Any, line: int, path: str, out: list[Entry], json: bool = False) -> None:
    """Append the entries for one decoded record; never raises for any value.

    `json`: the value was decoded from JSON (all its keys are strings) and its line holds
    no `"weave` (no string the server would read as a reference: the fast path does not
    look inside values). Otherwise the full check runs.
    """
    try:
        if json and type(value) is dict and _fast(value, line, out, json):
            return
        _slow(value, line, path, out)
    except Exception as exc:  # a bug of ours must not hide the other records
        out.append(diag_entry(line, "(record)", "internal", Severity.ERROR, internal_error(exc)))


def _fast(v: dict[str, Any], line: int, out: list[Entry], json: bool) -> bool:
    """The happy path of the Weave shapes, without building a Record (see fastcheck)."""
    facts = fast_facts(v, line, json)
    if facts is None:
        return False
    out.append(facts)
    return True


def _slow(value: Any, line: int, path: str, out: list[Entry]) -> None:
    parsed = parse_record(Location(path, line), value)
    for d in parsed.diagnostics:
        out.append(diag_entry(line, d.field, d.code, d.severity, d.message))
    rec = parsed.record
    if rec is not None:
        out.append(call_facts(rec, line))
    else:
        _kind, cid = refused_id(value)
        if cid is not None:
            out.append(refused_entry(line, cid))


class Checked:
    """A block's outcome: its lines, its records, its entries and its packed pairs.

    Pickled (from a worker back to the checking process) as plain tuples and a type code
    per entry (`check.entries.to_rows`), rebuilt at C speed: each named tuple pickled as
    itself would cost a Python call both ways.
    """

    __slots__ = ("entries", "lines", "pairs", "records")

    def __init__(self, lines: int, records: int, entries: list[Entry], pairs: Packed | None):
        self.lines = lines
        self.records = records
        self.entries = entries
        self.pairs = pairs

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.lines, self.records, *to_rows(self.entries), self.pairs))


def _rebuild(
    lines: int, records: int, codes: bytes, rows: list[tuple[Any, ...]], pairs: Packed | None
) -> Checked:
    return Checked(lines, records, from_rows(codes, rows), pairs)


def check_lines(data: bytes, path: str, at_start: bool) -> Checked:
    """Check a block of whole JSONL lines: its lines, records, entries and pairs.

    `at_start`: the block begins the file (a UTF-8 BOM may open it). A start and its end
    in the same block become one pair (see `_unpair` for when they may not), sent apart
    from the other entries, packed (`pack_halves`), so the checking process can take them
    in bulk (`pairpack.Pair`s: the start's line, id, trace and parent, both times, the
    end's line). That is most records of a real file, at a fraction of the cost of two entries. The
    times of a pair are compared here: `ended_first` says the end is before the start.

    The cyclic garbage collector is paused meanwhile: decoded JSON holds no cycles, and
    its passes over the young records cost ~7% of the block for nothing.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        return _check_lines(data, path, at_start)
    finally:
        if paused:
            gc.enable()


def _check_lines(data: bytes, path: str, at_start: bool) -> Checked:
    seen = block_bytes(data)
    flat = SHAPES["flat"]
    if _bulk.skip:
        _bulk.skip -= 1
    elif flat is not None:
        body = BODIES.get(data[3:10] if at_start and data.startswith(BOM) else data[:7])
        got = bulk_lines(data, seen, at_start, _NEAR_LIMIT, body or flat)
        if got is not None:
            n, out, pairs = got
            entries = [
                e if type(e) is not tuple else new_facts(Facts, e) for e in filter(None, out)
            ]
            return Checked(n, n, _settle_times(entries), pairs)
        calls = None if body else bulk_calls(data, seen, at_start, _NEAR_LIMIT, SHAPES["complete"])
        if calls is not None:  # (entries settled: completed calls, each in order)
            return Checked(calls[0], calls[0], calls[1], None)
        _bulk.skip = _BULK_SKIP
    lines = block_lines(data, at_start)
    at = 3 if at_start and data.startswith(BOM) else 0  # where the first line starts
    return _general_lines(data, lines, seen, at, path, at_start)


class _Bulk:
    """Whether to try `bulk_lines` on the next block: after a block it gave up on, not for
    the next few (a file with a problem in every block would pay for two loops)."""

    skip = 0


_bulk = _Bulk()
_BULK_SKIP = 4


def _general_lines(
    data: bytes, lines: list[bytes], seen: BlockBytes, at: int, path: str, at_start: bool
) -> Checked:
    out: list[Entry | None] = []
    append = out.append
    pairs: list[Half] = []  # see `pack_halves`
    add_pair = pairs.append
    ids: list[Any] = []  # every id an entry carries, to count them
    note = ids.append
    opened: dict[Any, int] = {}  # id -> index in out of its start, still unpaired
    clear = not (seen.refs or seen.text or seen.numbers)
    # the typed decoder of the shape met last (files keep to one); None after a record of
    # no Weave shape (a Freeplay file), until the orjson path meets one again
    decode: Any = SHAPES["flat"]
    flat = decode  # (whose lines may hold their "type" late: see `schema.typed.UNTAGGED`)
    untagged = UNTAGGED.get
    checks = CHECKS
    records = 0
    n = 0
    for raw in lines:
        n += 1
        f = None
        size = len(raw)
        here = at
        at += size + 1
        if (
            decode is not None
            and (size <= LONG_LINE or not line_too_deep(seen, n, here, size, _NEAR_LIMIT))
            and (clear or line_clear(raw, n, seen))
        ):
            try:
                if decode is flat and raw[2] != 0x74:  # (a first key not "t...": late)
                    t = raw.rfind(TYPE_KEY) + 7
                    record = untagged(raw[t : t + 3], flat)(raw)
                else:
                    record = decode(raw)
                f = checks[type(record)](record, n)
            except Exception:  # msgspec's refusal (or a bug here): orjson's path decides
                f = None
        if f is None:
            f, value, counted = _orjson_line(n, raw, path, at_start, seen, out, note)
            records += counted
            if type(value) is dict:
                shape = shape_of(value)
                decode = None if shape is None else SHAPES[shape]
            if f is None:
                continue
        else:
            records += 1
        cid = f.call_id
        note(cid)
        kind = f.kind
        if kind == "start":
            opened[cid] = len(out)
        elif kind == "end" and f.started is None:
            i = opened.pop(cid, None)
            if i is not None:
                s = out[i]
                assert type(s) is Facts  # (a start is taken out once: popped from opened)
                out[i] = None
                st, en = s.started, f.ended  # both canonical time strings (the fast path's)
                if len(st) == len(en) and st[-1] == "Z" == en[-1] and st[10] == en[10]:
                    bad = en < st  # the usual case, inline: a call costs more than this
                else:
                    bad = en < st if same_layout(st, en) else ended_before(en, st)
                add_pair((s, en, n, bad))
                continue
        append(f)
    # every id of a pair occurs twice; if anything else shares an id, count properly
    n = len(lines)
    if pairs and len(set(ids)) != len(ids) - len(pairs):
        entries, pairs = _unpair(out, pairs, ids)
        return Checked(n, records, entries, pack_halves(pairs))
    return Checked(n, records, _settle_times(out), pack_halves(pairs))


def _orjson_line(
    n: int,
    raw: bytes,
    path: str,
    at_start: bool,
    seen: BlockBytes,
    out: list[Entry | None],
    note: Callable[[Any], None],
) -> tuple[Facts | None, Any, int]:
    """A line the typed decoder did not vouch for, read by orjson (the exact reader when
    orjson refuses it): (the fast path's facts, for the caller to pair, else None with
    the line's entries appended here; the value; 1 if the line is a record, 0 if it is blank:
    a line that is not JSON is a record read and refused, as `upload` counts it)."""
    for _, _, value, extras in decoded([raw], raw):  # (searched for wide integers alone)
        counted = 1
        if value is NOT_JSON:
            if n == 1 and at_start and path == STDIN_NAME:
                fld, code, sev, msg = extras[0]
                msg += " (stdin is read as JSONL: --input-format yaml reads YAML)"
                extras = [(fld, code, sev, msg)]
        elif len(raw) > _NEAR_LIMIT:
            too_large(value, n, out)  # type: ignore[arg-type]
        if extras:
            if any(e[2] is Severity.ERROR for e in extras):
                out.extend(diag_entry(n, *e) for e in extras)
                _refuse_broken(raw, n, out)
                return None, value, counted
            k = len(out)
            examine(value, n, path, out, False)  # type: ignore[arg-type]
            refused = set()
            for e in out[k:]:
                if type(e) is Diag:
                    if e.severity is Severity.ERROR:
                        refused.add(e.field)
                elif type(e) is Facts or type(e) is Refused:
                    note(e.call_id)
            out.extend(diag_entry(n, *e) for e in extras if e[0] not in refused)
            return None, value, counted
        # a string the server reads as a reference starts with "weave: the full check
        # looks inside values for it, the fast one does not (one search per block)
        plain = not seen.refs or plain_refs(raw)
        try:
            f = fast_facts(value, n, True) if plain and type(value) is dict else None
        except Exception:
            f = None  # the full check below says what is wrong (or reports our bug)
        if f is None:
            k = len(out)
            examine(value, n, path, out, plain)  # type: ignore[arg-type]
            for e in out[k:]:
                if type(e) is Facts or type(e) is Refused:
                    note(e.call_id)
        return f, value, counted
    return None, None, 0  # a blank line


def _settle_times(out: list[Entry | None]) -> list[Entry]:
    """The entries left after pairing, with their times settled.

    A bad order within one record becomes a `TimeOrder` (start_line 0), compared here.
    What is left to compare across blocks (a start not yet ended, an end whose start is
    elsewhere) goes on as epoch seconds; the rest carries no times.
    """
    final: list[Entry] = []
    add = final.append
    for e in out:
        if type(e) is not Facts:
            if e is not None:  # (None: a start that became part of a pair)
                add(e)
            continue
        line, kind, cid, tid, pid, started, ended = e
        if kind == "start":
            if type(started) is str:
                e = new_facts(Facts, (line, kind, cid, tid, pid, timestamp(started), None))
            add(e)
        elif kind == "end":
            if started is not None and ended_before(ended, started):
                add(time_entry(line, 0, started, ended))
            ended = ended if type(ended) is not str else timestamp(ended)
            add(new_facts(Facts, (line, kind, cid, tid, pid, None, ended)))
        elif kind == "complete":
            add(new_facts(Facts, (line, kind, cid, tid, pid, None, None)))
            if ended_before(ended, started):
                add(time_entry(line, 0, started, ended))
        else:
            add(e)
    return final


def _unpair(
    out: list[Entry | None], pairs: list[Half], ids: list[Any]
) -> tuple[list[Entry], list[Half]]:
    """Split the pairs whose id occurs more than twice in the block (a duplicate, a
    refused record with that id): the cross-record checks must see every occurrence in
    order to say what is wrong with which."""
    counts = Counter(ids)
    kept: list[Half] = []
    back: list[Entry | None] = [e for e in out if e is not None]
    for p in pairs:
        start, ended, end_line, _ = p
        if counts[start.call_id] > 2:
            back.append(start)
            back.append(Facts(end_line, "end", start.call_id, None, None, None, ended))
        else:
            kept.append(p)
    back.sort(key=_line)  # stable: what shares a line keeps its order
    return _settle_times(back), kept


def too_large(value: Any, line: int, out: list[Entry]) -> None:
    """An error for a record the server cannot take: its request alone would be over
    the 32 MiB a Weave server accepts (a 413), and a call cannot be split. Measured as
    upload sends it (compact JSON); only called for lines near the limit. Freeplay
    records are left alone: their server's limit is not known."""
    if type(value) is dict and ("messages" in value or "session_id" in value):
        return
    try:
        size = len(dumps(value)) + _REQUEST_OVERHEAD
    except EncodeError:
        return  # not encodable: the schema check says so
    if size > SERVER_MAX_BYTES:
        msg = (
            f"is {size / MiB:.1f} MiB as JSON; a Weave server refuses a request over "
            f"{SERVER_MAX_BYTES // MiB} MiB, and one call cannot be split"
        )
        out.append(diag_entry(line, "(record)", "too-large", Severity.ERROR, msg))


def _line(e: Entry | None) -> int:
    assert e is not None
    return e.line


def _refuse_broken(raw: bytes, line: int, out: list[Entry | None]) -> None:
    cid = broken_id(raw)
    if cid is not None:
        out.append(refused_entry(line, cid))


def check_range(path: str, offset: int, length: int) -> Checked:
    """Read and check one byte range of a plain file (the pool's unit of work)."""
    try:
        data = read_range(path, offset, length)
    except OSError as exc:
        return Checked(
            0, 0, [diag_entry(1, "", "read-error", Severity.ERROR, range_error(exc))], None
        )
    return check_lines(data, path, offset == 0)
