"""Per-record work of `upload`, shaped so it can run in other processes.

Reading, validating and encoding a record costs most of an upload's CPU and needs no shared
state, so on big inputs it runs on blocks of lines in a process pool (the reading process
keeps what must see every record: the cross-record checks, pairing, chunking and sending).
A block comes back as entries, in input order, with lines relative to the block:

    ("ok", line, kind, shape, id, project, trace_id, parent_id, started, ended,
     body, tail, flag, orig_project, warnings)
        a valid record, encoded: kind "start" (body; flag: it holds an end field), "end"
        (body: its fields other than END_FIELDS, tail: its END_FIELDS; flag: it has fields
        a completed call drops) or "complete" (body); warnings as (field, code, message)
    ("bad", line, original, diagnostics, refused id)
        a record with errors: the value read (or the text of a line that is not JSON),
        its diagnostics as (field, code, severity, message), the call id if one is seen
    ("freeplay", line, value)
        a Freeplay completion (not a Weave call)
    ("pair", line, id, project, trace_id, parent_id, started, ended, end_line,
     start_shape, start_body, start_flag, start_orig, end_shape, end_body, end_tail,
     end_flag, end_orig)
        a start and its end in the same block, both valid with no warning, merged
        (`pair_up`): the reading process then checks and sends them as one, without
        keeping the start open

Small inputs, YAML and a single core run the very same `prepare` in the reading process,
so both paths give the same answer by construction.
"""

from __future__ import annotations

from typing import Any

import orjson

from tracecli.check.cross import call_facts, refused_id
from tracecli.check.records import parse_record
from tracecli.diagnostics import Location, Severity
from tracecli.inputs.reader import BOM, json_error
from tracecli.schema.fastcheck import (
    COMPLETE_KEYS,
    FLAT_COMPLETE_KEYS,
    FLAT_END_KEYS,
    FLAT_START_KEYS,
    START_KEYS,
    complete_facts,
    end_facts,
    start_facts,
)
from tracecli.schema.fastcheck import END_KEYS as END_SCHEMA_KEYS
from tracecli.schema.weave import END_FIELDS
from tracecli.upload.validate_blocks import (
    broken_id,
    find_ref,
    line_extras,
    plain_refs,
    read_exact,
    widened,
)
from tracecli.wire.encode import END_KEYS, EncodeError, dumps, split_end, without_computed
from tracecli.wire.wideints import DEEP_BRACKETS, may_hold_wide_ints, may_nest_deep

Entry = tuple[Any, ...]
_loads = orjson.loads
_JSONError = orjson.JSONDecodeError


def fast_body(v: dict[str, Any]) -> tuple[Any, str, dict[str, Any]] | None:
    """(facts, shape, call body) of a record the fast path finds certainly valid, else None
    (then `parse_record` gives the real answer). The shapes as `records.parse_record`
    detects them; a flat record's body still holds its "type"."""
    t = v.get("type")
    if t is not None:
        if t == "start":
            return _with(start_facts(v, FLAT_START_KEYS, True), "flat", v)
        if t == "end":
            return _with(end_facts(v, FLAT_END_KEYS, True), "flat", v)
        if t == "call":
            return _with(complete_facts(v, FLAT_COMPLETE_KEYS, True), "flat", v)
        return None
    if "req" in v:
        t = v.get("mode")
        req = v["req"]
        if len(v) != 2 or type(req) is not dict or len(req) != 1:
            return None
        body = req.get(t)
        if type(body) is not dict:
            return None
        if t == "start":
            return _with(start_facts(body, START_KEYS, True), "batch", body)
        if t == "end":
            return _with(end_facts(body, END_SCHEMA_KEYS, True), "batch", body)
        return None
    if len(v) == 1:
        if "start" in v:
            body = v["start"]
            facts = start_facts(body, START_KEYS, True) if type(body) is dict else None
        elif "end" in v:
            body = v["end"]
            facts = end_facts(body, END_SCHEMA_KEYS, True) if type(body) is dict else None
        else:
            return None
        return _with(facts, "request", body)
    if "messages" in v or "session_id" in v:
        return None
    if "op_name" in v and "ended_at" in v:
        return _with(complete_facts(v, COMPLETE_KEYS, True), "complete", v)
    return None


def _with(facts: Any, shape: str, body: dict[str, Any]) -> tuple[Any, str, dict[str, Any]] | None:
    return None if facts is None else (facts, shape, body)


def call_body(value: Any) -> dict[str, Any] | None:
    """The call object inside a record of any Weave shape (where project_id lives)."""
    if not isinstance(value, dict):
        return None
    if "type" in value:
        return value
    if "mode" in value and "req" in value:
        req = value.get("req")
        mode = value.get("mode")
        body = req.get(mode) if isinstance(req, dict) and isinstance(mode, str) else None
        return body if isinstance(body, dict) else None
    if len(value) == 1 and ("start" in value or "end" in value):
        body = value.get("start", value.get("end"))
        return body if isinstance(body, dict) else None
    if "op_name" in value and "ended_at" in value:
        return value
    return None


def prepare(
    value: Any, line: int, path: str, project: str | None, out: list[Entry], fast: bool = True
) -> None:
    """Append the entry for one decoded record; never raises for any value. `fast=False`
    when the record may hold a string the server reads as a reference (which only the full
    check looks for: see `tracecli.upload.validate_blocks`)."""
    orig_project = None
    if project is not None:
        body = call_body(value)
        if body is not None and body.get("project_id") != project:
            orig_project = body.get("project_id")
            body["project_id"] = project
    try:
        quick = fast_body(value) if fast and type(value) is dict else None
        if quick is not None:
            facts, shape, data = quick
            facts = facts[-6:]  # (kind, id, trace_id, parent_id, started, ended), any prefix
            kind = facts[0]
            warnings: tuple[Any, ...] = ()
            if shape == "flat":
                del data["type"]  # the value is ours; a rejection rebuilds the record
        else:
            parsed = parse_record(Location(path, line), value)
            rec = parsed.record
            if rec is None:
                _restore(value, orig_project)
                diags = tuple((d.field, d.code, d.severity, d.message) for d in parsed.diagnostics)
                out.append((line, "bad", value, diags, refused_id(value)[1]))
                return
            if rec.kind == "freeplay":
                out.append((line, "freeplay", value))
                return
            facts = call_facts(rec)
            kind, shape, data = rec.kind, rec.shape, rec.data
            warnings = tuple((d.field, d.code, d.message) for d in parsed.diagnostics)
        cid, tid, pid, started, ended = facts[1], facts[2], facts[3], facts[4], facts[5]
        if kind != "start":
            s = data.get("summary")
            if type(s) is dict and "weave" in s:  # a dumped call: see without_computed
                data["summary"] = without_computed(s)
        if kind == "start":
            body_b, tail_b, flag = dumps(data), b"", not END_KEYS.isdisjoint(data)
        elif kind == "end":
            body_b, tail_b = split_end(data)
            flag = len(data) > 2 + sum(1 for k in END_FIELDS if k in data)
        else:
            body_b, tail_b, flag = dumps(data), b"", False
        out.append(
            (
                line, "ok", kind, shape, cid, data["project_id"], tid, pid, started, ended,
                body_b, tail_b, flag, orig_project, warnings,
            )
        )  # fmt: skip
    except EncodeError as exc:
        _restore(value, orig_project)
        diag = ("(record)", "encode", Severity.ERROR, str(exc))
        out.append((line, "bad", value, (diag,), None))
    except Exception as exc:  # a bug of ours must not hide the other records
        _restore(value, orig_project)
        msg = (
            f"tracecli could not check this record ({type(exc).__name__}: {exc}); please report it"
        )
        out.append((line, "bad", value, (("(record)", "internal", Severity.ERROR, msg),), None))


def _restore(value: Any, orig_project: str | None) -> None:
    """Put back the project_id as read (the rejected file holds records as read)."""
    if orig_project is not None:
        body = call_body(value)
        if body is not None:
            body["project_id"] = orig_project


def prepare_lines(
    data: bytes, path: str, at_start: bool, project: str | None
) -> tuple[int, int, list[Entry]]:
    """A block of whole JSONL lines → (lines, records, entries)."""
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the block ends with a newline: no line after it
    if at_start and lines and lines[0].startswith(BOM):
        lines[0] = lines[0][3:]
    out: list[Entry] = []
    records = 0
    n = 0
    no_refs = find_ref(data) is None
    wide = may_hold_wide_ints(data)
    for raw in lines:
        n += 1
        exact = False
        try:
            value = _loads(raw)
        except _JSONError as exc:
            if not raw.strip():
                continue
            records += 1
            value = read_exact(raw)
            if value is None:
                _bad_line(raw, n, (("", "json", Severity.ERROR, json_error(raw, exc)),), out)
                continue
            exact = True
        else:
            records += 1
        if wide and not exact and may_hold_wide_ints(raw):
            v = widened(value, raw)  # orjson read an integer beyond 64 bits as a float
            if v is not None:
                value, exact = v, True
        if exact or (
            # as many brackets as the nesting needs, opening and closing: lines are seldom
            # this long (a check at C speed, ~2% of the loop when they are)
            len(raw) > 2 * DEEP_BRACKETS and may_nest_deep(raw)
        ):
            extras = line_extras(value, raw, exact)
        else:
            extras = []
        if not extras:
            prepare(value, n, path, project, out, no_refs or plain_refs(raw))
        elif any(e[2] is Severity.ERROR for e in extras):
            _bad_line(raw, n, tuple(extras), out)  # as read: it cannot be sent
        else:
            prepare(value, n, path, project, out, False)
            _add_warnings(out, extras)
    return n, records, pair_up(out)


def _add_warnings(out: list[Entry], extras: Any) -> None:
    """The line's own warnings (`blocks.line_extras`) added to the entry `prepare` made
    for it; those on a field the schema refused are its error's, not a warning."""
    e = out[-1]
    if e[1] == "ok":
        out[-1] = (*e[:14], (*e[14], *((f, c, m) for f, c, _sev, m in extras)))
    elif e[1] == "bad":
        bad = {d[0] for d in e[3] if d[2] is Severity.ERROR}
        out[-1] = (*e[:3], (*e[3], *(x for x in extras if x[0] not in bad)), *e[4:])


def _bad_line(raw: bytes, line: int, diags: tuple[Any, ...], out: list[Entry]) -> None:
    """A refused line kept as its text (what the rejected file holds), with the call id
    it seems to carry, so the other half of that call is refused along with it."""
    found: list[Entry] = []
    broken_id(raw, line, found)
    text = raw.rstrip(b"\r").decode("utf-8", "replace")
    out.append((line, "bad", text, diags, found[0][2] if found else None))


def pair_up(entries: list[Entry]) -> list[Entry]:
    """Merge each start and its end into one "pair" entry when they share the block.

    Only for calls whose id occurs exactly twice here (any record, valid or not), as a
    start and then an end without warnings: anything the cross-record checks might judge
    differently (a duplicate, a refused record, an end before its start) stays separate.
    """
    seen: dict[Any, int] = {}
    for e in entries:
        tag = e[1]
        if tag == "ok":
            key = (e[5], e[4])
        elif tag == "bad":
            key = e[4]
        else:
            continue
        seen[key] = seen.get(key, 0) + 1
        if tag == "bad":  # a refused id spoils every project's call with that id
            seen[("", key)] = 3
    starts: dict[Any, int] = {}
    out: list[Entry] = []
    for e in entries:
        if e[1] == "ok" and not e[14]:
            kind = e[2]
            key = (e[5], e[4])
            if kind == "start" and seen[key] == 2 and ("", e[4]) not in seen:
                starts[key] = len(out)
            elif kind == "end":
                i = starts.pop(key, None)
                if i is not None:
                    s = out[i]
                    out[i] = (
                        s[0], "pair", s[4], s[5], s[6], s[7], s[8], e[9], e[0],
                        s[3], s[10], s[12], s[13], e[3], e[10], e[11], e[12], e[13],
                    )  # fmt: skip
                    continue
        out.append(e)
    return out


def prepare_range(
    path: str, offset: int, length: int, project: str | None
) -> tuple[int, int, list[Entry]]:
    """Read and prepare one byte range of a plain file (the pool's unit of work)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(length)
    except OSError as exc:
        msg = f"file cannot be read from here on: {exc.strerror or exc}"
        return 0, 0, [(1, "bad", None, (("", "read-error", Severity.ERROR, msg),), None)]
    return prepare_lines(data, path, offset == 0, project)
