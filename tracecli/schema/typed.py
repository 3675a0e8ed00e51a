"""Typed decoding: a Weave record's JSON bytes straight to the fast path's facts.

`orjson.loads` builds every dict, list and string of a record, and the fast path
(`fastcheck`) then walks the few it looks at; most of a record's bytes (inputs, output,
attributes) are built only to be thrown away. `msgspec` decodes the bytes into typed
`Struct`s instead, checking types, lengths and ranges as it goes, in C, and keeps each
free-form field as its bytes (`msgspec.Raw`: validated as JSON, never built). What it
cannot say (ids, names and times in their canonical form) is checked here in Python with
the fast path's own caches and patterns, so the answer is the fast path's.

The Structs are declared from `fields.py`'s field lists, each field with the type the
fast path requires of it (`_TYPES`); unknown fields are refused, as the fast path refuses
unknown keys, and null is taken where the fast path takes it (as absent). One decoder per
shape of record (`SHAPES`: flat with a "type", a batch item, a request, a bare completed
call), as `check.records.parse_record` detects them.

The contract is the fast path's (held by tests/test_typed.py against `fast_facts` on the
same line read by orjson): `line_facts` gives facts only where orjson + `fast_facts` give
the same facts; it may say "don't know" (None, or an exception from msgspec) more often.
What msgspec reads other than orjson is left to the caller's byte checks
(`upload.typed_lines`): integers beyond 64 bits (read exactly here, as floats by
orjson), numbers beyond a double inside a free-form field (skipped here, refused by
orjson), bytes that are not UTF-8 inside one (skipped here, refused by orjson), strings
that look like references, nesting (by bracket counts). Everything else that orjson
refuses msgspec refuses too (NaN, lone surrogates, control characters, trailing data),
and both keep the last of duplicate keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Final, Literal, NamedTuple

import msgspec
from msgspec import NODEFAULT, UNSET, Meta, Raw, Struct, UnsetType, defstruct

from tracecli.schema.fastcheck import (
    _CACHE_MAX,
    Facts,
    _call_id_re,
    _minutes,
    _new_call_id,
    _new_op,
    _new_project,
    _new_run,
    _new_trace_id,
    _ok_call_ids,
    _ok_ops,
    _ok_projects,
    _ok_runs,
    _ok_trace_ids,
    _tail,
    _when,
    _when_slow,
    new_facts,
)
from tracecli.schema.fields import COMPLETED_FIELDS, ENDED_FIELDS, STARTED_FIELDS, USAGE_FIELDS
from tracecli.schema.rules import INT64_MAX, MAX_DISPLAY_NAME, STATUSES

__all__ = [
    "SHAPES",
    "TYPE_KEY",
    "UNTAGGED",
    "WHOLE_SHAPES",
    "DecodeError",
    "TypedCall",
    "body_of",
    "decode_line",
    "line_facts",
    "struct_facts",
    "typed_call",
]

DecodeError = msgspec.DecodeError  # msgspec's refusal (ValidationError is one)

# free-form JSON (an object for attributes, inputs and otel_dump: checked below)
_FREE = Raw
# an object whose keys are all skipped: what attributes, inputs and otel_dump must be,
# checked in C as msgspec skips it (it validates what it skips as a Raw value does); the
# Structs decoded whole (`_lossless`) keep these fields as `Raw`, checked in Python
_Object = defstruct("Object", [], gc=False)
# a count the server keeps in a 64-bit integer column
_STEP = Annotated[int, Meta(ge=0, le=INT64_MAX)] | None
_NAME = Annotated[str, Meta(min_length=1, max_length=MAX_DISPLAY_NAME)] | None
_OPT_STR = str | None

_Usage = defstruct(
    "Usage", [(k, int | None, None) for k in USAGE_FIELDS], gc=False, kw_only=True
)  # other keys of a model's counts are free (ignored)
_STATUS: Any = Literal[tuple(sorted(STATUSES))]  # the trace statuses, as a type
_Summary = defstruct(
    "Summary",
    [
        ("usage", dict[str, _Usage] | UnsetType, UNSET),  # type: ignore[valid-type]
        ("status_counts", dict[_STATUS, int] | UnsetType, UNSET),
    ],
    gc=False,
    kw_only=True,
)  # what the fast path checks of a summary; its other keys are free (ignored)

# field -> (type, default): NODEFAULT where the fast path requires a value
_TYPES: dict[str, tuple[Any, Any]] = {
    "project_id": (str, NODEFAULT),
    "id": (str, NODEFAULT),
    "op_name": (str, NODEFAULT),
    "display_name": (_NAME, None),
    "trace_id": (str, NODEFAULT),
    "parent_id": (_OPT_STR, None),
    "thread_id": (_OPT_STR, None),
    "turn_id": (_OPT_STR, None),
    "started_at": (str, NODEFAULT),
    "ended_at": (str, NODEFAULT),
    "attributes": (_Object, NODEFAULT),
    "inputs": (_Object, NODEFAULT),
    "otel_dump": (_Object | None | UnsetType, UNSET),
    "wb_user_id": (_OPT_STR, None),
    "wb_run_id": (_OPT_STR, None),
    "wb_run_step": (_STEP, None),
    "wb_run_step_end": (_STEP, None),
    "exception": (_OPT_STR, None),
    "output": (_FREE | UnsetType, UNSET),
    "summary": (_Summary, NODEFAULT),
    "is_eval": (bool | None, None),
}
# an end may carry its start's time, and (as the weave SDK writes them) trace_id, is_eval
_ON_END: dict[str, tuple[Any, Any]] = {
    "started_at": (_OPT_STR, None),
    "trace_id": (_OPT_STR, None),
}
_END_FIELDS = (*ENDED_FIELDS, "trace_id", "is_eval")


_OBJECTS = {
    "attributes": (_FREE, NODEFAULT),
    "inputs": (_FREE, NODEFAULT),
    "otel_dump": (_FREE | UnsetType, UNSET),
}


def _lossless(spec: tuple[Any, Any], field: str) -> tuple[Any, Any]:
    """A field's (type, default) for a Struct that loses nothing a body says: an absent
    field UNSET (not None, which a null reads as), the summary as its bytes."""
    if field == "summary":
        return Raw, NODEFAULT
    if field in _OBJECTS:  # kept as written (checked to be objects by the checks)
        return _OBJECTS[field]
    kind, default = spec
    return (kind | UnsetType, UNSET) if default is None else spec


def _struct(
    name: str,
    fields: tuple[str, ...],
    tag: str | None = None,
    lossless: bool = False,
    untagged: bool = False,
) -> type[Struct]:
    """A Struct of these fields, typed from `_TYPES` (an end's from `_ON_END` first).

    `untagged`: the tag is a field of its own (required, that one value) rather than
    msgspec's tag, so a record whose "type" is not its first key is decoded in one pass:
    a tagged union looks ahead for the tag first (see `UNTAGGED`)."""
    types = _ON_END if fields is _END_FIELDS else {}
    spec = [(f, types.get(f) or _TYPES[f]) for f in fields]
    own: list[Any] = [("type", Literal[tag])] if untagged else []  # (no default: required)
    spec = own + [(f, *(_lossless(t, f) if lossless else t)) for f, t in spec]
    return defstruct(
        name,
        sorted(spec) if untagged else spec,
        kw_only=True,
        forbid_unknown_fields=True,
        gc=False,
        tag_field="type" if tag and not untagged else None,
        tag=tag if tag and not untagged else None,
    )


def _shapes(lossless: bool) -> tuple[type[Struct], ...]:
    """The record Structs of every shape: flat start, end and call, a batch item, a
    request, a bare completed call (then the call bodies of the other shapes)."""
    suffix = "Whole" if lossless else ""
    start = _struct("StartBody" + suffix, STARTED_FIELDS, None, lossless)
    end = _struct("EndBody" + suffix, _END_FIELDS, None, lossless)
    # {"start": body} or {"end": body}; exactly one (checked below)
    request = defstruct(
        "Request" + suffix,
        [("start", start | UnsetType, UNSET), ("end", end | UnsetType, UNSET)],
        kw_only=True,
        forbid_unknown_fields=True,
        gc=False,
    )
    batch = defstruct(
        "BatchItem" + suffix,
        [("mode", Literal["start", "end"]), ("req", request)],
        kw_only=True,
        forbid_unknown_fields=True,
        gc=False,
    )
    return (
        _struct("FlatStart" + suffix, STARTED_FIELDS, "start", lossless),
        _struct("FlatEnd" + suffix, _END_FIELDS, "end", lossless),
        _struct("FlatCall" + suffix, COMPLETED_FIELDS, "call", lossless),
        batch,
        request,
        _struct("CompleteBody" + suffix, COMPLETED_FIELDS, None, lossless),
        start,
        end,
    )


FlatStart, FlatEnd, FlatCall, BatchItem, Request, CompleteBody, StartBody, EndBody = _shapes(False)
_WHOLE = _shapes(True)
# the flat records with their "type" as a plain field, for lines where it is not first
_UNTAGGED = (
    _struct("FlatStartUntagged", STARTED_FIELDS, "start", untagged=True),
    _struct("FlatEndUntagged", _END_FIELDS, "end", untagged=True),
    _struct("FlatCallUntagged", COMPLETED_FIELDS, "call", untagged=True),
)
_summary_decode = msgspec.json.Decoder(_Summary).decode

_OBJECT = 0x7B  # "{": a Raw value msgspec has validated is an object when it starts so


def _object(v: Raw) -> bool:
    return memoryview(v)[0] == _OBJECT


def _object_or_null(v: Any) -> bool:
    return v is UNSET or memoryview(v)[0] in (_OBJECT, 0x6E)  # "{" or "n" (null)


def _summary_ok(v: Any) -> bool:
    """A summary kept as its bytes (`typed_call(..., whole=True)`), checked as the decoded
    one is: by decoding it again (the keys it checks typed, the others skipped)."""
    try:
        _summary_decode(v)
    except DecodeError:
        return False
    return True


def _start(s: Any, line: int) -> Facts | None:
    """A start, or the start half of a completed call: its ids and fields checked in one
    function, with the caches' look-ups written out (half the records of a file are
    starts). The Struct's types already hold display_name, thread_id, turn_id,
    wb_user_id and wb_run_step to what the fast path requires (`_TYPES`)."""
    cid, tid, pid, v = s.id, s.trace_id, s.parent_id, s.project_id
    if v not in _ok_projects and not _new_project(v):
        return None
    if cid not in _ok_call_ids:  # (a new id, nearly always: `_new_call_id` written out)
        if _call_id_re(cid) is None:  # a str (its type)
            return None
        if len(_ok_call_ids) >= _CACHE_MAX:
            _ok_call_ids.clear()
        _ok_call_ids.add(cid)
    if tid not in _ok_trace_ids and not _new_trace_id(tid):
        return None
    v = s.op_name
    if v not in _ok_ops and not _new_op(v):
        return None
    if pid is UNSET:
        pid = None
    elif pid is not None and pid not in _ok_call_ids and not _new_call_id(pid):
        return None
    v = s.attributes  # an `_Object` (held by the type), or Raw (decoded whole)
    if type(v) is Raw and not (_object(v) and _object(s.inputs) and _object_or_null(s.otel_dump)):
        return None
    v = s.wb_run_id
    if v is not None and v is not UNSET and v not in _ok_runs and not _new_run(v):
        return None
    v = s.started_at  # a str (its type): `_when` written out
    started = v if v[:17] in _minutes and _tail(v, 17) is not None else _when_slow(v)
    if started is None:
        return None
    return new_facts(Facts, (line, "start", cid, tid, pid, started, None))


def _end(s: Any, line: int) -> Facts | None:
    """An end: exception, summary, wb_run_step_end and is_eval are held by the types."""
    v = s.project_id
    if v not in _ok_projects and not _new_project(v):
        return None
    v = s.id
    if v not in _ok_call_ids and not _new_call_id(v):
        return None
    v = s.trace_id
    if v is not None and v is not UNSET and v not in _ok_trace_ids and not _new_trace_id(v):
        return None
    started = s.started_at
    if started is UNSET:
        started = None
    elif started is not None:
        started = _when(started)
        if started is None:
            return None
    if type(s.summary) is Raw and not _summary_ok(s.summary):
        return None
    v = s.ended_at  # a str (its type): `_when` written out
    ended = v if v[:17] in _minutes and _tail(v, 17) is not None else _when_slow(v)
    return (
        None if ended is None else new_facts(Facts, (line, "end", s.id, None, None, started, ended))
    )


def _complete(s: Any, line: int) -> Facts | None:
    f = _start(s, line)  # (its start half: the same fields, checked the same way)
    ended = None if f is None else _when(s.ended_at)
    if ended is None or (type(s.summary) is Raw and not _summary_ok(s.summary)):
        return None
    assert f is not None
    _, _, cid, tid, pid, started, _ = f
    return new_facts(Facts, (line, "complete", cid, tid, pid, started, ended))


def _request(s: Any, line: int) -> Facts | None:
    start, end = s.start, s.end
    if start is UNSET:
        return None if end is UNSET else _end(end, line)
    return _start(start, line) if end is UNSET else None


def _batch(s: Any, line: int) -> Facts | None:
    req = s.req
    if s.mode == "start":
        return _start(req.start, line) if req.end is UNSET and req.start is not UNSET else None
    return _end(req.end, line) if req.start is UNSET and req.end is not UNSET else None


_KINDS = (_start, _end, _complete, _batch, _request, _complete)
_CHECKS: dict[type, Callable[[Any, int], Facts | None]] = {
    **dict(
        zip((FlatStart, FlatEnd, FlatCall, BatchItem, Request, CompleteBody), _KINDS, strict=True)
    ),
    **dict(zip(_WHOLE[:6], _KINDS, strict=True)),
    **dict(zip(_UNTAGGED, _KINDS[:3], strict=True)),
}
CHECKS: Final = _CHECKS  # a decoded record's type -> its check (facts or None)
_BATCHES = (BatchItem, _WHOLE[3])
_REQUESTS = (Request, _WHOLE[4])


def _decoders(structs: tuple[type[Struct], ...]) -> dict[str, Callable[[bytes], Any]]:
    """shape (as `parse_record` names them) -> the decoder of its records."""
    flat, end, call, batch, request, complete = structs[:6]
    decoder = msgspec.json.Decoder
    return {
        "flat": decoder(flat | end | call).decode,
        "batch": decoder(batch).decode,
        "request": decoder(request).decode,
        "complete": decoder(complete).decode,
    }


SHAPES: Final = _decoders((FlatStart, FlatEnd, FlatCall, BatchItem, Request, CompleteBody))
# the same shapes decoded whole: absent fields UNSET, the summary as its bytes
WHOLE_SHAPES: Final = _decoders(_WHOLE)

# A flat record whose "type" is not its first key (keys sorted, as `json.dumps(...,
# sort_keys=True)` writes them: "type" after "trace_id") costs the tagged decoder a look
# ahead through the whole object for the tag, then the decoding itself (~1.8x a record
# whose tag comes first). The caller finds the tag's value in the bytes instead
# (`TYPE_KEY`: its last occurrence, the one a decoder keeps), and decodes with the Struct
# of that kind, whose "type" is a required field of that one value: the same answer as
# the tagged decoder, in one pass. Keyed by the three bytes after `"type":`, compact or
# with a space; a guess that is wrong (a `"type":` inside a value) only makes msgspec
# refuse the line, which then goes orjson's way, or finds no decoder here (the tagged
# one decodes it).
TYPE_KEY: Final = b'"type":'
_untagged = [msgspec.json.Decoder(s).decode for s in _UNTAGGED]
UNTAGGED: Final[dict[bytes, Callable[[bytes], Any]]] = {
    **dict(zip((b'"st', b'"en', b'"ca'), _untagged, strict=True)),
    **dict(zip((b' "s', b' "e', b' "c'), _untagged, strict=True)),
}
_FLAT = SHAPES["flat"]


def decode_line(decode: Callable[[bytes], Any], raw: bytes) -> Any:
    """`raw` decoded by `decode` (one of `SHAPES`); a flat record whose "type" is not its
    first key by the Struct of the kind its bytes name, in one pass (see `UNTAGGED`).
    Raises as msgspec does (or IndexError for a line of two bytes or fewer)."""
    if decode is _FLAT and raw[2] != 0x74:  # (a first key not "t...": late)
        t = raw.rfind(TYPE_KEY) + 7
        return UNTAGGED.get(raw[t : t + 3], decode)(raw)
    return decode(raw)


def struct_facts(record: Any, line: int = 0) -> Facts | None:
    """The facts of a decoded record the fast path would find certainly valid, else None."""
    return _CHECKS[type(record)](record, line)


def line_facts(shape: str, raw: bytes, line: int = 0) -> Facts | None:
    """The facts of one record's line decoded as `shape`, or None ("don't know": the
    caller reads the line with orjson and the fast path). Only for lines the byte checks
    of `upload.typed_lines` passed (see this module's docstring)."""
    try:
        record = SHAPES[shape](raw)
    except (DecodeError, RecursionError):
        return None
    return _CHECKS[type(record)](record, line)


class TypedCall(NamedTuple):
    """A record decoded and vouched for: its facts, shape and call body (a Struct whose
    free-form fields are `Raw` bytes, as written), for a run that sends the body on."""

    facts: Facts
    shape: str
    body: Any


def typed_call(shape: str, raw: bytes, line: int = 0, whole: bool = False) -> TypedCall | None:
    """`line_facts` with the call body kept (same contract). `whole`: decoded so that the
    body loses nothing it says (`WHOLE_SHAPES`), for a run that sends it on; otherwise
    its attributes, inputs and otel_dump are empty `Object`s (checked, not kept)."""
    try:
        record = (WHOLE_SHAPES if whole else SHAPES)[shape](raw)
    except (DecodeError, RecursionError):
        return None
    facts = _CHECKS[type(record)](record, line)
    return None if facts is None else TypedCall(facts, shape, body_of(record))


def body_of(record: Any) -> Any:
    """The call body (a Struct) of a decoded record of any shape."""
    t = type(record)
    if t in _BATCHES:
        req = record.req
        return req.start if record.mode == "start" else req.end
    if t in _REQUESTS:
        return record.start if record.start is not UNSET else record.end
    return record
