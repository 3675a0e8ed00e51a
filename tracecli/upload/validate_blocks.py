"""Per-record work of `validate`, shaped so it can run in another process.

`validate` checks each record on its own (shape, schema, server rules) and then across
records (`checks.CrossChecker`). The first part is nearly all of the cost and needs no
shared state, so it runs on blocks of lines in a process pool; what comes back is small:
one *entry* per record or problem, in input order, with line numbers relative to the block:

    (line, "start" | "end" | "complete" | "freeplay", id, trace_id, parent_id, started, ended)
    (line, "refused", id)                       a record that failed its schema
    (line, "diag", field, code, severity, message)
    (end_line, "time", start_line or 0, started, ended)   ended before started

Times within a record or a pair are compared here; only what crosses blocks is left to
the cross-record checks, as epoch seconds.

The serial path (small inputs, YAML, a single core) runs the very same `examine`, so both
paths give the same answer by construction.
"""

from __future__ import annotations

import gc
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import IO, Any

import orjson

from tracecli.check.cross import call_facts, ended_before, refused_id, timestamp
from tracecli.check.pairpack import Packed, pack_pairs
from tracecli.check.records import parse_record
from tracecli.diagnostics import Location, Severity
from tracecli.inputs.reader import BOM, STDIN_NAME, json_error
from tracecli.schema.fastcheck import (
    COMPLETE_KEYS,
    END_KEYS,
    FLAT_COMPLETE_KEYS,
    FLAT_END_KEYS,
    FLAT_START_KEYS,
    START_KEYS,
    complete_facts,
    end_facts,
    same_layout,
    start_facts,
)
from tracecli.wire.encode import SERVER_MAX_BYTES, EncodeError, MiB, dumps
from tracecli.wire.wideints import (
    DEEP_BRACKETS,
    deep_fields,
    deep_message,
    exact_loads,
    is_wide,
    may_hold_wide_ints,
    may_nest_deep,
    odd_values,
)

Entry = tuple[Any, ...]
_REQUEST_OVERHEAD = 64  # the request around one call body: {"batch": [{"mode": ...}]}
_NEAR_LIMIT = SERVER_MAX_BYTES - (1 << 20)  # raw lines longer than this are measured
REF_START = b'"weave'  # how a JSON string that may be a weave:/// reference begins
find_ref = re.compile(re.escape(REF_START)).search  # over a block: a third faster than `in`
_good_refs = re.compile(rb'"weave:///[^/"\\]+/[^/"\\]+/[^"\\]').findall


def plain_refs(raw: bytes) -> bool:
    """Whether every string of the line that begins like a reference is one the server can
    parse (`weave:///entity/project/...`), so the fast check, which does not look inside
    values, answers as the full one would. What the SDK writes (op refs, object refs in
    inputs) stays on the fast path; anything else that merely looks like one does not."""
    return raw.count(REF_START) == len(_good_refs(raw))


_loads = orjson.loads
_JSONError = orjson.JSONDecodeError
Extra = tuple[str, str, Severity, str]  # (field, code, severity, message)


def read_exact(raw: bytes) -> Any:
    """A line orjson refused, read as weave's server reads it (NaN, lone surrogates), or
    None when it is not JSON even so (then orjson's error is the one to report)."""
    try:
        return exact_loads(raw)
    except ValueError:  # UnicodeDecodeError and json's errors included
        return None


def widened(value: Any, raw: bytes) -> Any:
    """`value` read again with its integers exact, when the line holds one beyond what
    orjson keeps (it read it as a float); else None. Only asked of lines with 19 digits in
    a row."""
    exact = read_exact(raw)
    if exact is None:
        return None
    stack = [exact]
    while stack:
        v = stack.pop()
        if type(v) is dict:
            stack.extend(v.values())
        elif type(v) is list:
            stack.extend(v)
        elif is_wide(v):
            return exact
    return None


def body_prefix(value: Any) -> tuple[dict[str, Any] | None, str]:
    """The call body inside a record of any Weave shape, and the path to it."""
    if type(value) is not dict:
        return None, ""
    if "type" in value or ("op_name" in value and "ended_at" in value):
        return value, ""
    if "mode" in value and "req" in value:
        req, mode = value.get("req"), value.get("mode")
        body = req.get(mode) if type(req) is dict and type(mode) is str else None
        return (body, f"req.{mode}.") if type(body) is dict else (None, "")
    if len(value) == 1 and ("start" in value or "end" in value):
        mode = "start" if "start" in value else "end"
        body = value[mode]
        return (body, f"{mode}.") if type(body) is dict else (None, "")
    return None, ""


def line_extras(value: Any, raw: bytes, exact: bool) -> list[Extra]:
    """What a line holds that weave's server stores other than as written, or cannot read
    back: non-finite numbers and lone surrogates (only in a line orjson refused: `exact`),
    nesting past what the server reads back (only in a line with brackets enough). Errors
    for nesting the server fails to store. Empty for nearly every line, at little cost."""
    out: list[Extra] = []
    body, prefix = body_prefix(value)
    if body is None:
        return out  # not a Weave call (a Freeplay record): its own checks judge it
    if exact:
        out.extend((o.field, o.code, Severity.WARNING, o.message) for o in odd_values(value))
    if may_nest_deep(raw):
        for d in deep_fields(body):
            sev = Severity.WARNING if d.stored else Severity.ERROR
            out.append((prefix + d.field, "depth", sev, deep_message(d)))
    return out


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
        out.append((line, "diag", "(record)", "internal", Severity.ERROR, _internal(exc)))


def _fast(v: dict[str, Any], line: int, out: list[Entry], json: bool) -> bool:
    """The happy path of the Weave shapes, without building a Record (see fastcheck)."""
    facts = _fast_facts(v, line, json)
    if facts is None:
        return False
    out.append(facts)
    return True


def _fast_facts(v: dict[str, Any], line: int, json: bool) -> Entry | None:
    t = v.get("type")
    if t is not None:
        if t == "start":
            return start_facts(v, FLAT_START_KEYS, json, line)
        if t == "end":
            return end_facts(v, FLAT_END_KEYS, json, line)
        if t == "call":
            return complete_facts(v, FLAT_COMPLETE_KEYS, json, line)
        return None
    if "req" in v:
        t = v.get("mode")
        req = v["req"]
        if len(v) != 2 or type(req) is not dict or len(req) != 1 or t not in _HALVES:
            return None
        body = req.get(t)
        return _HALVES[t](body, _KEYS[t], json, line) if type(body) is dict else None
    if len(v) == 1:
        t = "start" if "start" in v else "end"
        body = v.get(t)
        return _HALVES[t](body, _KEYS[t], json, line) if type(body) is dict else None
    return complete_facts(v, COMPLETE_KEYS, json, line)


_HALVES = {"start": start_facts, "end": end_facts}
_KEYS = {"start": START_KEYS, "end": END_KEYS}


def _slow(value: Any, line: int, path: str, out: list[Entry]) -> None:
    parsed = parse_record(Location(path, line), value)
    for d in parsed.diagnostics:
        out.append((line, "diag", d.field, d.code, d.severity, d.message))
    rec = parsed.record
    if rec is not None:
        out.append((line, *call_facts(rec)))
    else:
        _kind, cid = refused_id(value)
        if cid is not None:
            out.append((line, "refused", cid))


def _internal(exc: BaseException) -> str:
    return f"tracecli could not check this record ({type(exc).__name__}: {exc}); please report it"


Result = tuple[int, int, list[Entry], Packed | None]


def check_lines(data: bytes, path: str, at_start: bool) -> Result:
    """Check a block of whole JSONL lines: (lines, records, entries, pairs).

    `at_start`: the block begins the file (a UTF-8 BOM may open it). A start and its end
    in the same block become one pair (see `_unpair` for when they may not), sent apart
    from the other entries, packed (`pack_pairs`), so the checking process can take them
    in bulk:

        (line, id, trace_id, parent_id, started, ended, end_line, ended_first)

    That is most records of a real file, at a fraction of the cost of two entries. The
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


def _check_lines(data: bytes, path: str, at_start: bool) -> Result:
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the block ends with a newline: no line after it
    if at_start and lines and lines[0].startswith(BOM):
        lines[0] = lines[0][3:]
    out: list[Entry | None] = []
    append = out.append
    pairs: list[Entry] = []
    add_pair = pairs.append
    ids: list[Any] = []  # every id an entry carries, to count them
    note = ids.append
    opened: dict[Any, int] = {}  # id -> index in out of its start, still unpaired
    loads, fast = _loads, _fast_facts
    no_refs = find_ref(data) is None
    wide = may_hold_wide_ints(data)
    records = 0
    n = 0
    for raw in lines:
        n += 1
        exact = False
        try:
            value = loads(raw)
        except _JSONError as exc:
            if not raw.strip():
                continue
            value = read_exact(raw)
            if value is None:
                msg = json_error(raw, exc)
                if n == 1 and at_start and path == STDIN_NAME:
                    msg += " (stdin is read as JSONL: --input-format yaml reads YAML)"
                append((n, "diag", "", "json", Severity.ERROR, msg))
                broken_id(raw, n, out)  # type: ignore[arg-type]
                continue
            exact = True
        records += 1
        if wide and not exact and may_hold_wide_ints(raw):
            v = widened(value, raw)
            if v is not None:
                value, exact = v, True
        if len(raw) > _NEAR_LIMIT:
            too_large(value, n, out)  # type: ignore[arg-type]
        if exact or (
            # as many brackets as the nesting needs, opening and closing: lines are seldom
            # this long (a check at C speed, ~2% of the loop when they are)
            len(raw) > 2 * DEEP_BRACKETS and may_nest_deep(raw)
        ):
            extras = line_extras(value, raw, exact)
        else:
            extras = ()
        if extras:
            if any(e[2] is Severity.ERROR for e in extras):
                out.extend((n, "diag", *e) for e in extras)
                broken_id(raw, n, out)  # type: ignore[arg-type]
                continue
            k = len(out)
            examine(value, n, path, out, False)  # type: ignore[arg-type]
            bad = set()
            for e in out[k:]:
                if e is not None and e[1] != "diag":
                    note(e[2])
                elif e is not None and e[4] is Severity.ERROR:
                    bad.add(e[2])
            out.extend((n, "diag", *e) for e in extras if e[0] not in bad)
            continue
        # a string the server reads as a reference starts with "weave: the full check
        # looks inside values for it, the fast one does not (one search per block)
        plain = no_refs or plain_refs(raw)
        try:
            f = fast(value, n, True) if plain and type(value) is dict else None
        except Exception:
            f = None  # the full check below says what is wrong (or reports our bug)
        if f is None:
            k = len(out)
            examine(value, n, path, out, plain)  # type: ignore[arg-type]
            for e in out[k:]:
                if e is not None and e[1] != "diag":
                    note(e[2])
            continue
        cid = f[2]
        note(cid)
        kind = f[1]
        if kind == "start":
            opened[cid] = len(out)
        elif kind == "end" and f[5] is None:
            i = opened.pop(cid, None)
            if i is not None:
                s = out[i]
                out[i] = None
                st, en = s[5], f[6]  # both canonical time strings (the fast path's)
                if len(st) == len(en) and st[-1] == "Z" == en[-1] and st[10] == en[10]:
                    bad = en < st  # the usual case, inline: a call costs more than this
                else:
                    bad = en < st if same_layout(st, en) else ended_before(en, st)
                add_pair((s[0], cid, s[3], s[4], st, en, n, bad))
                continue
        append(f)
    # every id of a pair occurs twice; if anything else shares an id, count properly
    if pairs and len(set(ids)) != len(ids) - len(pairs):
        entries, pairs = _unpair(out, pairs, ids)
        return n, records, entries, pack_pairs(pairs)
    return n, records, _settle_times(out), pack_pairs(pairs)


def _settle_times(out: list[Entry | None]) -> list[Entry]:
    """The entries left after pairing, with their times settled.

    A bad order within one record becomes a "time" entry (the line, "time", 0, started,
    ended), compared here. What is left to compare across blocks (a start not yet ended,
    an end whose start is elsewhere) goes on as epoch seconds; the rest carries no times.
    """
    final: list[Entry] = []
    add = final.append
    for e in out:
        if e is None:
            continue  # a start that became part of a pair
        kind = e[1]
        if kind == "start":
            add(e if type(e[5]) is not str else (*e[:5], timestamp(e[5]), None))
        elif kind == "end":
            if e[5] is not None and ended_before(e[6], e[5]):
                add((e[0], "time", 0, e[5], e[6]))
            add((*e[:5], None, e[6] if type(e[6]) is not str else timestamp(e[6])))
        elif kind == "complete":
            add((*e[:5], None, None))
            if ended_before(e[6], e[5]):
                add((e[0], "time", 0, e[5], e[6]))
        else:
            add(e)
    return final


def _unpair(
    out: list[Entry | None], pairs: list[Entry], ids: list[Any]
) -> tuple[list[Entry], list[Entry]]:
    """Split the pairs whose id occurs more than twice in the block (a duplicate, a
    refused record with that id): the cross-record checks must see every occurrence in
    order to say what is wrong with which."""
    counts = Counter(ids)
    kept: list[Entry] = []
    back: list[Entry | None] = [e for e in out if e is not None]
    for p in pairs:
        if counts[p[1]] > 2:
            back.append((p[0], "start", p[1], p[2], p[3], p[4], None))
            back.append((p[6], "end", p[1], None, None, None, p[5]))
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
        out.append((line, "diag", "(record)", "too-large", Severity.ERROR, msg))


def _line(e: Entry) -> int:
    return int(e[0])


_ID_IN_TEXT = re.compile(
    rb'"id"\s*:\s*"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16})"'
)


def broken_id(raw: bytes, line: int, out: list[Entry]) -> None:
    """The call id in a line that is not JSON (a truncated record, a stray comma), if any.

    Marked as refused so that the other half of the call does not also get a warning
    ("running call", "end without start") for what is one problem. The first `"id"`
    holding a call id is taken; a wrong pick only spares some other call a warning.
    """
    m = _ID_IN_TEXT.search(raw)
    if m is not None:
        out.append((line, "refused", m.group(1).decode("ascii")))


def check_range(path: str, offset: int, length: int) -> Result:
    """Read and check one byte range of a plain file (the pool's unit of work)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(length)
    except OSError as exc:
        msg = f"file cannot be read from here on: {exc.strerror or exc}"
        return 0, 0, [(1, "diag", "", "read-error", Severity.ERROR, msg)], None
    return check_lines(data, path, offset == 0)


def plan_ranges(path: str, size: int, block: int, start: int = 0) -> list[tuple[int, int]]:
    """Split a file (from `start`, a line start) into ranges of about `block` bytes that
    end at a line end."""
    ranges = []
    with open(path, "rb") as f:
        while start < size:
            f.seek(min(start + block, size))
            if start + block < size:
                f.readline()
            end = min(f.tell(), size) if start + block < size else size
            ranges.append((start, end - start))
            start = end
    return ranges


def read_blocks(stream: IO[bytes], block: int) -> Iterator[bytes | Exception]:
    """Whole-line blocks of a stream (gzip, stdin), then the read error if one stops it.

    Line by line (C-speed `readline`), so the lines read before a truncated gzip's
    error are kept, as the serial reader keeps them.
    """
    buf: list[bytes] = []
    size = 0
    readline = stream.readline
    try:
        while True:
            line = readline()
            if not line:
                break
            buf.append(line)
            size += len(line)
            if size >= block:
                yield b"".join(buf)
                buf = []
                size = 0
    except (EOFError, OSError, zlib.error) as exc:
        if buf:
            yield b"".join(buf)
        yield exc
        return
    if buf:
        yield b"".join(buf)
