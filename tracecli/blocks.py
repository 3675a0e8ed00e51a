"""Per-record work of `validate`, shaped so it can run in another process.

`validate` checks each record on its own (shape, schema, server rules) and then across
records (`checks.CrossChecker`). The first part is nearly all of the cost and needs no
shared state, so it runs on blocks of lines in a process pool; what comes back is small:
one *entry* per record or problem, in input order, with line numbers relative to the block:

    (line, "start" | "end" | "complete" | "freeplay", id, trace_id, parent_id, started, ended)
    (line, "refused", id)                       a record that failed its schema
    (line, "diag", field, code, severity, message)

The serial path (small inputs, YAML, a single core) runs the very same `examine`, so both
paths give the same answer by construction.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from typing import IO, Any

import orjson

from tracecli.checks import call_facts, refused_id
from tracecli.diagnostics import Location, Severity
from tracecli.reader import BOM, json_error
from tracecli.records import parse_record
from tracecli.schema.fastcheck import (
    COMPLETE_KEYS,
    END_KEYS,
    FLAT_COMPLETE_KEYS,
    FLAT_END_KEYS,
    FLAT_START_KEYS,
    START_KEYS,
    complete_facts,
    end_facts,
    start_facts,
)

Entry = tuple[Any, ...]
_loads = orjson.loads
_JSONError = orjson.JSONDecodeError


def examine(value: Any, line: int, path: str, out: list[Entry], json: bool = False) -> None:
    """Append the entries for one decoded record; never raises for any value.

    `json`: the value was decoded from JSON (all its keys are strings).
    """
    try:
        if type(value) is dict and _fast(value, line, out, json):
            return
        _slow(value, line, path, out)
    except Exception as exc:  # a bug of ours must not hide the other records
        out.append((line, "diag", "(record)", "internal", Severity.ERROR, _internal(exc)))


def _fast(v: dict[str, Any], line: int, out: list[Entry], json: bool) -> bool:
    """The happy path of the Weave shapes, without building a Record (see fastcheck)."""
    t = v.get("type")
    if t is not None:
        if t == "start":
            facts = start_facts(v, FLAT_START_KEYS, json)
        elif t == "end":
            facts = end_facts(v, FLAT_END_KEYS, json)
        elif t == "call":
            facts = complete_facts(v, FLAT_COMPLETE_KEYS, json)
        else:
            return False
    elif "req" in v:
        t = v.get("mode")
        req = v["req"]
        if len(v) != 2 or type(req) is not dict or len(req) != 1 or t not in _HALVES:
            return False
        body = req.get(t)
        facts = _HALVES[t](body, _KEYS[t], json) if type(body) is dict else None
    elif len(v) == 1:
        t = "start" if "start" in v else "end"
        body = v.get(t)
        facts = _HALVES[t](body, _KEYS[t], json) if type(body) is dict else None
    else:
        facts = complete_facts(v, COMPLETE_KEYS, json)
    if facts is None:
        return False
    out.append((line, *facts))
    return True


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


def check_lines(data: bytes, path: str, at_start: bool) -> tuple[int, int, list[Entry]]:
    """Check a block of whole JSONL lines: (lines, records, entries).

    `at_start`: the block begins the file (a UTF-8 BOM may open it).
    """
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the block ends with a newline: no line after it
    if at_start and lines and lines[0].startswith(BOM):
        lines[0] = lines[0][3:]
    out: list[Entry] = []
    records = 0
    n = 0
    for raw in lines:
        n += 1
        try:
            value = _loads(raw)
        except _JSONError as exc:
            if raw.strip():
                out.append((n, "diag", "", "json", Severity.ERROR, json_error(raw, exc)))
                broken_id(raw, n, out)
            continue
        records += 1
        examine(value, n, path, out, True)
    return n, records, pair_up(out)


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


def pair_up(entries: list[Entry]) -> list[Entry]:
    """Merge each start and its end into one "pair" entry when they share the block.

    Only for ids that occur exactly twice here, as a start and then an end, so nothing
    that the cross-record checks would say differently is hidden (a duplicate, a refused
    record, an end before its start all keep their separate entries):

        (line, "pair", id, trace_id, parent_id, started, ended, end_line)
    """
    seen: dict[Any, int] = {}
    for e in entries:
        kind = e[1]
        if kind != "diag":
            cid = e[2]
            seen[cid] = seen.get(cid, 0) + 1
    starts: dict[Any, int] = {}
    out: list[Entry] = []
    for e in entries:
        kind = e[1]
        if kind == "start":
            if seen[e[2]] == 2:
                starts[e[2]] = len(out)
        elif kind == "end":
            i = starts.pop(e[2], None)
            if i is not None:
                s = out[i]
                out[i] = (s[0], "pair", s[2], s[3], s[4], s[5], e[6], e[0])
                continue
        out.append(e)
    return out


def check_range(path: str, offset: int, length: int) -> tuple[int, int, list[Entry]]:
    """Read and check one byte range of a plain file (the pool's unit of work)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(length)
    except OSError as exc:
        msg = f"file cannot be read from here on: {exc.strerror or exc}"
        return 0, 0, [(1, "diag", "", "read-error", Severity.ERROR, msg)]
    return check_lines(data, path, offset == 0)


def plan_ranges(path: str, size: int, block: int) -> list[tuple[int, int]]:
    """Split a file into ranges of about `block` bytes that end at a line end."""
    ranges = []
    with open(path, "rb") as f:
        start = 0
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
