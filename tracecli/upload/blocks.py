"""Per-record work of `upload`, shaped so it can run in other processes.

Reading, validating and encoding a record costs most of an upload's CPU and needs no shared
state, so on big inputs it runs on blocks of lines in a process pool (the reading process
keeps what must see every record: the cross-record checks, pairing, chunking and sending).
A block comes back as entries, in input order, with lines relative to the block: `Ok` (a
valid record, encoded), `Bad` (a record with errors), `FreeplayRecord` (not a Weave call)
and `Pair` (a start and its end from the same block, merged by `pair_up`: the reading
process then checks and sends them as one, without keeping the start open).

The entries' types live in `block_entries` (named tuples built positionally, re-exported
here for the modules that read them).

Small inputs, YAML and a single core run the very same `prepare` in the reading process,
so both paths give the same answer by construction.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Sequence
from operator import itemgetter
from typing import Any, cast

from orjson import JSONEncodeError
from orjson import dumps as _orjson_dumps
from orjson import loads as _orjson_loads

from tracecli.check.facts import call_facts, refused_id
from tracecli.check.records import parse_record
from tracecli.diagnostics import Location, Severity
from tracecli.inputs.blocks import block_lines, range_error, read_range
from tracecli.inputs.same_file import FileKey, Replaced
from tracecli.inputs.streams import BOM
from tracecli.schema.fastcheck import Facts
from tracecli.schema.rules import check_project_id
from tracecli.schema.typed import CHECKS, SHAPES, decode_line
from tracecli.upload.block_entries import Bad as Bad
from tracecli.upload.block_entries import Diag4, Warning3
from tracecli.upload.block_entries import Entry as Entry
from tracecli.upload.block_entries import FreeplayRecord as FreeplayRecord
from tracecli.upload.block_entries import Ok as Ok
from tracecli.upload.block_entries import Pair as Pair
from tracecli.upload.block_entries import new_ok as _ok
from tracecli.upload.block_entries import new_pair as _pair
from tracecli.upload.fastpath import fast_body
from tracecli.upload.lines import (
    block_may_ref,
    body_prefix,
    broken_id,
    decoded,
    internal_error,
    plain_refs,
)
from tracecli.upload.pair_cols import Prepared as Prepared
from tracecli.upload.typed_blocks import DECODER_SHAPES, call_body, typed_block
from tracecli.upload.typed_lines import LONG_LINE, shape_of, too_deep
from tracecli.wire.encode import (
    END_KEYS,
    EncodeError,
    cut_end,
    dumps,
    split_end,
    without_computed,
)
from tracecli.wire.wideints import may_hold_wide_ints


def prepare(
    value: Any, line: int, path: str, project: str | None, out: list[Entry], fast: bool = True
) -> None:
    """Append the entry for one decoded record; never raises for any value. `fast=False`
    when the record may hold a string the server reads as a reference (which only the full
    check looks for: see `tracecli.upload.lines.plain_refs`)."""
    orig_project = None
    if project is not None:
        body = body_prefix(value)[0]
        if body is not None and body.get("project_id") != project:
            orig_project = body.get("project_id")
            body["project_id"] = project
    try:
        quick = fast_body(value) if fast and type(value) is dict else None
        if quick is not None:
            facts, shape, data = quick
            kind = facts.kind
            warnings: tuple[Warning3, ...] = ()
            if shape == "flat":
                del data["type"]  # the value is ours; a rejection rebuilds the record
        else:
            parsed = parse_record(Location(path, line), value)
            rec = parsed.record
            if rec is None:
                _restore(value, orig_project)
                diags = tuple((d.field, d.code, d.severity, d.message) for d in parsed.diagnostics)
                out.append(Bad(line, value, diags, refused_id(value)[1]))
                return
            if rec.kind == "freeplay":
                out.append(FreeplayRecord(line, value))
                return
            facts = call_facts(rec)
            kind, shape, data = rec.kind, rec.shape, rec.data
            warnings = tuple((d.field, d.code, d.message) for d in parsed.diagnostics)
        out.append(_encoded(facts, kind, shape, data, line, orig_project, warnings))
    except EncodeError as exc:
        _restore(value, orig_project)
        diag = ("(record)", "encode", Severity.ERROR, str(exc))
        out.append(Bad(line, value, (diag,), None))
    except Exception as exc:  # a bug of ours must not hide the other records
        _restore(value, orig_project)
        msg = internal_error(exc)
        out.append(Bad(line, value, (("(record)", "internal", Severity.ERROR, msg),), None))


def _encoded(
    facts: Facts,
    kind: str,
    shape: str,
    data: dict[str, Any],
    line: int,
    orig_project: str | None,
    warnings: tuple[Warning3, ...],
) -> Ok:
    """The `Ok` of a valid record: its body encoded (the call body `data`, changed in
    place where what is sent differs: a dumped call's computed summary dropped). May
    raise EncodeError."""
    _, _, cid, tid, pid, started, ended = facts  # by name, in Facts' order
    if kind == "start":
        try:  # `dumps` inlined: its own call is a tenth of this path's Python
            body_b = _orjson_dumps(data)
        except JSONEncodeError:
            body_b = dumps(data)
        tail_b, flag = b"", not END_KEYS.isdisjoint(data)
    else:
        s = data.get("summary")
        if type(s) is dict and "weave" in s:  # a dumped call: see without_computed
            data["summary"] = without_computed(s)
        if kind == "end":
            body_b, tail_b = split_end(data)
            flag = len(data) > 2 + len(END_KEYS.intersection(data))
        else:
            body_b, tail_b, flag = dumps(data), b"", False
    return _ok((
        line, kind, shape, cid, data["project_id"], tid, pid, started, ended,
        body_b, tail_b, flag, orig_project, warnings,
    ))  # fmt: skip


def _typed_encoded(
    facts: Facts, shape: str, data: dict[str, Any], line: int, orig: str | None = None
) -> Ok:
    """`_encoded` for a record the typed decoder vouched for, whose keys are its Struct's:
    a start's hold no end field (no flag), and an end that holds only its own fields
    besides project_id and id, in that order, is cut from its one encoding with no check
    left to make (what `split_end` would do). Anything else: `_encoded`. `orig`: the
    project_id as read when --project replaced it in `data` (kept for the rejected file)."""
    kind = facts.kind
    if kind == "start":
        _, _, cid, tid, pid, started, ended = facts
        # (fails only for a --project orjson cannot write: the caller then goes orjson's way)
        body = _orjson_dumps(data)
        return _ok((
            line, kind, shape, cid, data["project_id"], tid, pid, started, ended,
            body, b"", False, orig, (),
        ))  # fmt: skip
    if kind == "end" and _NOT_OWN_END.isdisjoint(data):
        s = data.get("summary")
        if not (type(s) is dict and "weave" in s):
            _, _, cid, tid, pid, started, ended = facts
            project = data["project_id"]
            keys = iter(data)  # project_id and id first: one encoding, cut
            if next(keys, None) == "project_id" and next(keys, None) == "id":
                cut = cut_end(_orjson_dumps(data), project, cid)
            else:  # (keys sorted: id, then project_id amid the end's fields)
                cut = own_end_split(data)
            if cut is not None:
                return _ok((
                    line, kind, shape, cid, project, tid, pid, started, ended,
                    cut[0], cut[1], False, orig, (),
                ))  # fmt: skip
    return _encoded(facts, kind, shape, data, line, orig, ())


def own_end_split(data: dict[str, Any]) -> tuple[bytes, bytes]:
    """`split_end` of an end whose keys are project_id, id and END_FIELDS only, in any
    order, encoded by orjson (the typed decoder vouched for every value): project_id and
    id taken out of `data` in their order, then each part encoded once. `data` is the
    caller's, left holding the END_FIELDS."""
    head = {k: data.pop(k) for k in [k for k in data if k not in END_KEYS]}
    return _orjson_dumps(head), _orjson_dumps(data)


# what an end's Struct may hold besides project_id, id and END_FIELDS
_NOT_OWN_END = frozenset({"started_at", "trace_id", "is_eval"})


def _restore(value: Any, orig_project: str | None) -> None:
    """Put back the project_id as read (the rejected file holds records as read)."""
    if orig_project is not None:
        body = body_prefix(value)[0]
        if body is not None:
            body["project_id"] = orig_project


def prepare_lines(data: bytes, path: str, at_start: bool, project: str | None) -> Prepared:
    """A block of whole JSONL lines → its lines, records and entries.

    A line the typed decoder vouches for (`schema.typed`; see `typed_blocks`) is checked
    in C and decoded by orjson only to be encoded, as the fast path's lines are (under
    --project, checked as read and sent with the project replaced, as `prepare` does);
    any other line goes `prepare_each`'s way (the same code).

    The cyclic garbage collector is paused meanwhile, as validate's blocks pause it:
    decoded JSON and the entries hold no cycles, and its passes over the young records
    cost ~7% of a block for nothing."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return _prepare_lines(data, path, at_start, project)
    finally:
        if paused:
            gc.enable()


def _prepare_lines(data: bytes, path: str, at_start: bool, project: str | None) -> Prepared:
    if project is not None and next(check_project_id(project), None) is not None:
        return prepare_each(data, path, at_start, project)  # every record refused: as before
    out: list[Entry] = []
    append = out.append
    records = 0
    lines = block_lines(data, at_start)
    refs, wide, translated = typed_block(data)
    openers = translated.count  # of a line's range: its "[" and "{" (see `typed_block`)
    at = 3 if at_start and data.startswith(BOM) else 0  # where line n begins in `data`
    decode: Any = SHAPES["flat"]  # the shape met last's decoder (files keep to one); None
    # after a record of no Weave shape (a Freeplay file), until orjson's way meets one again
    checks, shapes = CHECKS, DECODER_SHAPES
    loads, encoded = _orjson_loads, _typed_encoded
    n = 0
    for raw in lines:
        n += 1
        size = len(raw)
        here = at
        at += size + 1
        if (
            decode is not None
            and (size <= LONG_LINE or not too_deep(openers, here, size))
            and not (refs and not plain_refs(raw))
            and not (wide and may_hold_wide_ints(raw))
        ):
            try:
                record = decode_line(decode, raw)
                facts = checks[type(record)](record, n)
                if facts is not None:
                    shape = shapes[decode]
                    body = call_body(loads(raw), shape)
                    orig = None
                    if project is not None:  # --project: sent with it, refused as read
                        orig = body["project_id"]  # (a str: the decoder checked it)
                        if orig == project:
                            orig = None
                        else:
                            body["project_id"] = project
                    append(encoded(facts, shape, body, n, orig))
                    records += 1
                    continue
            except Exception:  # orjson's way below gives the real answer
                pass
        for _, raw_, value, extras in decoded([raw], raw):
            records += 1
            if type(value) is dict:
                named = shape_of(value)  # names the decoder of the lines after it
                decode = None if named is None else SHAPES[named]
            _prepare_one(raw_, n, value, extras, path, project, out, not refs)
    return Prepared(len(lines), records, pair_up(out))


def prepare_each(data: bytes, path: str, at_start: bool, project: str | None) -> Prepared:
    """`prepare_lines` without the typed decoder: every line read by orjson (`decoded`),
    checked by the fast path or the full check, and encoded."""
    out: list[Entry] = []
    records = 0
    no_refs = block_may_ref(data) is None
    lines = block_lines(data, at_start)
    for n, raw, value, extras in decoded(lines, data):
        records += 1
        _prepare_one(raw, n, value, extras, path, project, out, no_refs)
    return Prepared(len(lines), records, pair_up(out))


def _prepare_one(
    raw: bytes,
    n: int,
    value: Any,
    extras: list[Diag4],
    path: str,
    project: str | None,
    out: list[Entry],
    no_refs: bool,
) -> None:
    """The entry of one line as `lines.decoded` read it."""
    if not extras:
        prepare(value, n, path, project, out, no_refs or plain_refs(raw))
    elif any(x[2] is Severity.ERROR for x in extras):
        _bad_line(raw, n, tuple(extras), out)  # as read: it cannot be sent
    else:
        prepare(value, n, path, project, out, False)
        _add_warnings(out, extras)


def _add_warnings(out: list[Entry], extras: Sequence[Diag4]) -> None:
    """The line's own warnings (`lines.line_extras`) added to the entry `prepare` made
    for it; those on a field the schema refused are its error's, not a warning."""
    e = out[-1]
    if type(e) is Ok:
        more = tuple((f, c, m) for f, c, _sev, m in extras)
        out[-1] = e._replace(warnings=e.warnings + more)
    elif type(e) is Bad:
        bad = {d[0] for d in e.diags if d[2] is Severity.ERROR}
        out[-1] = e._replace(diags=e.diags + tuple(x for x in extras if x[0] not in bad))


def _bad_line(raw: bytes, line: int, diags: tuple[Diag4, ...], out: list[Entry]) -> None:
    """A refused line kept as its text (what the rejected file holds), with the call id
    it seems to carry, so the other half of that call is refused along with it."""
    text = raw.rstrip(b"\r").decode("utf-8", "replace")
    out.append(Bad(line, text, diags, broken_id(raw)))


def pair_up(entries: list[Entry]) -> list[Entry]:
    """Merge each start and its end into one "pair" entry when they share the block.

    Only for calls whose id occurs exactly twice here (any record, valid or not), as a
    start and then an end without warnings: anything the cross-record checks might judge
    differently (a duplicate, a refused record, an end before its start) stays separate.
    """
    # Each Ok's key built once and counted at C speed (Counter's loop). A refused id spoils
    # every project's call with that id, and so does a call of project "" (never valid:
    # kept as the one table of keys had it).
    keys = [(e[4], e[3]) if type(e) is Ok else None for e in entries]
    seen = Counter(keys)
    spoilt = {e.refused_id for e in entries if type(e) is Bad}
    if "" in set(map(itemgetter(0), filter(None, seen))):
        spoilt.update(cid for p, cid in filter(None, seen) if p == "")
    starts: dict[Any, tuple[int, Ok]] = {}
    out: list[Entry] = []
    rows = cast("list[Any]", entries)  # by index below: an Ok's key is not None
    for e, key in zip(rows, keys, strict=True):
        if key is not None and not e[13]:  # an Ok without warnings
            kind = e[1]
            if kind == "start":
                if seen[key] == 2 and key[1] not in spoilt:
                    starts[key] = (len(out), e)
            elif kind == "end" and starts:
                found = starts.pop(key, None)
                if found is not None:
                    # unpacked by name in Ok's order: one step, cheaper than 17 attributes
                    i, st = found
                    line, _, shape, cid, project, tid, pid, started, _, body, _, flag, orig, _ = st
                    end, _, e_shape, _, _, _, _, _, ended, e_body, tail, e_flag, e_orig, _ = e
                    out[i] = _pair((
                        line, cid, project, tid, pid, started, ended, end, shape, body, flag,
                        orig, e_shape, e_body, tail, e_flag, e_orig,
                    ))  # fmt: skip
                    continue
        out.append(e)
    return out


def prepare_range(
    path: str, offset: int, length: int, project: str | None, key: FileKey | None = None
) -> Prepared:
    """Read and prepare one byte range of a plain file (the pool's unit of work). Of the
    file `key` only: when the name holds another by now (rotated away), nothing is read
    (no line: the ranges after it read nothing either; the next run finds the file)."""
    try:
        data = read_range(path, offset, length, key)
    except Replaced:
        return Prepared(0, 0, [])
    except OSError as exc:
        diag = ("", "read-error", Severity.ERROR, range_error(exc))
        return Prepared(0, 0, [Bad(1, None, (diag,), None)])
    return prepare_lines(data, path, offset == 0, project)
